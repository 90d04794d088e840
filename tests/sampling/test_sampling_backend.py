"""The transformers sampling backend and observation-guided sampling, on the real tiny model.

No stand-ins: every test samples from the tiny Qwen2 checkpoint built once per session
(tests/conftest.py). Where a test needs the raw token ids behind a ``Generation`` it
calls ``generate_with_ids``, which ``generate`` is built on.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from conself.problems import load_problems
from conself.sampling import (
    SamplingParams,
    TransformersSampler,
    code_prompt,
    extract_program,
    sample_observations,
    sample_programs,
)

TOP_K = 15
MAX_NEW = 48


@pytest.fixture(scope="module")
def sampler(tiny_checkpoint_dir: Path) -> TransformersSampler:
    return TransformersSampler(tiny_checkpoint_dir, dtype="float32", topk_entropy_k=TOP_K)


@pytest.fixture(scope="module")
def problems(project_root: Path) -> pd.DataFrame:
    table, _ = load_problems("taco", project_root / "data/01_raw/tiny/problems.jsonl")
    return table


@pytest.fixture(scope="module")
def code_messages(problems: pd.DataFrame) -> list[str]:
    return [code_prompt(p.prompt, p.kind, p.entry_point) for p in problems.itertuples()]


def _teacher_forced(
    sampler: TransformersSampler, message: str, completion_ids: list[int]
) -> tuple[float, float]:
    """Mean NLL and mean renormalised top-k entropy of ``completion_ids`` given the prompt,
    from one separate, unpadded forward pass over prompt + completion."""
    tok = sampler.tokenizer
    prompt_ids = tok(sampler.chat_text(message), add_special_tokens=False).input_ids
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = sampler.model(input_ids=ids).logits[0].float()
    start = len(prompt_ids) - 1  # logits at position t predict token t + 1
    logp = torch.log_softmax(logits[start : start + len(completion_ids)], dim=-1)
    target = torch.tensor(completion_ids)
    nll = -logp.gather(-1, target[:, None])[:, 0]
    top = torch.topk(logp, TOP_K, dim=-1).values
    top_p = torch.exp(top) / torch.exp(top).sum(-1, keepdim=True)
    entropy = -(top_p * torch.log(top_p)).sum(-1)
    return float(nll.mean()), float(entropy.mean())


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_recorded_confidence_matches_a_teacher_forced_pass(
    sampler: TransformersSampler, code_messages: list[str], temperature: float
) -> None:
    """Per-sample mean NLL and top-15 entropy recorded while sampling (prompts of different
    lengths, left-padded, each prefilled once for its duplicates, finished rows pruned) equal
    the untempered model distribution recomputed by teacher forcing, sample by sample."""
    # Duplicates adjacent, as the callers send them: shared prefill in play.
    messages = [m for m in code_messages[:4] for _ in range(2)]
    pairs = sampler.generate_with_ids(
        messages,
        temperature=temperature,
        max_new_tokens=MAX_NEW,
        seed=3,
        stop_at_code_block=True,
        record_confidence=True,
    )
    reasons = {g.finish_reason for g, _ in pairs}
    assert reasons & {"stop", "eos"}, "no sequence finished before the budget: nothing checked"
    if temperature > 0:
        lengths = {g.n_tokens for g, _ in pairs}
        assert len(lengths) > 1, "all rows stopped together: pruning not exercised"
    for row, (message, (gen, completion_ids)) in enumerate(zip(messages, pairs, strict=True)):
        assert 0 < gen.n_tokens <= MAX_NEW
        assert len(completion_ids) == gen.n_tokens
        nll, entropy = _teacher_forced(sampler, message, completion_ids)
        assert math.isfinite(gen.mean_nll) and math.isfinite(gen.mean_topk_entropy)
        assert gen.mean_nll == pytest.approx(nll, abs=1e-4, rel=1e-4), row
        assert gen.mean_topk_entropy == pytest.approx(entropy, abs=1e-4, rel=1e-4), row
        assert 0.0 <= gen.mean_topk_entropy <= math.log(TOP_K) + 1e-6
        # The text is exactly the decoded counted tokens (the eos, if any, is special).
        assert gen.text == sampler.tokenizer.decode(completion_ids, skip_special_tokens=True)


STOP_KWARGS = {"temperature": 1.0, "max_new_tokens": MAX_NEW, "seed": 11}


@pytest.fixture(scope="module")
def stopped(sampler: TransformersSampler, code_messages: list[str]) -> list:
    return sampler.generate(code_messages * 2, stop_at_code_block=True, **STOP_KWARGS)


def test_stop_at_code_block_ends_right_after_the_closing_fence(stopped: list) -> None:
    gens = stopped
    closed = [g for g in gens if g.text.count("```") >= 2]
    assert closed, "no completion closed a code block: nothing checked"
    for gen in gens:
        assert gen.n_tokens <= MAX_NEW
        assert gen.finish_reason in {"stop", "eos", "length"}
    for gen in closed:
        assert gen.finish_reason == "stop", gen
        # Stopped at the first closing fence: nothing after it, and no second block.
        assert gen.text.count("```") == 2, gen.text
        assert gen.text.rstrip().endswith("```"), gen.text
        assert len(gen.text.rstrip()) == gen.text.index("```", gen.text.index("```") + 3) + 3


def test_without_stop_at_code_block_sampling_goes_on(
    sampler: TransformersSampler, code_messages: list[str], stopped: list
) -> None:
    """Control for the test above: with the same seed, the unstopped samples are the same
    sequences, continued past the fence; the cut is the stopping criterion's doing."""
    free = sampler.generate(code_messages * 2, **STOP_KWARGS)
    assert all(g.finish_reason in {"eos", "length"} for g in free)
    longer = 0
    for cut, full in zip(stopped, free, strict=True):
        assert full.text.startswith(cut.text)
        if cut.finish_reason == "stop":
            assert full.n_tokens >= cut.n_tokens
            longer += full.n_tokens > cut.n_tokens
    assert longer, "no stopped sample would have gone on: the stop was never exercised"


