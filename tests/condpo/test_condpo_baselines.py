"""Baselines on the same pairs, by parameter: unweighted DPO and SFT on the chosen programs."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from conself.condpo import CondpoConfig, build_sft_dataset, read_lineage, train_condpo

TINY = {
    "learning_rate": 1e-3,
    "num_train_epochs": 1,
    "gradient_accumulation_steps": 2,
    "max_length": 256,
    "lora_r": 4,
    "lora_alpha": 8,
    "use_cpu": True,
    "warmup_ratio": 0.0,
    "bf16": False,
    "max_steps": 2,
}


@pytest.mark.parametrize("method", ["dpo", "sft"])
def test_baseline_writes_an_adapter(
    method: str, tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / method
    metrics = train_condpo(
        str(tiny_model_dir), pairs_df, str(out), CondpoConfig(**TINY), method=method
    )
    for name in ("adapter_config.json", "adapter_model.safetensors", "lineage.json"):
        assert (out / name).is_file(), name
    assert metrics["method"] == method and read_lineage(out)["method"] == method
    assert metrics["steps"] == 2 and math.isfinite(metrics["train_loss"])
    assert metrics["weighted"] is False
    logged = [h for h in metrics["log_history"] if "loss" in h]
    assert logged and all(math.isfinite(h["loss"]) for h in logged)
    if method == "dpo":
        assert "rewards/margins" in logged[0] and "weight/mean" in logged[0]
    else:
        assert "mean_token_accuracy" in logged[0]


def test_sft_dataset_is_chosen_completions_deduplicated(pairs_df: pd.DataFrame) -> None:
    doubled = pd.concat([pairs_df, pairs_df.assign(rejected="pass\n")], ignore_index=True)
    ds = build_sft_dataset(doubled)
    assert len(ds) == len(pairs_df)
    assert ds.column_names == ["prompt", "completion"]
    assert ds[0]["completion"] == [{"role": "assistant", "content": pairs_df.loc[0, "chosen"]}]


def test_unknown_method_is_an_error(tiny_model_dir: Path, pairs_df, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown training method"):
        train_condpo(
            str(tiny_model_dir), pairs_df, str(tmp_path), CondpoConfig(**TINY), method="ppo"
        )
