"""`condpo_loss` against an independent implementation and a hand-computed case."""

from __future__ import annotations

import math

import pytest
import torch

from conself.condpo import condpo_loss


def _reference(pc, pr, rc, rr, w, beta):  # type: ignore[no-untyped-def]
    """Independent scalar loop: mean_i(w_i * -log(sigmoid(beta * margin_i)))."""
    total = 0.0
    for i in range(len(pc)):
        margin = (pc[i] - rc[i]) - (pr[i] - rr[i])
        total += w[i] * -math.log(1.0 / (1.0 + math.exp(-beta * margin)))
    return total / len(pc)


def test_hand_computed_scalar_case() -> None:
    # One pair: pc=-10, rc=-12 (chosen log-ratio +2), pr=-15, rr=-13 (rejected log-ratio -2),
    # margin = 2 - (-2) = 4, beta = 0.5 -> beta*margin = 2,
    # -logsigmoid(2) = log(1 + e^-2) = 0.126928011..., weight 0.5 -> 0.0634640055...
    t = torch.float64
    loss = condpo_loss(
        torch.tensor([-10.0], dtype=t),
        torch.tensor([-15.0], dtype=t),
        torch.tensor([-12.0], dtype=t),
        torch.tensor([-13.0], dtype=t),
        torch.tensor([0.5], dtype=t),
        beta=0.5,
    )
    assert loss.item() == pytest.approx(0.5 * math.log1p(math.exp(-2.0)), abs=1e-12)
    assert loss.item() == pytest.approx(0.0634640055, abs=1e-10)


def test_matches_independent_implementation() -> None:
    gen = torch.Generator().manual_seed(0)
    n = 7
    pc, pr, rc, rr = (-50 * torch.rand(n, generator=gen, dtype=torch.float64) for _ in range(4))
    w = torch.tensor([0.0, 1.0, 0.25, 2.0, 0.5, 1.0, 0.9], dtype=torch.float64)
    for beta in (0.1, 1.0):
        got = condpo_loss(pc, pr, rc, rr, w, beta)
        want = _reference(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), w.tolist(), beta)
        assert got.item() == pytest.approx(want, rel=1e-12)


def test_zero_weight_pair_has_no_gradient_and_counts_in_mean() -> None:
    pc = torch.tensor([-3.0, -4.0], requires_grad=True)
    pr = torch.tensor([-5.0, -2.0], requires_grad=True)
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-4.0, -3.0])
    loss = condpo_loss(pc, pr, rc, rr, torch.tensor([1.0, 0.0]), beta=0.1)
    loss.backward()
    assert pc.grad is not None and pr.grad is not None
    assert pc.grad[1].item() == 0.0 and pr.grad[1].item() == 0.0
    assert pc.grad[0].item() != 0.0
    # mean over both pairs (reference: mean(w * loss)), not over the nonzero weights only
    single = condpo_loss(pc[:1], pr[:1], rc[:1], rr[:1], torch.tensor([1.0]), beta=0.1)
    assert loss.item() == pytest.approx(single.item() / 2, rel=1e-6)


def test_weight_shape_mismatch_is_an_error() -> None:
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="weights shape"):
        condpo_loss(x, x, x, x, torch.ones(2), beta=0.1)
