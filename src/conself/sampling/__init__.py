"""Sampling engine: prompts, observation-guided sampling, the transformers and vLLM backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conself.sampling.backend import Generation, TransformersSampler, load_model_and_tokenizer
from conself.sampling.observation_guided import (
    EVAL_SAMPLE_COLUMNS,
    OBSERVATION_COLUMNS,
    SAMPLE_COLUMNS,
    SamplingParams,
    sample_observations,
    sample_plain,
    sample_programs,
)
from conself.sampling.prompts import (
    closes_code_block,
    code_prompt,
    extract_program,
    observation_prompt,
    parse_observations,
)
from conself.sampling.vllm_backend import VllmSampler

__all__ = [
    "EVAL_SAMPLE_COLUMNS",
    "OBSERVATION_COLUMNS",
    "SAMPLE_COLUMNS",
    "Generation",
    "SamplingParams",
    "TransformersSampler",
    "VllmSampler",
    "closes_code_block",
    "code_prompt",
    "extract_program",
    "load_model_and_tokenizer",
    "make_sampler",
    "observation_prompt",
    "parse_observations",
    "sample_observations",
    "sample_plain",
    "sample_programs",
]

SAMPLER_BACKENDS = ("transformers", "vllm")


def make_sampler(
    model_dir: str | Path, backend: str = "transformers", **options: Any
) -> TransformersSampler | VllmSampler:
    """The sampler a pipeline parameter names; ``options`` go to that backend's constructor.

    vllm is imported only when ``backend="vllm"`` is built (an optional extra).
    """
    if backend == "transformers":
        return TransformersSampler(model_dir, **options)
    if backend == "vllm":
        return VllmSampler(model_dir, **options)
    raise ValueError(
        f"parameter 'backend': {backend!r} is not one of {', '.join(SAMPLER_BACKENDS)}"
    )
