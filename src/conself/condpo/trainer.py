"""`ConDPOTrainer`: TRL's `DPOTrainer` with an external per-pair weight.

Why a subclass: TRL 1.16 has no per-pair weight (`DPOConfig.use_weighting` is
WPO, a model-probability weight), and its loss is computed inline in the private
`_compute_loss`. This subclass keeps a ``weight`` column through the dataset and
the collator and recomputes the sigmoid DPO loss with the weight applied.

TRL internals this relies on (pinned to ``trl>=1.16,<1.17``; tested numerically
against `DPOTrainer` itself in ``tests/condpo``):

- ``DPOTrainer._set_signature_columns_if_needed`` (keep the ``weight`` column);
- ``DPOTrainer._compute_loss(model, inputs, return_outputs)`` and
  ``DPOTrainer.compute_ref_log_probs(model, inputs)`` (drop ``weight`` before the
  model call; the loss itself is recomputed here);
- the fused LM head forward ``model(..., labels=..., fused_lm_head=True)`` whose
  output carries ``log_probs``, ``entropy``, ``mean_logits``, ``is_top1``;
- ``trl.trainer.utils.use_adapter`` and ``trl.models.utils.disable_gradient_checkpointing``;
- the attributes ``_metrics``, ``_total_train_tokens``, ``_tp_size``,
  ``aux_loss_enabled``, ``router_aux_loss_coef``, ``precompute_ref_logps``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import trl
from accelerate.utils import is_peft_model
from datasets import Dataset
from packaging.version import Version
from trl import DPOConfig, DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from conself.condpo.loss import condpo_loss, dpo_sigmoid_losses

logger = logging.getLogger(__name__)

TESTED_TRL = ("1.16", "1.17")  # [low, high): the private internals above are checked there
if not Version(TESTED_TRL[0]) <= Version(trl.__version__) < Version(TESTED_TRL[1]):
    logger.warning(
        "ConDPOTrainer hooks private DPOTrainer internals tested with trl>=%s,<%s; found trl %s. "
        "Run tests/condpo before trusting the weighted loss.",
        *TESTED_TRL,
        trl.__version__,
    )

WEIGHT_COLUMN = "weight"
_NON_MODEL_KEYS = frozenset(
    {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", WEIGHT_COLUMN}
)


class WeightedPreferenceCollator:
    """Wraps TRL's preference collator and adds a float ``weight`` tensor, one per pair.

    Why a wrapper rather than a new collator: TRL builds its collator with the
    resolved pad token, truncation and padding options; wrapping keeps all of it.
    """

    def __init__(self, inner: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if not examples or WEIGHT_COLUMN not in examples[0]:
            return self.inner(examples)
        weights = torch.tensor([float(ex[WEIGHT_COLUMN]) for ex in examples], dtype=torch.float32)
        batch = self.inner([{k: v for k, v in ex.items() if k != WEIGHT_COLUMN} for ex in examples])
        batch[WEIGHT_COLUMN] = weights
        return batch


def _check_weights(dataset: Any, name: str) -> None:
    """Refuse a missing, non-finite or negative weight early, with the dataset's name."""
    if not isinstance(dataset, Dataset):
        return  # streaming datasets are checked batch by batch in the loss
    if WEIGHT_COLUMN not in dataset.column_names:
        raise ValueError(
            f"ConDPOTrainer(weighted=True) needs a '{WEIGHT_COLUMN}' column in the {name} dataset; "
            f"found columns {dataset.column_names}. Pass weighted=False for plain DPO."
        )
    bad = [
        w
        for w in dataset[WEIGHT_COLUMN]
        if w is None or not math.isfinite(float(w)) or float(w) < 0
    ]
    if bad:
        raise ValueError(
            f"{name} dataset has {len(bad)} invalid pair weight(s) (need finite, >= 0), "
            f"e.g. {bad[:3]}"
        )


