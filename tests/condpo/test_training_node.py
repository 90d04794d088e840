"""The training node: method by parameter, lineage across rounds, and the multi-process path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from conself.condpo import read_lineage
from conself.models import checkpoint_fingerprint
from conself.pipelines.training.nodes import train_round_model

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONDPO = {
    "learning_rate": 1e-3,
    "num_train_epochs": 1,
    "gradient_accumulation_steps": 1,
    "max_length": 256,
    "lora_r": 4,
    "lora_alpha": 8,
    "use_cpu": True,
    "warmup_ratio": 0.0,
    "bf16": False,
    "max_steps": 2,
}


def _base(path: Path) -> dict:
    return {"name": str(path), "path": str(path), "fingerprint": checkpoint_fingerprint(path)}


def test_node_two_rounds_method_and_per_step_metrics(
    tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path
) -> None:
    params = {"adapters_dir": str(tmp_path / "adapters"), "condpo": CONDPO}
    round0, metrics = train_round_model(pairs_df, _base(tiny_model_dir), params)
    assert round0["round_index"] == 0 and round0["adapters"] == [round0["adapter_dir"]]
    assert read_lineage(round0["adapter_dir"])["method"] == "condpo"
    for key in (
        "training.step.loss",
        "training.step.rewards_margins",
        "training.step.logps_chosen",
        "training.step.weight_mean",
        "training.step.weight_min",
        "training.step.weight_max",
        "training.step.loss_unweighted",
    ):
        assert len(metrics[key]) == 2, key
        assert all(math.isfinite(e["value"]) for e in metrics[key])
    assert metrics["training.weight_mean"]["value"] == pytest.approx(pairs_df["weight"].mean())

    # Round 1 starts from round 0's model (a round_model carries its adapters), SFT baseline.
    next_base = {**_base(tiny_model_dir), "adapters": round0["adapters"]}
    round1, metrics1 = train_round_model(pairs_df, next_base, {**params, "method": "sft"})
    assert round1["round_index"] == 1 and round1["adapters"][0] == round0["adapter_dir"]
    rec = read_lineage(round1["adapter_dir"])
    assert rec["method"] == "sft" and rec["parents"][0]["adapter_dir"] == round0["adapter_dir"]
    assert "training.step.loss" in metrics1

    with pytest.raises(ValueError, match=r"training\.method"):
        train_round_model(pairs_df, _base(tiny_model_dir), {**params, "method": "rlhf"})
    assert len(list((tmp_path / "adapters").iterdir())) == 2  # no staging left behind


@pytest.mark.slow
def test_node_multi_process_cpu_ddp(
    tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 processes on CPU (torchrun + gloo) through `accelerate launch` and the shipped config."""
    monkeypatch.chdir(PROJECT_ROOT)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    params = {
        "adapters_dir": str(tmp_path / "adapters"),
        "condpo": CONDPO,
        "num_processes": 2,
        "accelerate_config": "conf/accelerate/ddp.yaml",
        "accelerate_args": ["--main_process_port", "29517"],
        "launch_timeout_s": 600,
    }
    round_model, metrics = train_round_model(pairs_df, _base(tiny_model_dir), params)
    adapter = Path(round_model["adapter_dir"])
    assert (adapter / "adapter_model.safetensors").is_file()
    meta = json.loads((adapter / "condpo_metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["ranks"] == [0, 1]  # both ranks ran
    assert read_lineage(adapter)["training"]["world_size"] == 2
    assert metrics["training.world_size"]["value"] == 2.0
    assert math.isfinite(metrics["training.train_loss"]["value"])
    # 4 pairs, batch 1 per rank, 2 ranks: 2 steps of 2 pairs each, weights gathered over ranks
    assert metrics["training.steps"]["value"] == 2.0
    assert [e["value"] for e in metrics["training.step.weight_max"]] != [
        e["value"] for e in metrics["training.step.weight_min"]
    ]


def test_node_bad_accelerate_config(tiny_model_dir: Path, pairs_df, tmp_path: Path) -> None:
    params = {
        "adapters_dir": str(tmp_path / "adapters"),
        "condpo": CONDPO,
        "num_processes": 2,
        "accelerate_config": str(tmp_path / "nope.yaml"),
    }
    with pytest.raises(FileNotFoundError, match="accelerate_config"):
        train_round_model(pairs_df, _base(tiny_model_dir), params)
    assert list((tmp_path / "adapters").iterdir()) == []
