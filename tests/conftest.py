"""Shared fixtures: the project root and one tiny model checkpoint per test session.

The tiny model (conself.models.tiny) is a real, small Qwen2 network with its own
tokenizer, pre-trained here for a few seconds per step. Building it dominates the
cost of every test that samples, so it is built once per session into a temporary
cache and shared: by the sampling-backend tests, by ``resolve_model`` and by the
full tiny round (which finds it already in its project copy's cache).
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TINY_PROBLEMS = PROJECT_ROOT / "data" / "01_raw" / "tiny" / "problems.jsonl"
# The tiny environment's own setting: enough pre-training that most programs run and
# two rounds in a row each get a curriculum and pairs (at 120 steps nearly every
# program still crashes and the collapse guard stops after round 1).
TINY_STEPS = 300
TINY_SEED = 0


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def tiny_model_spec() -> dict:
    """The ``model.tiny`` parameters the session's checkpoint is built from."""
    return {"problems_path": str(TINY_PROBLEMS), "seed": TINY_SEED, "steps": TINY_STEPS}


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_spec: dict) -> Path:
    """A saved tiny checkpoint (config, weights, tokenizer with chat template)."""
    from conself.models.tiny import tiny_checkpoint

    cache = tmp_path_factory.mktemp("tiny-cache")
    return tiny_checkpoint(
        cache,
        tiny_model_spec["problems_path"],
        seed=tiny_model_spec["seed"],
        steps=tiny_model_spec["steps"],
    )
