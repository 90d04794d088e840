"""The Con-DPO objective: sigmoid DPO per pair, scaled by the pair's weight.

Why a separate module: this is the one place the formula lives, so the trainer,
the tests and any benchmark all use exactly the same arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_sigmoid_losses(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-pair sigmoid DPO loss ``-logsigmoid(beta * ((pc - rc) - (pr - rr)))``.

    The operation order matches TRL 1.16 (`chosen_logratios - rejected_logratios`),
    so with unit weights the result is bitwise equal to TRL's own loss.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))


def condpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    weights: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Batch Con-DPO loss ``mean_i(w_i * -logsigmoid(beta * margin_i))`` (paper: mean(w * loss)).

    The mean is over all pairs of the batch, zero-weight ones included, as in the
    reference implementation: a zero-weight pair contributes nothing (and no
    gradient) but still counts in the denominator.
    """
    losses = dpo_sigmoid_losses(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta
    )
    if weights.shape != losses.shape:
        raise ValueError(
            f"weights shape {tuple(weights.shape)} does not match the {tuple(losses.shape)} pairs"
        )
    return (weights.to(device=losses.device, dtype=losses.dtype) * losses).mean()
