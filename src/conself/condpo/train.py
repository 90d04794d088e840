"""Train a LoRA adapter with Con-DPO on weighted preference pairs, and load the result.

Why here and not in a Kedro node: the training step must be testable and usable
without Kedro (benchmarks, multi-process launches); the node only adapts
parameters and datasets to `train_condpo`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)

from conself.condpo.config import CondpoConfig, resolve_dtype
from conself.condpo.trainer import WEIGHT_COLUMN, ConDPOTrainer

logger = logging.getLogger(__name__)

PAIR_COLUMNS = ("prompt", "chosen", "rejected", WEIGHT_COLUMN)
METADATA_FILE = "condpo_metadata.json"


def validate_pairs(pairs: pd.DataFrame) -> None:
    """Refuse unusable pairs with a message naming the column and the row."""
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"pairs must be a pandas DataFrame, got {type(pairs).__name__}")
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs is missing column(s) {missing}; has {list(pairs.columns)}")
    if pairs.empty:
        raise ValueError(
            "pairs is empty: there is nothing to train Con-DPO on (skip training for this round)"
        )
    for col in ("prompt", "chosen", "rejected"):
        bad = pairs.index[~pairs[col].map(lambda v: isinstance(v, str) and v != "")]
        if len(bad):
            raise ValueError(
                f"pairs column '{col}' must be a non-empty string; bad row(s) {list(bad[:5])}"
            )
    weights = pd.to_numeric(pairs[WEIGHT_COLUMN], errors="coerce")
    bad = pairs.index[~weights.map(lambda w: math.isfinite(w) and w >= 0)]
    if len(bad):
        raise ValueError(
            f"pairs column 'weight' must be finite and >= 0; bad row(s) {list(bad[:5])}"
        )


def build_preference_dataset(pairs: pd.DataFrame) -> Dataset:
    """Conversational preference rows; TRL applies the tokenizer's chat template to them."""
    validate_pairs(pairs)
    records = [
        {
            "prompt": [{"role": "user", "content": row.prompt}],
            "chosen": [{"role": "assistant", "content": row.chosen}],
            "rejected": [{"role": "assistant", "content": row.rejected}],
            WEIGHT_COLUMN: float(row.weight),
        }
        for row in pairs[list(PAIR_COLUMNS)].itertuples(index=False)
    ]
    return Dataset.from_list(records)


def weight_stats(weights: pd.Series) -> dict[str, float]:
    w = pd.to_numeric(weights).astype(float)
    return {
        "weight_mean": float(w.mean()),
        "weight_min": float(w.min()),
        "weight_max": float(w.max()),
        "weight_sum": float(w.sum()),
        "n_zero_weight": int((w == 0).sum()),
    }


def _lora_config(config: CondpoConfig) -> LoraConfig:
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )


def train_condpo(
    model_dir: str,
    pairs: pd.DataFrame,
    output_dir: str,
    config: CondpoConfig | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter on `pairs` with Con-DPO and save adapter + tokenizer to `output_dir`.

    The reference policy is the model in `model_dir` itself (the adapter disabled),
    so no second full copy is held in memory. Returns the metrics the caller logs.
    """
    if not isinstance(config, CondpoConfig):
        config = CondpoConfig.from_dict(config)
    dataset = build_preference_dataset(pairs)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.chat_template is None:
        raise ValueError(
            f"tokenizer in {model_dir} has no chat_template; Con-DPO builds chat-formatted pairs"
        )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype(config.model_dtype))
    args = config.to_dpo_config(str(out))
    logger.info(
        "Con-DPO: %d pairs, weighted=%s, beta=%s, lr=%s, epochs=%s, batch=%dx%d, cpu=%s, bf16=%s",
        len(dataset),
        config.weighted,
        config.beta,
        config.learning_rate,
        config.num_train_epochs,
        config.per_device_train_batch_size,
        config.gradient_accumulation_steps,
        args.use_cpu,
        args.bf16,
    )
    trainer = ConDPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_lora_config(config),
        weighted=config.weighted,
    )
    n_train = len(trainer.train_dataset)
    if n_train == 0:
        raise ValueError(
            f"all {len(dataset)} pairs have a prompt longer than max_length={config.max_length}"
        )
    if n_train < len(dataset):
        logger.warning(
            "Con-DPO: %d of %d pairs dropped (prompt >= max_length)",
            len(dataset) - n_train,
            len(dataset),
        )

    start = time.perf_counter()
    result = trainer.train()
    runtime = time.perf_counter() - start
    trainer.save_model(str(out))  # adapter + tokenizer (processing_class)

    history = [dict(entry) for entry in trainer.state.log_history]
    step_losses = [entry["loss"] for entry in history if "loss" in entry]
    metrics: dict[str, Any] = {
        "train_loss": float(result.training_loss),
        "final_loss": float(step_losses[-1]) if step_losses else float("nan"),
        "n_pairs": len(dataset),
        "n_train_pairs": n_train,
        "steps": int(trainer.state.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_runtime_s": runtime,
        "weighted": config.weighted,
        "log_history": history,
        "adapter_dir": str(out),
        **weight_stats(pairs[WEIGHT_COLUMN]),
    }
    if config.save_metadata:
        meta = {
            "base_model_dir": str(model_dir),
            "config": dataclasses.asdict(config),
            **{k: v for k, v in metrics.items() if k != "log_history"},
        }
        (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str))
    logger.info(
        "Con-DPO done: %d steps in %.1fs, train_loss=%.4f",
        metrics["steps"],
        runtime,
        metrics["train_loss"],
    )
    del trainer
    return metrics


def load_policy(
    model_dir: str,
    adapter_dir: str | None = None,
    dtype: str | torch.dtype | None = torch.float32,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base model with the Con-DPO adapter merged in, in eval mode, for sampling and evaluation.

    Why merged: generation then runs at the base model's speed with no peft wrapper.
    The tokenizer is taken from the adapter directory when it holds one (as saved
    by `train_condpo`), else from `model_dir`.
    """
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype(dtype))
    tokenizer_dir = model_dir
    if adapter_dir is not None:
        adapter_path = Path(adapter_dir)
        if not (adapter_path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"no adapter_config.json in {adapter_dir}: not a Con-DPO adapter directory"
            )
        model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
        if (adapter_path / "tokenizer_config.json").is_file():
            tokenizer_dir = str(adapter_path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model.eval()
    return model, tokenizer
