"""Round lineage: two rounds on a tiny model rebuild exactly from the stored adapters."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from conself.condpo import (
    CondpoConfig,
    LineageError,
    lineage_adapters,
    load_lineage_model,
    load_policy,
    read_lineage,
    train_adapter,
    train_condpo,
)
from conself.models import checkpoint_fingerprint

TINY = {
    "learning_rate": 1e-2,
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


def _merged_state(peft_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in peft_model.merge_and_unload().state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        torch.testing.assert_close(v, b[k], rtol=0, atol=1e-6, msg=k)


def test_two_round_lineage_rebuilds_the_trained_weights(
    tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path
) -> None:
    cfg = CondpoConfig(**TINY)
    a1, a2 = str(tmp_path / "round1"), str(tmp_path / "round2")
    m1, model1 = train_adapter(str(tiny_model_dir), pairs_df, a1, cfg, return_model=True)
    want1 = _merged_state(model1)
    m2, model2 = train_adapter(
        str(tiny_model_dir), pairs_df, a2, cfg, parent_adapters=[a1], return_model=True
    )
    want2 = _merged_state(model2)

    # Round 2's reference is round 1's model (new adapter disabled): at the first step the
    # fresh adapter is zero, so policy == reference and every reward is exactly 0.
    first = next(h for h in m2["log_history"] if "loss" in h)
    assert first["rewards/chosen"] == pytest.approx(0.0, abs=1e-6)
    assert first["loss/unweighted"] == pytest.approx(math.log(2), abs=1e-5)

    rec1, rec2 = read_lineage(a1), read_lineage(a2)
    fp = checkpoint_fingerprint(tiny_model_dir)
    assert rec1["base_fingerprint"] == rec2["base_fingerprint"] == fp
    assert rec1["round_index"] == 0 and rec2["round_index"] == 1
    assert rec1["parents"] == [] and [p["adapter_dir"] for p in rec2["parents"]] == [a1]
    assert rec2["config"]["lora_r"] == 4 and rec2["method"] == "condpo"
    assert m1["round_index"] == 0 and m2["parent_adapters"] == [a1]
    for d in (a1, a2):  # only the adapter + metadata are stored, no full checkpoint
        assert not list(Path(d).glob("model*.safetensors"))

    base = load_lineage_model(tiny_model_dir)
    got1 = load_lineage_model(tiny_model_dir, [a1]).state_dict()
    got2, tok = load_lineage_model(tiny_model_dir, [a1, a2], with_tokenizer=True)
    _assert_same(got1, want1)
    _assert_same(got2.state_dict(), want2)
    assert tok.chat_template is not None
    assert lineage_adapters(a2) == [a1, a2] and lineage_adapters(a1) == [a1]
    policy, _ = load_policy(str(tiny_model_dir), a2)  # the last adapter brings its lineage
    _assert_same(policy.state_dict(), want2)
    changed = [k for k, v in base.state_dict().items() if not torch.equal(v, want2[k])]
    assert changed  # the rounds moved the weights
    assert any(not torch.equal(want1[k], want2[k]) for k in changed)


def test_lineage_errors_name_the_problem(
    tiny_model_dir: Path, pairs_df: pd.DataFrame, tmp_path: Path
) -> None:
    a1 = tmp_path / "round1"
    train_condpo(str(tiny_model_dir), pairs_df, str(a1), CondpoConfig(**{**TINY, "max_steps": 1}))

    other = tmp_path / "other_base"
    shutil.copytree(tiny_model_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "rms_norm_eps": 1e-5}))
    with pytest.raises(LineageError) as err:
        load_lineage_model(other, [a1])
    msg = str(err.value)
    assert checkpoint_fingerprint(other) in msg and checkpoint_fingerprint(tiny_model_dir) in msg
    assert str(a1) in msg
    with pytest.raises(LineageError, match="fingerprint"):
        train_condpo(
            str(other),
            pairs_df,
            str(tmp_path / "x"),
            CondpoConfig(**TINY),
            parent_adapters=[str(a1)],
        )

    with pytest.raises(LineageError, match="training order"):  # round 1 given twice
        load_lineage_model(tiny_model_dir, [a1, a1])
    with pytest.raises(LineageError, match=r"lineage\.json"):
        load_lineage_model(tiny_model_dir, [tiny_model_dir])
