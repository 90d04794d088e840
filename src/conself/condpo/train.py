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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from accelerate.utils import gather_object
from datasets import Dataset
from peft import LoraConfig
from transformers import (
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)
from trl import SFTTrainer

from conself.condpo.config import CondpoConfig
from conself.condpo.lineage import (
    LINEAGE_FILE,
    lineage_adapters,
    load_base_model,
    merge_adapters,
    verify_lineage,
    write_lineage,
)
from conself.condpo.trainer import WEIGHT_COLUMN, ConDPOTrainer
from conself.models import checkpoint_fingerprint

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


METHODS = ("condpo", "dpo", "sft")


def build_sft_dataset(pairs: pd.DataFrame) -> Dataset:
    """Prompt-completion conversational rows of the chosen programs, one per (prompt, chosen).

    Why deduplicated: pairs are chosen x rejected, so a chosen program appears in
    several pairs; SFT on the chosen programs should see each once.
    """
    validate_pairs(pairs)
    unique = pairs.drop_duplicates(subset=["prompt", "chosen"])
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": row.prompt}],
                "completion": [{"role": "assistant", "content": row.chosen}],
            }
            for row in unique[["prompt", "chosen"]].itertuples(index=False)
        ]
    )


def train_condpo(
    model_dir: str,
    pairs: pd.DataFrame,
    output_dir: str,
    config: CondpoConfig | dict[str, Any] | None = None,
    *,
    method: str = "condpo",
    parent_adapters: Sequence[str] = (),
    round_index: int | None = None,
    checkpoint_dir: str | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter on `pairs` and save adapter + tokenizer + lineage to `output_dir`.

    ``method``: ``condpo`` (weighted sigmoid DPO, the paper), ``dpo`` (the same
    trainer, unweighted) or ``sft`` (TRL's SFTTrainer on the chosen completions,
    loss on the completion only). ``parent_adapters`` are the earlier rounds'
    adapters: the starting model is `model_dir` with them merged in order, and the
    reference policy is that starting model (the new adapter disabled), so no
    second full copy is held in memory. With ``checkpoint_dir``, resumable
    checkpoints are saved there and training resumes from the last complete one.
    Returns the metrics the caller logs.
    """
    metrics, _ = train_adapter(
        model_dir,
        pairs,
        output_dir,
        config,
        method=method,
        parent_adapters=parent_adapters,
        round_index=round_index,
        checkpoint_dir=checkpoint_dir,
    )
    return metrics


def train_adapter(
    model_dir: str,
    pairs: pd.DataFrame,
    output_dir: str,
    config: CondpoConfig | dict[str, Any] | None = None,
    *,
    method: str = "condpo",
    parent_adapters: Sequence[str] = (),
    round_index: int | None = None,
    return_model: bool = False,
    checkpoint_dir: str | None = None,
) -> tuple[dict[str, Any], Any]:
    """`train_condpo`, optionally also returning the trained in-memory model (peft-wrapped)."""
    if not isinstance(config, CondpoConfig):
        config = CondpoConfig.from_dict(config)
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; use one of {list(METHODS)}")
    if method == "dpo" or (method == "condpo" and not config.weighted):
        method, config = "dpo", dataclasses.replace(config, weighted=False)
    dataset = build_sft_dataset(pairs) if method == "sft" else build_preference_dataset(pairs)
    parent_adapters = [str(p) for p in parent_adapters]
    round_index = len(parent_adapters) if round_index is None else int(round_index)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.chat_template is None:
        raise ValueError(
            f"tokenizer in {model_dir} has no chat_template; Con-DPO builds chat-formatted pairs"
        )
    base_fp = checkpoint_fingerprint(model_dir)
    if parent_adapters:
        verify_lineage(model_dir, parent_adapters, base_fp)
    model = load_base_model(model_dir, config.model_dtype)
    model = merge_adapters(model, parent_adapters)  # round N starts from round N-1's model
    checkpoints = checkpoint_dir is not None
    trainer_dir = str(checkpoint_dir) if checkpoints else str(out)
    if method == "sft":
        args: Any = config.to_sft_config(trainer_dir, checkpoints)
        trainer: Any = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=_lora_config(config),
        )
    else:
        args = config.to_dpo_config(trainer_dir, checkpoints)
        trainer = ConDPOTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=_lora_config(config),
            weighted=config.weighted,
        )
    logger.info(
        "%s: %d examples, round %d on %d parent adapter(s), beta=%s, lr=%s, epochs=%s, "
        "batch=%dx%dx%d, cpu=%s, bf16=%s",
        method,
        len(dataset),
        round_index,
        len(parent_adapters),
        config.beta,
        config.learning_rate,
        config.num_train_epochs,
        config.per_device_train_batch_size,
        config.gradient_accumulation_steps,
        args.world_size,
        args.use_cpu,
        args.bf16,
    )
    n_train = len(trainer.train_dataset)
    if n_train == 0:
        raise ValueError(
            f"all {len(dataset)} examples have a prompt longer than max_length={config.max_length}"
        )
    if n_train < len(dataset):
        logger.warning(
            "%s: %d of %d examples dropped (prompt >= max_length)",
            method,
            len(dataset) - n_train,
            len(dataset),
        )

    warmup_skipped = _drop_warmup_that_takes_every_step(trainer, method)
    resume_from = last_checkpoint(checkpoint_dir) if checkpoints else None
    if resume_from is not None:
        logger.info("%s: resuming from %s", method, resume_from)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    runtime = time.perf_counter() - start
    trainer.save_model(str(out))  # adapter + tokenizer (processing_class), on the main process
    accelerator = trainer.accelerator
    ranks = gather_object([accelerator.process_index])

    history = [dict(entry) for entry in trainer.state.log_history]
    step_losses = [entry["loss"] for entry in history if "loss" in entry]
    metrics: dict[str, Any] = {
        "method": method,
        "round_index": round_index,
        "train_loss": float(result.training_loss),
        "final_loss": float(step_losses[-1]) if step_losses else float("nan"),
        "n_pairs": len(pairs),
        "n_examples": len(dataset),
        "n_train_pairs": n_train,
        "steps": int(trainer.state.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_runtime_s": runtime,
        "weighted": method == "condpo",
        "warmup_skipped": warmup_skipped,
        "world_size": int(accelerator.num_processes),
        "ranks": sorted(int(r) for r in ranks),
        "log_history": history,
        "adapter_dir": str(out),
        "base_fingerprint": base_fp,
        "parent_adapters": parent_adapters,
        **weight_stats(pairs[WEIGHT_COLUMN]),
    }
    if accelerator.is_main_process:
        summary = {k: v for k, v in metrics.items() if k != "log_history"}
        write_lineage(
            out,
            base_dir=model_dir,
            base_fingerprint=base_fp,
            parent_adapters=parent_adapters,
            round_index=round_index,
            method=method,
            config=dataclasses.asdict(config),
            extra={
                "model_dtype": config.model_dtype,
                # adapter_dir is where training wrote it (a node renames it into place)
                "training": {k: v for k, v in summary.items() if k != "adapter_dir"},
            },
        )
        if config.save_metadata:
            meta = {
                "base_model_dir": str(model_dir),
                "config": dataclasses.asdict(config),
                **summary,
            }
            (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str))
    accelerator.wait_for_everyone()
    logger.info(
        "%s done: %d steps in %.1fs, train_loss=%.4f",
        method,
        metrics["steps"],
        runtime,
        metrics["train_loss"],
    )
    model_out = accelerator.unwrap_model(trainer.model) if return_model else None
    del trainer
    return metrics, model_out


def _drop_warmup_that_takes_every_step(trainer: Any, method: str) -> bool:
    """Turn warmup off when it would cover every optimizer step; returns whether it did.

    Why: the linear warmup starts at learning rate 0, so with ``ceil(ratio * steps)``
    >= ``steps`` (e.g. 1 step at ratio 0.1, as in a small CPU round) no step ever
    gets a non-zero learning rate and the adapter stays exactly zero. With enough
    steps (the paper's runs) the warmup is kept as configured.
    """
    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        total = int(args.max_steps)
    else:
        batches = len(trainer.get_train_dataloader())
        per_epoch = max(1, math.ceil(batches / args.gradient_accumulation_steps))
        total = per_epoch * math.ceil(args.num_train_epochs)
    warmup = args.get_warmup_steps(total)
    if warmup < total or warmup == 0:
        return False
    logger.warning(
        "%s: warmup of %d step(s) would cover all %d optimizer step(s), leaving the learning "
        "rate at 0 throughout; training without warmup instead",
        method,
        warmup,
        total,
    )
    args.warmup_steps = 0
    return True


def last_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-N`` (its trainer state written), or None.

    A kill during a save can leave the newest folder partial; the one before it is
    then used.
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    complete = [
        path
        for path in folder.glob("checkpoint-*")
        if path.name.split("-")[-1].isdigit() and (path / "trainer_state.json").is_file()
    ]
    if not complete:
        return None
    return str(max(complete, key=lambda path: int(path.name.split("-")[-1])))


def load_policy(
    model_dir: str,
    adapter_dir: str | None = None,
    dtype: str | torch.dtype | None = torch.float32,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base model with the Con-DPO adapter merged in, in eval mode, for sampling and evaluation.

    An adapter from a later round brings its lineage: the earlier rounds' adapters
    (recorded in its ``lineage.json``) are merged first, after checking the base.

    Why merged: generation then runs at the base model's speed with no peft wrapper.
    The tokenizer is taken from the adapter directory when it holds one (as saved
    by `train_condpo`), else from `model_dir`.
    """
    model = load_base_model(model_dir, dtype)
    tokenizer_dir = model_dir
    if adapter_dir is not None:
        adapter_path = Path(adapter_dir)
        if not (adapter_path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"no adapter_config.json in {adapter_dir}: not a Con-DPO adapter directory"
            )
        adapters = lineage_adapters(adapter_path)  # earlier rounds' adapters first
        if len(adapters) > 1 or (adapter_path / LINEAGE_FILE).is_file():
            verify_lineage(model_dir, adapters)
        model = merge_adapters(model, adapters)
        if (adapter_path / "tokenizer_config.json").is_file():
            tokenizer_dir = str(adapter_path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model.eval()
    return model, tokenizer
