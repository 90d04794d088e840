"""`ConDPOTrainer` on real batches of a tiny model, checked against TRL's own `DPOTrainer`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from peft import LoraConfig
from transformers import PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer

from conself.condpo import ConDPOTrainer, build_preference_dataset

ModelFactory = Callable[..., torch.nn.Module]


def _args(tmp_path: Path, **overrides: Any) -> DPOConfig:
    kwargs: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "activation_checkpointing": False,
        "per_device_train_batch_size": 4,
        "disable_tqdm": True,
        "save_strategy": "no",
        "beta": 0.1,
        "seed": 0,
    }
    kwargs.update(overrides)
    return DPOConfig(**kwargs)


def _batch(trainer: DPOTrainer, indices: list[int]) -> dict[str, Any]:
    return trainer.data_collator([trainer.train_dataset[i] for i in indices])


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def _loss_and_grads(
    trainer: DPOTrainer, batch: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return loss.detach(), _grads(trainer.model)


def _lora_trainer(
    tmp_path: Path, make_model: ModelFactory, tok: PreTrainedTokenizerFast, pairs: pd.DataFrame
) -> ConDPOTrainer:
    """LoRA policy whose reference is the adapter-disabled base; adapter moved off zero."""
    trainer = ConDPOTrainer(
        model=make_model(0),
        args=_args(tmp_path),
        train_dataset=build_preference_dataset(pairs),
        processing_class=tok,
        peft_config=LoraConfig(
            r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    trainer.model.train()
    return trainer


def test_weight_column_survives_column_removal_and_collation(
    tmp_path: Path, make_model: ModelFactory, tiny_tokenizer: PreTrainedTokenizerFast, pairs_df
) -> None:
    trainer = _lora_trainer(tmp_path, make_model, tiny_tokenizer, pairs_df)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "weight" in batch
    assert sorted(batch["weight"].tolist()) == sorted(pairs_df["weight"].tolist())
    assert batch["input_ids"].shape[0] == 2 * len(pairs_df)


def test_zero_weight_pair_gets_no_gradient(
    tmp_path: Path, make_model: ModelFactory, tiny_tokenizer: PreTrainedTokenizerFast, pairs_df
) -> None:
    pairs = pairs_df.copy()
    pairs.loc[1, "weight"] = 0.0
    trainer = _lora_trainer(tmp_path, make_model, tiny_tokenizer, pairs)

    # Only a zero-weight pair: loss 0 and every trainable gradient exactly 0.
    loss_zero, grads_zero = _loss_and_grads(trainer, _batch(trainer, [1]))
    assert loss_zero.item() == 0.0
    assert all(torch.count_nonzero(g) == 0 for g in grads_zero.values())

    # Pair 0 alone vs pair 0 + a zero-weight pair 1: mean(w*loss) halves, nothing else changes.
    loss_one, grads_one = _loss_and_grads(trainer, _batch(trainer, [0]))
    loss_two, grads_two = _loss_and_grads(trainer, _batch(trainer, [0, 1]))
    assert any(torch.count_nonzero(g) > 0 for g in grads_one.values())
    torch.testing.assert_close(loss_two, loss_one / 2, rtol=1e-5, atol=1e-7)
    for name, g in grads_one.items():
        torch.testing.assert_close(grads_two[name], g / 2, rtol=1e-4, atol=1e-7, msg=name)


def test_unit_weights_equal_trl_dpo_loss_and_gradients(
    tmp_path: Path, make_model: ModelFactory, tiny_tokenizer: PreTrainedTokenizerFast, pairs_df
) -> None:
    """Full fine-tuning with a distinct reference model, so the DPO margins are non-trivial."""
    ones = pairs_df.assign(weight=1.0)
    dataset = build_preference_dataset(ones)
    kw: dict[str, Any] = {"train_dataset": dataset, "processing_class": tiny_tokenizer}
    trl_trainer = DPOTrainer(
        model=make_model(0), ref_model=make_model(1), args=_args(tmp_path / "trl"), **kw
    )
    con_trainer = ConDPOTrainer(
        model=make_model(0), ref_model=make_model(1), args=_args(tmp_path / "con"), **kw
    )
    off_trainer = ConDPOTrainer(
        model=make_model(0),
        ref_model=make_model(1),
        args=_args(tmp_path / "off"),
        weighted=False,
        train_dataset=build_preference_dataset(pairs_df),  # non-unit weights, ignored
        processing_class=tiny_tokenizer,
    )
    idx = list(range(len(pairs_df)))
    results = {}
    for name, trainer in (("trl", trl_trainer), ("con", con_trainer), ("off", off_trainer)):
        trainer.model.train()
        results[name] = _loss_and_grads(trainer, _batch(trainer, idx))
    trl_loss, trl_grads = results["trl"]
    assert trl_loss.item() != pytest.approx(0.6931, abs=1e-3)  # not the trivial policy == reference
    for name in ("con", "off"):
        loss, grads = results[name]
        torch.testing.assert_close(loss, trl_loss, rtol=0, atol=1e-6)
        for pname, g in trl_grads.items():
            torch.testing.assert_close(grads[pname], g, rtol=1e-5, atol=1e-7, msg=pname)

    trl_metrics = trl_trainer._metrics["train"]
    con_metrics = con_trainer._metrics["train"]
    assert set(trl_metrics) <= set(con_metrics)
    for key in (
        "rewards/chosen",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "entropy",
    ):
        assert con_metrics[key][-1] == pytest.approx(trl_metrics[key][-1], rel=1e-5, abs=1e-6), key
    assert con_metrics["weight/mean"] == [1.0]
    assert con_metrics["loss/unweighted"][-1] == pytest.approx(trl_loss.item(), rel=1e-6)
    assert off_trainer._metrics["train"]["weight/mean"][-1] == pytest.approx(
        float(pairs_df["weight"].mean())
    )


def test_weighted_loss_is_mean_of_weight_times_trl_per_pair_loss(
    tmp_path: Path, make_model: ModelFactory, tiny_tokenizer: PreTrainedTokenizerFast, pairs_df
) -> None:
    """TRL's loss on a one-pair batch is that pair's DPO loss; Con-DPO must average w_i times it."""
    dataset = build_preference_dataset(pairs_df)
    kw: dict[str, Any] = {"train_dataset": dataset, "processing_class": tiny_tokenizer}
    trl_trainer = DPOTrainer(
        model=make_model(0), ref_model=make_model(1), args=_args(tmp_path / "trl"), **kw
    )
    con_trainer = ConDPOTrainer(
        model=make_model(0), ref_model=make_model(1), args=_args(tmp_path / "con"), **kw
    )
    with torch.no_grad():
        per_pair = torch.stack(
            [
                trl_trainer.compute_loss(trl_trainer.model, _batch(trl_trainer, [i]))
                for i in range(4)
            ]
        )
        weighted = con_trainer.compute_loss(con_trainer.model, _batch(con_trainer, [0, 1, 2, 3]))
    weights = torch.tensor(pairs_df["weight"].tolist())
    torch.testing.assert_close(weighted, (weights * per_pair).mean(), rtol=1e-5, atol=1e-7)


def test_precomputed_reference_matches_on_the_fly(
    tmp_path: Path, make_model: ModelFactory, tiny_tokenizer: PreTrainedTokenizerFast, pairs_df
) -> None:
    dataset = build_preference_dataset(pairs_df)
    kw: dict[str, Any] = {"train_dataset": dataset, "processing_class": tiny_tokenizer}
    live = ConDPOTrainer(model=make_model(0), ref_model=make_model(1), args=_args(tmp_path), **kw)
    pre = ConDPOTrainer(
        model=make_model(0),
        ref_model=make_model(1),
        args=_args(tmp_path / "pre", precompute_ref_log_probs=True),
        **kw,
    )
    batch = next(iter(pre.get_train_dataloader()))
    assert {"weight", "ref_chosen_logps", "ref_rejected_logps"} <= set(batch)
    order = [pairs_df["weight"].tolist().index(w) for w in batch["weight"].tolist()]
    with torch.no_grad():
        got = pre.compute_loss(pre.model, batch)
        want = live.compute_loss(live.model, _batch(live, order))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_refuses_missing_or_bad_weights_and_unsupported_losses(
    tmp_path: Path, make_model: ModelFactory, tiny_tokenizer: PreTrainedTokenizerFast, pairs_df
) -> None:
    no_weight = build_preference_dataset(pairs_df).remove_columns("weight")
    with pytest.raises(ValueError, match="'weight' column"):
        ConDPOTrainer(
            model=make_model(0),
            args=_args(tmp_path),
            train_dataset=no_weight,
            processing_class=tiny_tokenizer,
        )
    negative = build_preference_dataset(pairs_df).map(lambda _: {"weight": -1.0})
    with pytest.raises(ValueError, match="invalid pair weight"):
        ConDPOTrainer(
            model=make_model(0),
            args=_args(tmp_path),
            train_dataset=negative,
            processing_class=tiny_tokenizer,
        )
    with pytest.raises(ValueError, match="loss_type"):
        ConDPOTrainer(
            model=make_model(0),
            args=_args(tmp_path, loss_type=["ipo"]),
            train_dataset=build_preference_dataset(pairs_df),
            processing_class=tiny_tokenizer,
        )
