"""`train_condpo` end to end on a saved tiny checkpoint, `load_policy`, and input checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conself.condpo import CondpoConfig, load_policy, train_condpo

TINY = {
    "learning_rate": 1e-3,
    "num_train_epochs": 1,
    "gradient_accumulation_steps": 2,
    "max_length": 256,
    "lora_r": 4,
    "lora_alpha": 8,
    "use_cpu": True,
    "warmup_ratio": 0.0,
}


def test_train_condpo_end_to_end(
    tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "adapter"
    metrics = train_condpo(str(tiny_model_dir), pairs_df, str(out), CondpoConfig(**TINY))

    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "condpo_metadata.json").read_text())
    assert meta["n_pairs"] == 4 and meta["base_model_dir"] == str(tiny_model_dir)
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4

    assert metrics["n_pairs"] == metrics["n_train_pairs"] == 4
    assert metrics["steps"] == 2  # 4 pairs, batch 1, accumulation 2, one epoch
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    assert metrics["weight_mean"] == pytest.approx(pairs_df["weight"].mean())
    assert metrics["weight_min"] == pytest.approx(0.25) and metrics["weight_max"] == 1.0
    assert metrics["train_runtime_s"] > 0
    steps = [h for h in metrics["log_history"] if "loss" in h]
    assert len(steps) == 2
    for key in ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "weight/mean"):
        assert key in steps[0], key
    assert json.dumps(metrics)  # the caller logs it to MLflow

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    merged, tokenizer = load_policy(str(tiny_model_dir), str(out))
    assert not merged.training
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base_sd, merged_sd = base.state_dict(), merged.state_dict()
    assert base_sd.keys() == merged_sd.keys()
    changed = [k for k in base_sd if not torch.equal(base_sd[k], merged_sd[k])]
    assert changed and all("proj" in k for k in changed)  # only LoRA-targeted linears move
    assert tokenizer.chat_template is not None
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a function"}],
        add_generation_prompt=True,
        return_tensors="pt",
    )["input_ids"]
    with torch.no_grad():
        assert not torch.equal(base(ids).logits, merged(ids).logits)

    plain, _ = load_policy(str(tiny_model_dir), None)
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in base_sd.items())


def test_train_condpo_is_seeded_and_unweighted_mode_runs(
    tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path
) -> None:
    cfg = CondpoConfig(**TINY, max_steps=1)
    a = train_condpo(str(tiny_model_dir), pairs_df, str(tmp_path / "a"), cfg)
    b = train_condpo(str(tiny_model_dir), pairs_df, str(tmp_path / "b"), cfg)
    assert [h.get("loss") for h in a["log_history"]] == [h.get("loss") for h in b["log_history"]]

    c = train_condpo(
        str(tiny_model_dir),
        pairs_df,
        str(tmp_path / "c"),
        CondpoConfig(**TINY, max_steps=1, weighted=False),
    )
    assert c["weighted"] is False and c["steps"] == 1
    assert "weight/mean" in c["log_history"][0]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame(columns=["prompt", "chosen", "rejected", "weight"]), "pairs is empty"),
        (pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}), "missing column"),
        (
            pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": [None], "weight": [1.0]}),
            "'rejected'",
        ),
        (
            pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"], "weight": [-0.5]}),
            "'weight'",
        ),
        (
            pd.DataFrame(
                {"prompt": ["p"], "chosen": ["a"], "rejected": ["b"], "weight": [float("nan")]}
            ),
            "'weight'",
        ),
    ],
)
def test_bad_pairs_raise_before_loading_anything(
    frame: pd.DataFrame, match: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=match):
        train_condpo(str(tmp_path / "no-model-here"), frame, str(tmp_path / "out"), CondpoConfig())


def test_config_from_dict_and_dpo_mapping(tmp_path: Path) -> None:
    cfg = CondpoConfig.from_dict({"beta": 0.2, "warmup_ratio": 0.1, "use_cpu": True})
    dpo = cfg.to_dpo_config(str(tmp_path))
    assert dpo.beta == 0.2 and dpo.loss_type == ["sigmoid"]
    assert dpo.report_to == [] or dpo.report_to in ("none", ["none"])
    assert dpo.use_cpu and dpo.bf16 and dpo.seed == 42
    assert dpo.gradient_accumulation_steps == 8 and dpo.learning_rate == 5e-6
    assert dpo.lr_scheduler_type == "cosine" and dpo.warmup_steps == 0.1
    with pytest.raises(ValueError, match="unknown Con-DPO parameter"):
        CondpoConfig.from_dict({"betta": 0.2})


def test_load_policy_rejects_a_non_adapter_dir(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        load_policy(str(tiny_model_dir), str(tmp_path))


@pytest.mark.parametrize(
    ("accumulation", "warmup_ratio", "skipped"),
    [(4, 0.1, True), (2, 0.1, False), (4, 0.0, False)],
)
def test_warmup_never_covers_every_step(
    tiny_model_dir: Path,
    pairs_df: pd.DataFrame,
    tmp_path: Path,
    accumulation: int,
    warmup_ratio: float,
    skipped: bool,
) -> None:
    """Linear warmup starts at learning rate 0: with 1 optimizer step at ratio 0.1 it would
    be the whole run and leave the adapter at exactly zero, so warmup is dropped then."""
    config = CondpoConfig(
        **{**TINY, "gradient_accumulation_steps": accumulation, "warmup_ratio": warmup_ratio}
    )
    metrics = train_condpo(str(tiny_model_dir), pairs_df, str(tmp_path / "a"), config)
    assert metrics["warmup_skipped"] is skipped
    rates = [h["learning_rate"] for h in metrics["log_history"] if "loss" in h]
    assert len(rates) == 4 // accumulation
    assert rates[-1] > 0
    if warmup_ratio and not skipped:
        assert rates[0] == 0.0  # warmup kept: its first step still runs at 0
    weights = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    assert max(t.abs().max().item() for k, t in weights.items() if "lora_B" in k) > 0
