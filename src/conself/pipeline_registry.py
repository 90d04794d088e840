"""Project pipelines: the seven stages of a ConSelf round, found by name."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

STAGES = (
    "generation",
    "execution",
    "entropy",
    "curriculum",
    "preference",
    "training",
    "evaluation",
)


def register_pipelines() -> dict[str, Pipeline]:
    """``__default__`` is one full round: every stage in data-flow order."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((pipelines[name] for name in STAGES), Pipeline([]))
    return pipelines
