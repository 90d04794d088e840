"""Nodes of the curriculum stage: keep the problems the model is almost sure about."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from conself.consensus import select_curriculum
from conself.consensus.curriculum import REASONS

logger = logging.getLogger(__name__)


def build_curriculum(
    problem_stats: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every problem with its verdict and reason; ``selected`` rows are the curriculum."""
    curriculum = select_curriculum(
        problem_stats, tau=params["tau"], max_crash_rate=params["max_crash_rate"]
    )
    reasons = curriculum["reason"].value_counts().to_dict()
    logger.info(
        "curriculum: %d of %d problems selected %s",
        int(curriculum["selected"].sum()),
        len(curriculum),
        reasons,
    )
    se = curriculum["semantic_entropy"]
    metrics = {
        "curriculum.size": float(curriculum["selected"].sum()),
        "curriculum.n_candidates": float(len(curriculum)),
        "curriculum.mean_crash_rate": float(curriculum["crash_rate"].mean()) if len(se) else 0.0,
        "curriculum.mean_semantic_entropy": float(se.mean()) if se.notna().any() else 0.0,
    }
    # every reason, zero or not: rounds must share metric keys to be compared side by side
    metrics |= {f"curriculum.dropped_{k}": float(reasons.get(k, 0)) for k in REASONS[1:]}
    return curriculum, {k: {"value": v, "step": 0} for k, v in metrics.items()}
