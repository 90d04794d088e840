"""vLLM backend: the conversion of vLLM's output into ``Generation`` records.

vllm is not installed on CI (no GPU), so ``VllmSampler`` itself is not exercised here.
These tests feed the pure conversion functions plain data shaped like vLLM's
``CompletionOutput`` (``token_ids``, ``logprobs`` as one ``{token_id: Logprob}`` dict per
generated token: the top k plus the sampled token, ``finish_reason``, ``stop_reason``)
and compare with values computed by hand.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conself.sampling import TransformersSampler, make_sampler
from conself.sampling.backend import topk_entropy
from conself.sampling.vllm_backend import (
    INSTALL_HINT,
    VllmSampler,
    closing_cut,
    finish_reason,
    generation_from_output,
    position_topk_entropy,
    token_nll,
)


@dataclass
class Logprob:
    """Shaped like ``vllm.logprobs.Logprob``."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


VOCAB = {
    0: "<eos>",
    1: "Here",
    2: ":\n",
    3: "```",
    4: "python\n",
    5: "print(1)\n",
    6: "```",
    7: "\n",
    8: "more",
    9: "``",
    10: "`",
}
EOS = {0}


def decode(ids) -> str:
    # skip_special_tokens: the eos writes nothing
    return "".join(VOCAB[i] for i in ids if i not in EOS)


def test_nll_and_topk_entropy_of_one_position_by_hand() -> None:
    # k = 2; the sampled token 9 ranks third, so vLLM returns it as an extra entry.
    position = {
        5: Logprob(math.log(0.5), 1, "a"),
        7: Logprob(math.log(0.25), 2, "b"),
        9: Logprob(math.log(0.125), 3, "c"),
    }
    assert token_nll(position, 9) == pytest.approx(math.log(8))
    # top 2 renormalised: (2/3, 1/3) -> H = ln 3 - (2/3) ln 2
    expected = math.log(3) - 2 / 3 * math.log(2)
    assert position_topk_entropy(position, 2) == pytest.approx(expected)
    # Plain floats are accepted too; with k = 3 all three count: (4/7, 2/7, 1/7).
    floats = {t: lp.logprob for t, lp in position.items()}
    p = [4 / 7, 2 / 7, 1 / 7]
    assert position_topk_entropy(floats, 3) == pytest.approx(-sum(x * math.log(x) for x in p))
    with pytest.raises(ValueError, match="missing"):
        token_nll(position, 42)


def test_topk_entropy_is_the_transformers_backends_definition() -> None:
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(3, 50) * 3, dim=-1)
    expected = topk_entropy(logp, 15)
    for row in range(3):
        values, ids = torch.topk(logp[row], 16)  # top 15 + one extra, as vLLM returns
        position = {int(i): Logprob(float(v)) for i, v in zip(ids, values, strict=True)}
        assert position_topk_entropy(position, 15) == pytest.approx(float(expected[row]), abs=1e-5)


def test_closing_cut_finds_the_first_closing_fence() -> None:
    assert closing_cut([1, 2, 3, 4, 5, 6, 7, 8], decode) == 6
    assert closing_cut([3, 4, 5, 9, 10, 7], decode) == 5  # fence split over two tokens
    assert closing_cut([1, 2, 3, 4, 5], decode) is None  # opened, never closed
    assert closing_cut([], decode) is None


def _positions(ids: list[int], probs: list[float]) -> list[dict[int, Logprob]]:
    """One dict per position: the sampled token with probability p, one rival with 1 - p."""
    out = []
    for tok, p in zip(ids, probs, strict=True):
        rival = 8 if tok != 8 else 1
        out.append({tok: Logprob(math.log(p), 1), rival: Logprob(math.log(1 - p), 2)})
    return out


def _binary_entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_stop_string_output_is_cut_right_after_the_closing_fence() -> None:
    # vLLM stopped on "\n```\n" and kept it: the trailing "\n" token is dropped.
    ids = [3, 4, 5, 6, 7]
    probs = [0.9, 0.8, 0.5, 0.6, 0.7]
    gen = generation_from_output(
        ids,
        _positions(ids, probs),
        "stop",
        "\n```\n",
        decode=decode,
        end_ids=EOS,
        k=2,
        stop_at_code_block=True,
    )
    assert (gen.text, gen.n_tokens, gen.finish_reason) == ("```python\nprint(1)\n```", 4, "stop")
    counted = probs[:4]
    assert gen.mean_nll == pytest.approx(sum(-math.log(p) for p in counted) / 4)
    assert gen.mean_topk_entropy == pytest.approx(sum(map(_binary_entropy, counted)) / 4)


def test_eos_is_counted_and_reported() -> None:
    ids = [1, 2, 0]
    probs = [0.9, 0.5, 0.8]
    gen = generation_from_output(
        ids,
        _positions(ids, probs),
        "stop",
        None,
        decode=decode,
        end_ids=EOS,
        k=2,
        stop_at_code_block=True,
    )
    assert (gen.text, gen.n_tokens, gen.finish_reason) == ("Here:\n", 3, "eos")
    assert gen.mean_nll == pytest.approx(sum(-math.log(p) for p in probs) / 3)


def test_length_and_no_confidence() -> None:
    gen = generation_from_output(
        [1, 2, 3],
        None,
        "length",
        None,
        decode=decode,
        end_ids=EOS,
        k=2,
        stop_at_code_block=True,
    )
    assert (gen.text, gen.n_tokens, gen.finish_reason) == ("Here:\n```", 3, "length")
    assert math.isnan(gen.mean_nll) and math.isnan(gen.mean_topk_entropy)
    # Without stop_at_code_block a closed block does not cut the completion.
    free = generation_from_output(
        [3, 4, 5, 6, 7, 8],
        None,
        "length",
        None,
        decode=decode,
        end_ids=EOS,
        k=2,
        stop_at_code_block=False,
    )
    assert (free.n_tokens, free.finish_reason) == (6, "length")


def test_finish_reason_mapping() -> None:
    assert finish_reason("stop", "\n```\n", [3, 4, 5, 6, 7], EOS, 4) == ("stop", 4)
    assert finish_reason("stop", None, [1, 0], EOS, None) == ("eos", 2)
    assert finish_reason("stop", 0, [1, 0], EOS, None) == ("eos", 2)  # stop_token_ids hit
    assert finish_reason("length", None, [1, 2], EOS, None) == ("length", 2)
    # A stop string without a closed block: stopped, kept as is (dropped later as fenceless).
    assert finish_reason("stop", "\n```\n", [1, 2, 3, 7], EOS, None) == ("stop", 4)


def test_missing_logprob_positions_are_an_error() -> None:
    with pytest.raises(ValueError, match="logprob positions"):
        generation_from_output(
            [1, 2],
            _positions([1], [0.5]),
            "length",
            None,
            decode=decode,
            end_ids=EOS,
            k=2,
            stop_at_code_block=False,
        )


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_without_vllm_the_backend_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ImportError) as info:
        VllmSampler(tmp_path)
    assert str(info.value) == INSTALL_HINT and 'pip install "conself[vllm]"' in INSTALL_HINT
    with pytest.raises(ImportError, match="conself\\[vllm\\]"):
        make_sampler(tmp_path, backend="vllm")


def test_make_sampler_builds_the_named_backend(tiny_checkpoint_dir: Path) -> None:
    sampler = make_sampler(tiny_checkpoint_dir, backend="transformers", dtype="float32")
    assert isinstance(sampler, TransformersSampler)
    with pytest.raises(ValueError, match="backend"):
        make_sampler(tiny_checkpoint_dir, backend="llama.cpp")
