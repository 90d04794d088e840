"""Nodes of the training stage: Con-DPO on the round's pairs, from the round's starting model."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from conself.condpo import CondpoConfig, train_condpo

logger = logging.getLogger(__name__)

_PER_STEP_KEYS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
    "weight/mean",
)


def train_round_model(
    preference_pairs: pd.DataFrame, base_model: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train a LoRA adapter with Con-DPO; with no pairs the round keeps its starting model.

    The adapter is trained into a staging directory and renamed into place only
    when complete, so an interrupted run never leaves an adapter that looks done.
    """
    round_model: dict[str, Any] = {"base": base_model, "adapter_dir": None}
    if preference_pairs.empty:
        logger.warning("no preference pairs: training skipped, the round keeps its starting model")
        round_model["skipped_reason"] = "no preference pairs"
        return round_model, {"training.n_pairs": {"value": 0.0, "step": 0}}
    root = Path(params["adapters_dir"])
    root.mkdir(parents=True, exist_ok=True)
    final = root / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".training-"))
    try:
        result = train_condpo(
            base_model["path"],
            preference_pairs,
            str(staging),
            CondpoConfig.from_dict(params["condpo"]),
        )
        while final.exists():
            final = final.with_name(final.name + "_")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    round_model["adapter_dir"] = str(final)
    _log_adapter(final)
    return round_model, _training_metrics(result)


def _training_metrics(result: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for key in (
        "train_loss",
        "n_pairs",
        "steps",
        "train_runtime_s",
        "weight_mean",
        "weight_min",
        "weight_max",
        "n_zero_weight",
    ):
        if result.get(key) is not None:
            metrics[f"training.{key}"] = {"value": float(result[key]), "step": 0}
    for key in _PER_STEP_KEYS:
        history = [
            {"value": float(entry[key]), "step": int(entry.get("step", i))}
            for i, entry in enumerate(result.get("log_history", []))
            if key in entry and "train_runtime" not in entry
        ]
        if history:
            metrics[f"training.step.{key.replace('/', '_')}"] = history
    return metrics


def _log_adapter(adapter_dir: Path) -> None:
    """Attach the (small) adapter to the round's MLflow run when one is active."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