def test_same_seed_gives_identical_samples(
    sampler: TransformersSampler, code_messages: list[str]
) -> None:
    def run(seed: int):
        return sampler.generate(
            code_messages,
            temperature=1.0,
            max_new_tokens=MAX_NEW,
            seed=seed,
            stop_at_code_block=True,
        )

    first, second = run(5), run(5)
    assert first == second  # text, length, finish reason, NLL and entropy, bit for bit
    assert [g.text for g in run(6)] != [g.text for g in first]


def _long_problem(problems: pd.DataFrame) -> pd.DataFrame:
    long = problems.iloc[[0]].copy()
    long["problem_id"] = "taco/too-long"
    long["prompt"] = "Read an integer and print it. " + "word " * 4000
    return long


def test_over_long_prompt_is_skipped_with_a_warning(
    sampler: TransformersSampler, problems: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    long = _long_problem(problems)
    short = problems.iloc[[1]]
    assert not sampler.prompt_fits(long["prompt"].iloc[0], 16)
    assert sampler.prompt_fits(short["prompt"].iloc[0], 16)
    params = SamplingParams(
        num_observations=2,
        num_code_per_observation=2,
        observation_max_new_tokens=32,
        code_max_new_tokens=32,
        batch_size=8,
    )
    mixed = pd.concat([long, short], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="conself.sampling"):
        observations = sample_observations(sampler, mixed, params)
    assert "taco/too-long" not in set(observations["problem_id"])
    assert any("longer than the context window" in r.getMessage() for r in caplog.records)

    caplog.clear()
    obs = pd.DataFrame(
        {
            "problem_id": ["taco/too-long", short["problem_id"].iloc[0]],
            "observation_index": [0, 0],
            "observation": ["read the whole input", "read the whole input"],
        }
    )
    with caplog.at_level(logging.WARNING, logger="conself.sampling"):
        samples = sample_programs(sampler, mixed, obs, params)
    assert "taco/too-long" not in set(samples["problem_id"])
    assert set(samples["problem_id"]) <= {short["problem_id"].iloc[0]}
    assert any(
        "taco/too-long" in r.getMessage() and "context window" in r.getMessage()
        for r in caplog.records
    )


def test_sample_programs_drops_fenceless_and_numbers_samples(
    sampler: TransformersSampler, problems: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept rows are exactly the completions with a closed ```python block, in request
    order, numbered 0..n-1 per problem; a budget too short for some programs makes some
    completions fenceless."""
    kept_problems = problems.head(4)
    observations = pd.DataFrame(
        [
            (pid, i, text)
            for pid in kept_problems["problem_id"]
            for i, text in enumerate(["read the whole input", "print one line"])
        ],
        columns=["problem_id", "observation_index", "observation"],
    )
    params = SamplingParams(
        num_observations=2, num_code_per_observation=3, code_max_new_tokens=14, batch_size=8
    )
    spy = []
    real = sampler.generate

    def recording_generate(messages, **kwargs):
        outs = real(messages, **kwargs)
        spy.extend(zip(messages, outs, strict=True))
        return outs

    monkeypatch.setattr(sampler, "generate", recording_generate)
    samples = sample_programs(sampler, kept_problems, observations, params)

    n_requests = len(observations) * params.num_code_per_observation
    assert len(spy) == n_requests
    fenced = [g for _, g in spy if extract_program(g.text) is not None]
    assert 0 < len(fenced) < n_requests, "need both kept and dropped completions"
    assert len(samples) == len(fenced)
    assert samples["program"].notna().all()
    assert all(
        extract_program(c) == p
        for c, p in zip(samples["completion"], samples["program"], strict=True)
    )
    for _, group in samples.groupby("problem_id"):
        assert group["sample_id"].tolist() == list(range(len(group)))
        # sample ids follow the request order; dropped attempts leave gaps in attempt_index
        assert group["attempt_index"].is_monotonic_increasing
        assert group["attempt_index"].between(0, 2 * 3 - 1).all()
    assert (samples["attempt_index"] > samples["sample_id"]).any()
    assert (samples["n_tokens"] <= params.code_max_new_tokens).all()
    assert samples["mean_nll"].notna().all() and samples["mean_topk_entropy"].notna().all()