class ConDPOTrainer(DPOTrainer):
    """Sigmoid DPO with each pair's loss multiplied by its ``weight`` and averaged over the batch.

    ``weighted=False`` ignores the weights and runs TRL's own loss unchanged (the
    unweighted-DPO baseline on the same pairs). Logged metrics are TRL's (``loss``,
    ``rewards/*``, ``logps/*``, ...) plus ``weight/mean``, ``weight/min``,
    ``weight/max`` and ``loss/unweighted`` (the plain DPO loss of the same batch). Like
    every TRL metric these are per micro-batch and averaged over the logging window,
    so with batch size 1 ``weight/min`` is the window's mean weight, not its minimum.
    """

    def __init__(
        self,
        model: Any,
        ref_model: Any = None,
        args: DPOConfig | None = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        *,
        weighted: bool = True,
        **kwargs: Any,
    ) -> None:
        self.weighted = weighted
        if weighted:
            self._check_supported(args)
            _check_weights(train_dataset, "train")
            if isinstance(eval_dataset, dict):
                for key, ds in eval_dataset.items():
                    _check_weights(ds, f"eval '{key}'")
            elif eval_dataset is not None:
                _check_weights(eval_dataset, "eval")
        super().__init__(
            model,
            ref_model=ref_model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            **kwargs,
        )
        if self._is_vision_dataset:
            raise ValueError("ConDPOTrainer supports text preference data only")
        # Wrapped after TRL built (and, for precomputed reference log-probs, used) its collator.
        self.data_collator = WeightedPreferenceCollator(self.data_collator)

    @staticmethod
    def _check_supported(dpo_args: DPOConfig | None) -> None:
        """The weighted loss re-implements plain sigmoid DPO only; refuse options it would drop."""
        if dpo_args is None:
            return
        problems = []
        if list(dpo_args.loss_type) != ["sigmoid"]:
            problems.append(f"loss_type={dpo_args.loss_type} (need ['sigmoid'])")
        if dpo_args.f_divergence_type != "reverse_kl":
            problems.append(f"f_divergence_type={dpo_args.f_divergence_type!r} (need 'reverse_kl')")
        if dpo_args.ld_alpha is not None:
            problems.append(f"ld_alpha={dpo_args.ld_alpha}")
        if dpo_args.use_weighting:
            problems.append("use_weighting=True (WPO)")
        if dpo_args.loss_weights not in (None, [1.0]):
            problems.append(f"loss_weights={dpo_args.loss_weights}")
        if problems:
            raise ValueError(
                "ConDPOTrainer(weighted=True) does not support: " + "; ".join(problems)
            )

    def _set_signature_columns_if_needed(self) -> None:
        """Keep ``weight`` when Trainer drops the columns the collator does not use."""
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None and WEIGHT_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, WEIGHT_COLUMN]

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        """Drop ``weight`` before TRL's reference forward (precomputed reference log-probs)."""
        return super().compute_ref_log_probs(
            model, {k: v for k, v in inputs.items() if k != WEIGHT_COLUMN}
        )

    def _log_weights(self, mode: str, weights: torch.Tensor) -> None:
        gathered = self.accelerator.gather_for_metrics(weights.detach().float())
        self._metrics[mode]["weight/mean"].append(gathered.mean().item())
        self._metrics[mode]["weight/min"].append(gathered.min().item())
        self._metrics[mode]["weight/max"].append(gathered.max().item())

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mode = "train" if self.model.training else "eval"
        weights = inputs.get(WEIGHT_COLUMN)
        if not self.weighted:
            if weights is not None:
                self._log_weights(mode, weights)
            return super()._compute_loss(
                model, {k: v for k, v in inputs.items() if k != WEIGHT_COLUMN}, return_outputs
            )
        if weights is None:
            raise ValueError(
                f"batch has no '{WEIGHT_COLUMN}' (ConDPOTrainer(weighted=True) needs one per pair)"
            )
        if not torch.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(
                f"invalid pair weights in batch (need finite, >= 0): {weights.tolist()}"
            )

        # From here on this mirrors TRL 1.16 `DPOTrainer._compute_loss` for loss_type="sigmoid",
        # f_divergence_type="reverse_kl", ld_alpha=None, use_weighting=False (checked in __init__).
        model_kwargs = {k: v for k, v in inputs.items() if k not in _NON_MODEL_KEYS}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        completion_mask = inputs["completion_mask"]
        shift_completion_mask = completion_mask[..., 1:]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        seq_len = shift_completion_mask.size(1)
        per_token_logps = outputs.log_probs[:, -seq_len:]
        chosen_logps, rejected_logps = per_token_logps.sum(dim=1).chunk(2, dim=0)

        if self.precompute_ref_logps:
            ref_chosen_logps, ref_rejected_logps = (
                inputs["ref_chosen_logps"],
                inputs["ref_rejected_logps"],
            )
        else:
            ref_model_kwargs = {
                k: v for k, v in model_kwargs.items() if k != "output_router_logits"
            }
            with (
                torch.no_grad(),
                disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
            ):
                if is_peft_model(self.model) and self.ref_model is None:
                    # Reference = the starting model: adapter disabled (or TRL's frozen "ref"
                    # copy of a pre-existing adapter): no second full model in memory.
                    unwrapped = self.accelerator.unwrap_model(self.model)
                    with use_adapter(
                        unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None
                    ):
                        ref_outputs = self.model(
                            **ref_model_kwargs, labels=labels, fused_lm_head=True
                        )
                else:
                    ref_outputs = self.ref_model(
                        **ref_model_kwargs, labels=labels, fused_lm_head=True
                    )
            ref_chosen_logps, ref_rejected_logps = (
                ref_outputs.log_probs[:, -seq_len:].sum(dim=1).chunk(2, dim=0)
            )

        weights = weights.to(device=chosen_logps.device)
        loss = condpo_loss(
            chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, weights, self.beta
        )
        with torch.no_grad():
            unweighted = dpo_sigmoid_losses(
                chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, self.beta
            ).mean()

        if self.aux_loss_enabled:
            aux_loss = outputs.aux_loss
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(
                self.accelerator.gather_for_metrics(aux_loss).mean().item()
            )

        self._log_weights(mode, weights)
        self._metrics[mode]["loss/unweighted"].append(
            self.accelerator.gather_for_metrics(unweighted).mean().item()
        )
        self._log_trl_metrics(
            mode,
            inputs=inputs,
            outputs=outputs,
            shift_completion_mask=shift_completion_mask,
            chosen_logps=chosen_logps,
            rejected_logps=rejected_logps,
            ref_chosen_logps=ref_chosen_logps,
            ref_rejected_logps=ref_rejected_logps,
        )

        if return_outputs:
            warnings.warn(
                "return_outputs=True recomputes the logits with an extra forward pass (as in TRL)",
                FutureWarning,
                stacklevel=2,
            )
            with torch.no_grad():
                outputs = model(**model_kwargs)
        return (loss, outputs) if return_outputs else loss

    def _log_trl_metrics(
        self,
        mode: str,
        *,
        inputs: dict[str, Any],
        outputs: Any,
        shift_completion_mask: torch.Tensor,
        chosen_logps: torch.Tensor,
        rejected_logps: torch.Tensor,
        ref_chosen_logps: torch.Tensor,
        ref_rejected_logps: torch.Tensor,
    ) -> None:
        """TRL 1.16's metrics, same names and arithmetic, so weighted and plain runs compare."""
        acc = self.accelerator
        seq_len = shift_completion_mask.size(1)
        mask = shift_completion_mask

        entropy_sum = acc.gather_for_metrics(
            (outputs.entropy[:, -seq_len:].detach() * mask).sum()
        ).sum()
        total_tokens = acc.gather_for_metrics(mask.sum()).sum()
        self._metrics[mode]["entropy"].append(
            (entropy_sum / total_tokens).item() if total_tokens > 0 else 0.0
        )

        if mode == "train":
            num_tokens_in_batch = (
                acc.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            )
            self._total_train_tokens += num_tokens_in_batch // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

        chosen_mean_logits, rejected_mean_logits = outputs.mean_logits[:, -seq_len:].chunk(2, dim=0)
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        total_chosen_logits = (
            acc.gather_for_metrics(chosen_mean_logits[chosen_mask.bool()].sum()).sum().item()
        )
        total_chosen_tokens = acc.gather_for_metrics(chosen_mask.sum()).sum().item()
        total_rejected_logits = (
            acc.gather_for_metrics(rejected_mean_logits[rejected_mask.bool()].sum()).sum().item()
        )
        total_rejected_tokens = acc.gather_for_metrics(rejected_mask.sum()).sum().item()
        self._metrics[mode]["logits/chosen"].append(
            total_chosen_logits / total_chosen_tokens if total_chosen_tokens > 0 else 0.0
        )
        self._metrics[mode]["logits/rejected"].append(
            total_rejected_logits / total_rejected_tokens if total_rejected_tokens > 0 else 0.0
        )

        chosen_is_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
        correct_tokens = acc.gather_for_metrics((chosen_is_top1 & chosen_mask.bool()).sum())
        chosen_tokens = acc.gather_for_metrics(chosen_mask.sum())
        total_sum = chosen_tokens.sum()
        self._metrics[mode]["mean_token_accuracy"].append(
            (correct_tokens.sum() / total_sum).item() if total_sum > 0 else 0.0
        )

        chosen_rewards = self.beta * (chosen_logps - ref_chosen_logps).detach()
        rejected_rewards = self.beta * (rejected_logps - ref_rejected_logps).detach()
        self._metrics[mode]["rewards/chosen"].append(acc.gather(chosen_rewards).mean().item())
        self._metrics[mode]["rewards/rejected"].append(acc.gather(rejected_rewards).mean().item())
        self._metrics[mode]["rewards/accuracies"].append(
            acc.gather((chosen_rewards > rejected_rewards).float()).mean().item()
        )
        self._metrics[mode]["rewards/margins"].append(
            acc.gather(chosen_rewards - rejected_rewards).mean().item()
        )
        self._metrics[mode]["logps/chosen"].append(acc.gather(chosen_logps.detach()).mean().item())
        self._metrics[mode]["logps/rejected"].append(
            acc.gather(rejected_logps.detach()).mean().item()
        )
