"""Sampling engine: prompts, observation-guided sampling, and the transformers backend."""

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

__all__ = [
    "EVAL_SAMPLE_COLUMNS",
    "OBSERVATION_COLUMNS",
    "SAMPLE_COLUMNS",
    "Generation",
    "SamplingParams",
    "TransformersSampler",
    "closes_code_block",
    "code_prompt",
    "extract_program",
    "load_model_and_tokenizer",
    "observation_prompt",
    "parse_observations",
    "sample_observations",
    "sample_plain",
    "sample_programs",
]
