"""Observation-guided sampling (step 1 of a round), on top of any sampler backend.

Per problem: ask for observations (T=0.7), keep the first ``num_observations``,
then sample ``num_code_per_observation`` programs per observation (T=1.0) with
the observation in the prompt. A completion without a closed ```python fence
is dropped and does not count as a sample.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from conself.sampling.backend import Generation
from conself.sampling.prompts import (
    code_prompt,
    extract_program,
    observation_prompt,
    parse_observations,
)

logger = logging.getLogger(__name__)

OBSERVATION_COLUMNS = ["problem_id", "observation_index", "observation"]
SAMPLE_COLUMNS = [
    "problem_id",
    "sample_id",
    "observation_index",
    "attempt_index",
    "completion",
    "program",
    "n_tokens",
    "finish_reason",
    "mean_nll",
    "mean_topk_entropy",
]


class Sampler(Protocol):
    def generate(
        self,
        user_messages: Sequence[str],
        *,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        stop_at_code_block: bool = False,
        record_confidence: bool = True,
    ) -> list[Generation]: ...

    def prompt_fits(self, user_message: str, max_new_tokens: int) -> bool: ...


@dataclass(frozen=True)
class SamplingParams:
    num_observations: int = 3
    num_code_per_observation: int = 5
    observation_temperature: float = 0.7
    observation_max_new_tokens: int = 512
    code_temperature: float = 1.0
    code_max_new_tokens: int = 2048
    batch_size: int = 16
    seed: int = 0


def _batched(
    sampler: Sampler,
    messages: list[str],
    batch_size: int,
    seed: int,
    **kwargs: object,
) -> list[Generation]:
    """Generate in length-sorted batches (less padding), returning results in input order.

    Equal prompts end up next to each other, so a backend can prefill each once.
    """
    order = sorted(range(len(messages)), key=lambda i: (len(messages[i]), messages[i], i))
    results: list[Generation | None] = [None] * len(messages)
    for b, start in enumerate(range(0, len(order), batch_size)):
        idx = order[start : start + batch_size]
        outs = sampler.generate([messages[i] for i in idx], seed=seed + b, **kwargs)
        for i, out in zip(idx, outs, strict=True):
            results[i] = out
        logger.info("sampled %d/%d completions", min(start + batch_size, len(order)), len(order))
    return [r for r in results if r is not None]


def sample_observations(
    sampler: Sampler, problems: pd.DataFrame, params: SamplingParams
) -> pd.DataFrame:
    """One observation request per problem; the first ``num_observations`` parsed are kept."""
    fits = _filter_fitting(sampler, problems, params.observation_max_new_tokens, observation_prompt)
    messages = [observation_prompt(p) for p in fits["prompt"]]
    outs = _batched(
        sampler,
        messages,
        params.batch_size,
        params.seed,
        temperature=params.observation_temperature,
        max_new_tokens=params.observation_max_new_tokens,
        record_confidence=False,
    )
    rows = []
    for problem_id, out in zip(fits["problem_id"], outs, strict=True):
        observations = parse_observations(out.text, params.num_observations)
        if not observations:
            logger.warning(
                "problem %s: no observation could be parsed; it gets no samples", problem_id
            )
        rows += [(problem_id, i, o) for i, o in enumerate(observations)]
    return pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)


def sample_programs(
    sampler: Sampler,
    problems: pd.DataFrame,
    observations: pd.DataFrame,
    params: SamplingParams,
) -> pd.DataFrame:
    """``num_code_per_observation`` programs per observation; fenceless completions dropped."""
    by_id = problems.set_index("problem_id")
    requests: list[tuple[str, int, int, str]] = []
    for row in observations.itertuples(index=False):
        problem = by_id.loc[row.problem_id]
        message = code_prompt(
            problem["prompt"], problem["kind"], problem["entry_point"], row.observation
        )
        if not sampler.prompt_fits(message, params.code_max_new_tokens):
            logger.warning(
                "problem %s: prompt longer than the context window; skipped", row.problem_id
            )
            continue
        for k in range(params.num_code_per_observation):
            requests.append((row.problem_id, row.observation_index, k, message))
    outs = _batched(
        sampler,
        [r[3] for r in requests],
        params.batch_size,
        params.seed + 1_000_003,
        temperature=params.code_temperature,
        max_new_tokens=params.code_max_new_tokens,
        stop_at_code_block=True,
        record_confidence=True,
    )
    return _samples_table(requests, outs)


def _samples_table(
    requests: list[tuple[str, int, int, str]], outs: list[Generation]
) -> pd.DataFrame:
    rows = []
    next_id: dict[str, int] = {}
    attempts: dict[str, int] = {}
    dropped = 0
    for (problem_id, obs_index, _, _), out in zip(requests, outs, strict=True):
        attempt = attempts.get(problem_id, 0)
        attempts[problem_id] = attempt + 1
        program = extract_program(out.text)
        if program is None:
            dropped += 1
            continue
        sample_id = next_id.get(problem_id, 0)
        next_id[problem_id] = sample_id + 1
        rows.append(
            (
                problem_id,
                sample_id,
                obs_index,
                attempt,
                out.text,
                program,
                out.n_tokens,
                out.finish_reason,
                out.mean_nll,
                out.mean_topk_entropy,
            )
        )
    logger.info(
        "kept %d samples, dropped %d completions without a closed ```python block",
        len(rows),
        dropped,
    )
    table = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    return table.astype(
        {
            "sample_id": "int64",
            "observation_index": "int64",
            "attempt_index": "int64",
            "n_tokens": "int64",
        }
    )


def _filter_fitting(
    sampler: Sampler, problems: pd.DataFrame, budget: int, build: Callable[[str], str]
) -> pd.DataFrame:
    keep = [sampler.prompt_fits(build(p), budget) for p in problems["prompt"]]
    skipped = len(keep) - sum(keep)
    if skipped:
        logger.warning("%d problems skipped: prompt longer than the context window", skipped)
    return problems[keep]


EVAL_SAMPLE_COLUMNS = [
    "problem_id",
    "sample_index",
    "completion",
    "program",
    "n_tokens",
    "finish_reason",
]


def sample_plain(
    sampler: Sampler,
    problems: pd.DataFrame,
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 2048,
    batch_size: int = 16,
    seed: int = 0,
) -> pd.DataFrame:
    """Programs from the plain prompt (greedy when T == 0), as evaluation asks for them.

    A completion without a program is kept with ``program`` None: for evaluation it
    is a failure, not a missing sample.
    """
    requests = []
    for row in problems.itertuples(index=False):
        message = code_prompt(row.prompt, row.kind, row.entry_point)
        requests += [(row.problem_id, k, message) for k in range(n)]
    outs = _batched(
        sampler,
        [r[2] for r in requests],
        batch_size,
        seed,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        stop_at_code_block=True,
        record_confidence=False,
    )
    rows = [
        (pid, k, out.text, extract_program(out.text), out.n_tokens, out.finish_reason)
        for (pid, k, _), out in zip(requests, outs, strict=True)
    ]
    return pd.DataFrame(rows, columns=EVAL_SAMPLE_COLUMNS).astype(
        {"sample_index": "int64", "n_tokens": "int64"}
    )
