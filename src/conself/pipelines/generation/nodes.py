"""Nodes of the generation stage: problems in, observations and sampled programs out."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from conself.models import checkpoint_fingerprint, resolve_model
from conself.problems import load_problems, split_problems
from conself.sampling import (
    SamplingParams,
    TransformersSampler,
    sample_observations,
    sample_programs,
)

logger = logging.getLogger(__name__)


def prepare_problems(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Load the problem source and split it into disjoint self-improvement and evaluation sets.

    Oracles come out as a separate table: only evaluation and diagnostics read it.
    """
    problems, oracles = load_problems(
        params["source"],
        params.get("path"),
        limit=params.get("limit"),
        **(params.get("options") or {}),
    )
    train, evaluation = split_problems(problems, params["eval_fraction"], params["split_seed"])
    if params.get("train_limit") is not None:
        train = train.head(params["train_limit"])
    if params.get("eval_limit") is not None:
        evaluation = evaluation.head(params["eval_limit"])
    logger.info(
        "%d self-improvement problems and %d evaluation problems from %s",
        len(train),
        len(evaluation),
        params["source"],
    )
    kept = set(train["problem_id"]) | set(evaluation["problem_id"])
    oracles = oracles[oracles["problem_id"].isin(kept)].reset_index(drop=True)
    return train.reset_index(drop=True), evaluation.reset_index(drop=True), oracles


def resolve_base_model(model: dict[str, Any]) -> dict[str, Any]:
    """Turn the model parameter into a local checkpoint and record its identity."""
    path = resolve_model(model)
    return {"name": model["name"], "path": str(path), "fingerprint": checkpoint_fingerprint(path)}


def _sampler(base_model: dict[str, Any], params: dict[str, Any]) -> TransformersSampler:
    return TransformersSampler(base_model["path"], dtype=params.get("dtype", "auto"))


def _sampling_params(params: dict[str, Any]) -> SamplingParams:
    keys = SamplingParams.__dataclass_fields__
    return SamplingParams(**{k: v for k, v in params.items() if k in keys})


def generate_observations(
    problems: pd.DataFrame, base_model: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """Ask the model for observations on every self-improvement problem."""
    return sample_observations(_sampler(base_model, params), problems, _sampling_params(params))


def generate_samples(
    problems: pd.DataFrame,
    observations: pd.DataFrame,
    base_model: dict[str, Any],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sample programs per observation; return the samples and their tracking metrics."""
    samples = sample_programs(
        _sampler(base_model, params), problems, observations, _sampling_params(params)
    )
    metrics = {
        "generation.n_problems": len(problems),
        "generation.n_observations": len(observations),
        "generation.n_samples": len(samples),
        "generation.mean_tokens": float(samples["n_tokens"].mean()) if len(samples) else 0.0,
    }
    return samples, {k: {"value": float(v), "step": 0} for k, v in metrics.items()}
