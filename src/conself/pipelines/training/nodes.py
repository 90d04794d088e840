"""Nodes of the training stage: Con-DPO on the round's pairs, from the round's starting model."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from conself.condpo import METHODS, CondpoConfig, train_condpo
from conself.condpo.launch import write_launch_args
from conself.models.publish import publish_directory

logger = logging.getLogger(__name__)

# TRL's names ("rewards/margins" -> training.step.rewards_margins), plus the pair weights.
_PER_STEP_KEYS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
    "logits/chosen",
    "logits/rejected",
    "entropy",
    "mean_token_accuracy",
    "num_tokens",
    "loss/unweighted",
    "weight/mean",
    "weight/min",
    "weight/max",
)


def train_round_model(
    preference_pairs: pd.DataFrame, base_model: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train a LoRA adapter (``training.method``: condpo, dpo or sft); no pairs = no training.

    The round starts from ``base_model`` plus its earlier rounds' adapters
    (``base_model["adapters"]``, else ``training.parent_adapters``). With
    ``training.num_processes > 1`` training runs under ``accelerate launch``.
    The adapter is trained into a staging directory and renamed into place only
    when complete, so an interrupted run never leaves an adapter that looks done.
    """
    method = str(params.get("method", "condpo"))
    if method not in METHODS:
        raise ValueError(f"parameter training.method={method!r}: use one of {list(METHODS)}")
    parents = [str(p) for p in (base_model.get("adapters") or params.get("parent_adapters") or [])]
    round_model: dict[str, Any] = {
        "base": base_model,
        "adapter_dir": None,
        "adapters": parents,
        "method": method,
    }
    if preference_pairs.empty:
        logger.warning("no preference pairs: training skipped, the round keeps its starting model")
        round_model["skipped_reason"] = "no preference pairs"
        return round_model, {"training.n_pairs": {"value": 0.0, "step": 0}}
    final = Path(params["adapters_dir"]) / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    while final.exists():
        final = final.with_name(final.name + "_")
    condpo_params = dict(params.get("condpo") or {})
    CondpoConfig.from_dict(condpo_params)  # refuse bad keys before launching anything
    num_processes = int(params.get("num_processes", 1))
    results: list[dict[str, Any]] = []

    def train(staging: Path) -> None:
        if num_processes > 1:
            results.append(
                _launch(
                    preference_pairs, base_model, params, condpo_params, method, parents, staging
                )
            )
        else:
            results.append(
                train_condpo(
                    base_model["path"],
                    preference_pairs,
                    str(staging),
                    CondpoConfig.from_dict(condpo_params),
                    method=method,
                    parent_adapters=parents,
                )
            )

    publish_directory(final, train)
    result = results[0]
    round_model["adapter_dir"] = str(final)
    round_model["adapters"] = [*parents, str(final)]
    round_model["round_index"] = len(parents)
    _log_adapter(final)
    return round_model, _training_metrics(result)


def _launch(
    pairs: pd.DataFrame,
    base_model: dict[str, Any],
    params: dict[str, Any],
    condpo_params: dict[str, Any],
    method: str,
    parents: list[str],
    staging: Path,
) -> dict[str, Any]:
    """Run training under ``accelerate launch --num_processes N`` and read its result."""
    config_file = Path(params.get("accelerate_config", "conf/accelerate/ddp.yaml"))
    if not config_file.is_file():
        raise FileNotFoundError(
            f"parameter training.accelerate_config: no such file {config_file} "
            f"(working directory {Path.cwd()})"
        )
    with tempfile.TemporaryDirectory(prefix="condpo-launch-") as work:
        args_path, result_path = write_launch_args(
            work,
            base_model["path"],
            pairs,
            str(staging),
            condpo_params,
            method=method,
            parent_adapters=parents,
        )
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            str(int(params["num_processes"])),
            "--config_file",
            str(config_file),
            *[str(a) for a in params.get("accelerate_args") or []],
            "-m",
            "conself.condpo.launch",
            str(args_path),
        ]
        logger.info("launching: %s", " ".join(cmd))
        timeout = params.get("launch_timeout_s")
        proc = subprocess.run(cmd, check=False, timeout=float(timeout) if timeout else None)
        if proc.returncode != 0 or not result_path.is_file():
            raise RuntimeError(
                f"accelerate launch exited with status {proc.returncode} "
                f"({'no' if not result_path.is_file() else 'a'} result file); command: "
                + " ".join(cmd)
            )
        result = json.loads(result_path.read_text())
    result["adapter_dir"] = str(staging)
    return result


def _training_metrics(result: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for key in (
        "train_loss",
        "n_pairs",
        "n_examples",
        "steps",
        "train_runtime_s",
        "world_size",
        "round_index",
        "weight_mean",
        "weight_min",
        "weight_max",
        "weight_sum",
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
