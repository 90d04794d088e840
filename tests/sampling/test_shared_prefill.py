"""The transformers sampler's decode loop: shared prefill, pruning, stops, context window.

Each optimisation is checked against the sampler with it switched off, on the real tiny
model: sharing the prefill of duplicate prompts and dropping finished rows from the
batch must not change a single sample.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from conself.problems import load_problems
from conself.sampling import TransformersSampler, code_prompt
from conself.sampling.backend import row_seed

MAX_NEW = 40


@pytest.fixture(scope="module")
def fast(tiny_checkpoint_dir: Path) -> TransformersSampler:
    return TransformersSampler(tiny_checkpoint_dir, dtype="float32")


@pytest.fixture(scope="module")
def plain(tiny_checkpoint_dir: Path) -> TransformersSampler:
    """Every row prefilled on its own and kept in the batch until all have finished."""
    return TransformersSampler(
        tiny_checkpoint_dir, dtype="float32", share_prefill=False, prune_finished=False
    )


@pytest.fixture(scope="module")
def messages(project_root: Path) -> list[str]:
    """Three prompts of different lengths, each three times in a row (as callers send)."""
    table, _ = load_problems("taco", project_root / "data/01_raw/tiny/problems.jsonl")
    prompts = [code_prompt(p.prompt, p.kind, p.entry_point) for p in table.head(3).itertuples()]
    return [m for m in prompts for _ in range(3)]


def _same(a: list, b: list) -> None:
    for row, ((ga, ids_a), (gb, ids_b)) in enumerate(zip(a, b, strict=True)):
        assert ids_a == ids_b, row
        assert (ga.text, ga.n_tokens, ga.finish_reason) == (gb.text, gb.n_tokens, gb.finish_reason)
        assert ga.mean_nll == pytest.approx(gb.mean_nll, abs=1e-4), row
        assert ga.mean_topk_entropy == pytest.approx(gb.mean_topk_entropy, abs=1e-4), row


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("stop", [True, False])
def test_shared_prefill_and_pruning_do_not_change_the_samples(
    fast: TransformersSampler,
    plain: TransformersSampler,
    messages: list[str],
    temperature: float,
    stop: bool,
) -> None:
    kwargs = {
        "temperature": temperature,
        "max_new_tokens": MAX_NEW,
        "seed": 7,
        "stop_at_code_block": stop,
    }
    shared = fast.generate_with_ids(messages, **kwargs)
    _same(shared, plain.generate_with_ids(messages, **kwargs))
    if temperature > 0:
        # Duplicates share a prefill but not a random stream.
        assert len({tuple(ids) for _, ids in shared[:3]}) > 1
    else:
        assert shared[0][1] == shared[1][1] == shared[2][1]


def test_stop_is_per_sequence(fast: TransformersSampler, messages: list[str]) -> None:
    """Rows stop at their own closing fence while the others go on, and a row's sample does
    not depend on its neighbours finishing: alone in row 0 it matches itself in a batch
    whose other rows all stop at different steps."""
    kwargs = {"temperature": 1.0, "max_new_tokens": MAX_NEW, "stop_at_code_block": True}
    batch = fast.generate(messages, seed=4, **kwargs)
    stopped = [g for g in batch if g.finish_reason == "stop"]
    assert stopped and len({g.n_tokens for g in batch}) > 1
    for gen in stopped:
        assert gen.text.count("```") == 2 and gen.text.rstrip().endswith("```"), gen.text
    (alone,) = fast.generate(messages[:1], seed=4, **kwargs)
    assert (alone.text, alone.n_tokens, alone.finish_reason) == (
        batch[0].text,
        batch[0].n_tokens,
        batch[0].finish_reason,
    )
    assert alone.mean_nll == pytest.approx(batch[0].mean_nll, abs=1e-4)


def test_rows_draw_from_distinct_well_mixed_streams() -> None:
    seeds = {row_seed(seed, row) for seed in range(20) for row in range(64)}
    assert len(seeds) == 20 * 64
    assert all(0 <= s < 2**63 for s in seeds)
    assert row_seed(3, 1) == row_seed(3, 1)


def test_over_long_prompts_never_break_the_batch(
    tiny_checkpoint_dir: Path, messages: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A row whose prompt leaves less room than the budget is cut to the window ("length");
    a prompt that alone fills the window gets an empty completion; neither changes the other
    rows. Both are counted in one warning."""
    base = TransformersSampler(tiny_checkpoint_dir, dtype="float32")
    n_prompt = len(base.tokenizer(base.chat_text(messages[0]), add_special_tokens=False).input_ids)
    window = n_prompt + 5
    narrow = TransformersSampler(tiny_checkpoint_dir, dtype="float32", max_prompt_tokens=window)
    assert not narrow.prompt_fits(messages[0], 6) and narrow.prompt_fits(messages[0], 5)
    too_long = messages[0] + " filler" * 200
    short = "Print 1."
    kwargs = {"temperature": 0.0, "max_new_tokens": 12, "seed": 0, "stop_at_code_block": True}
    with caplog.at_level(logging.WARNING, logger="conself.sampling"):
        cut, empty, free = narrow.generate([messages[0], too_long, short], **kwargs)
    assert any("2 of 3 prompts" in r.getMessage() for r in caplog.records)
    assert cut.n_tokens <= 5
    if cut.n_tokens == 5:
        assert cut.finish_reason in {"length", "stop", "eos"}
    assert (empty.text, empty.n_tokens, empty.finish_reason) == ("", 0, "length")
    assert math.isnan(empty.mean_nll) and math.isnan(empty.mean_topk_entropy)
    (reference,) = base.generate([short], **kwargs)
    assert free.text == reference.text
    # The cut row is the start of what an unlimited window would have produced.
    (whole,) = base.generate([messages[0]], **kwargs)
    assert whole.text.startswith(cut.text)


def test_empty_batch_and_no_budget(fast: TransformersSampler, messages: list[str]) -> None:
    assert fast.generate([], temperature=1.0, max_new_tokens=8, seed=0) == []
    (gen,) = fast.generate(messages[:1], temperature=1.0, max_new_tokens=0, seed=0)
    assert (gen.n_tokens, gen.finish_reason) == (0, "length")


def test_record_confidence_off_gives_nan_and_same_samples(
    fast: TransformersSampler, messages: list[str]
) -> None:
    kwargs = {"temperature": 1.0, "max_new_tokens": 16, "seed": 2}
    on = fast.generate(messages[:3], **kwargs)
    off = fast.generate(messages[:3], record_confidence=False, **kwargs)
    assert [g.text for g in on] == [g.text for g in off]
    assert all(math.isnan(g.mean_nll) and math.isnan(g.mean_topk_entropy) for g in off)
