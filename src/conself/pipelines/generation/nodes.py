"""Nodes of the generation stage: problems in, observations and sampled programs out.

Sampling is split into shards of problems (``generation.shard_size``); each
finished shard is stored under a key of everything that determines it, so a
rerun after a crash samples only the unfinished shards and yields the same
tables as an uninterrupted run (see :mod:`conself.shards`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from conself.models import checkpoint_fingerprint, resolve_model
from conself.problems import load_problems, split_problems
from conself.sampling import (
    OBSERVATION_COLUMNS,
    SAMPLE_COLUMNS,
    SamplingParams,
    sample_observations,
    sample_programs,
)
from conself.sampling.lazy import lazy_sampler, sampler_identity
from conself.shards import run_by_problem_shards

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
    """The round's starting model: a local base checkpoint plus earlier rounds' adapters.

    ``model.adapter`` (set by the multi-round driver for round N+1, or by hand) is the
    last adapter of a lineage; its ``lineage.json`` brings the earlier ones.
    """
    from conself.condpo.lineage import adapter_fingerprint, lineage_adapters, verify_lineage

    path = resolve_model(model)
    fingerprint = checkpoint_fingerprint(path)
    record: dict[str, Any] = {"name": model["name"], "path": str(path), "fingerprint": fingerprint}
    adapter = model.get("adapter")
    if adapter:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"parameter model.adapter: {adapter} is not a LoRA adapter directory "
                "(no adapter_config.json)"
            )
        adapters = lineage_adapters(adapter)
        verify_lineage(path, adapters, fingerprint)
        record |= {
            "adapter_dir": str(adapter),
            "adapters": adapters,
            "adapter_fingerprints": [adapter_fingerprint(a) for a in adapters],
        }
        logger.info("round starts from %s with %d adapter(s)", path, len(adapters))
    return record


def _sampling_params(params: dict[str, Any], seed: int | None = None) -> SamplingParams:
    keys = SamplingParams.__dataclass_fields__
    values = {k: v for k, v in params.items() if k in keys}
    if seed is not None:
        values["seed"] = seed
    return SamplingParams(**values)


def generate_observations(
    problems: pd.DataFrame,
    base_model: dict[str, Any],
    params: dict[str, Any],
    resume: dict[str, Any],
) -> pd.DataFrame:
    """Ask the model for observations on every self-improvement problem."""
    sampler = lazy_sampler(base_model, params)
    return run_by_problem_shards(
        "observations",
        problems,
        [sampler_identity(base_model, params), _sampling_params(params).__dict__],
        params,
        resume,
        lambda part, seed: sample_observations(sampler.get(), part, _sampling_params(params, seed)),
        items_per_problem=1,
        unit="problems",
        columns=OBSERVATION_COLUMNS,
    )


def generate_samples(
    problems: pd.DataFrame,
    observations: pd.DataFrame,
    base_model: dict[str, Any],
    params: dict[str, Any],
    resume: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sample programs per observation; return the samples and their tracking metrics."""
    sampler = lazy_sampler(base_model, params)
    sampling = _sampling_params(params)
    per_problem = sampling.num_observations * sampling.num_code_per_observation

    def compute(part: pd.DataFrame, seed: int) -> pd.DataFrame:
        ids = set(part["problem_id"])
        obs = observations[observations["problem_id"].isin(ids)]
        return sample_programs(sampler.get(), part, obs, _sampling_params(params, seed))

    samples = run_by_problem_shards(
        "samples",
        problems,
        [sampler_identity(base_model, params), sampling.__dict__, observations],
        params,
        resume,
        compute,
        items_per_problem=per_problem,
        unit="samples",
        columns=SAMPLE_COLUMNS,
        tokens=lambda table: int(table["n_tokens"].sum()),
    )
    metrics = {
        "generation.n_problems": len(problems),
        "generation.n_observations": len(observations),
        "generation.n_samples": len(samples),
        "generation.mean_tokens": float(samples["n_tokens"].mean()) if len(samples) else 0.0,
    }
    return samples, {k: {"value": float(v), "step": 0} for k, v in metrics.items()}
