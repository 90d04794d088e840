"""Nodes of the preference stage: consensus-weighted chosen/rejected pairs."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from conself.consensus import build_pairs
from conself.sampling import code_prompt

logger = logging.getLogger(__name__)


def build_preference_pairs(
    curriculum: pd.DataFrame,
    samples: pd.DataFrame,
    sample_consensus: pd.DataFrame,
    problems: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Pairs with the plain, observation-free prompt: the model must learn it unaided."""
    selected = curriculum.loc[curriculum["selected"], "problem_id"].tolist()
    pairs = build_pairs(selected, samples, sample_consensus, params["max_pairs_per_problem"])
    by_id = problems.set_index("problem_id")
    prompts = [
        code_prompt(by_id.at[pid, "prompt"], by_id.at[pid, "kind"], by_id.at[pid, "entry_point"])
        for pid in pairs["problem_id"]
    ]
    pairs.insert(2, "prompt", pd.Series(prompts, index=pairs.index, dtype=object))
    logger.info("%d preference pairs from %d curriculum problems", len(pairs), len(selected))
    metrics = {
        "preference.n_pairs": float(len(pairs)),
        "preference.mean_weight": float(pairs["weight"].mean()) if len(pairs) else 0.0,
        "preference.n_problems_with_pairs": float(pairs["problem_id"].nunique()),
    }
    return pairs, {k: {"value": v, "step": 0} for k, v in metrics.items()}
