"""Nodes of the training stage: Con-DPO on the round's pairs, from the round's starting model."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from conself.condpo import METHODS, CondpoConfig, train_condpo
from conself.condpo.launch import write_launch_args
from conself.condpo.lineage import adapter_fingerprint
from conself.models.publish import publish_directory
from conself.shards import content_key

logger = logging.getLogger(__name__)

# Part of every adapter's key: raised when a change to training changes what the same
# pairs and settings produce, so that an adapter trained by older code is not reused.
# 2: warmup no longer covers every step (it left 1-step adapters at zero).
ADAPTER_KEY_VERSION = 2

# The training result (metrics and log history) kept with the adapter, for reuse on rerun.
TRAINING_RESULT_FILE = "training_result.json"

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
    """Train a LoRA adapter (``training.method``: condpo, dpo or sft) on the round's pairs.

    The round starts from ``base_model`` plus its earlier rounds' adapters
    (``base_model["adapters"]``, else ``training.parent_adapters``). With
    ``training.num_processes > 1`` training runs under ``accelerate launch``.

    Collapse guard: with fewer than ``training.min_pairs`` pairs (an empty curriculum
    gives none) the round keeps its starting model and says why in
    ``stop_reason``; the multi-round driver stops there.

    The adapter's folder is named by a hash of everything that determines it (pairs,
    starting model, method, settings): a rerun of the same round reuses a finished
    adapter, and an interrupted one resumes from its last checkpoint in
    ``.work-<key>``. The adapter is renamed into place only when complete.
    """
    method = str(params.get("method", "condpo"))
    if method not in METHODS:
        raise ValueError(f"parameter training.method={method!r}: use one of {list(METHODS)}")
    parents = [str(p) for p in (base_model.get("adapters") or params.get("parent_adapters") or [])]
    round_model: dict[str, Any] = {
        "base": base_model,
        "adapter_dir": None,
        "adapters": parents,
        "adapter_fingerprints": [adapter_fingerprint(p) for p in parents],
        "method": method,
    }
    min_pairs = int(params.get("min_pairs", 1))
    if len(preference_pairs) < min_pairs:
        reason = (
            "collapse guard: the curriculum is empty, so there are no preference pairs"
            if preference_pairs.empty
            else f"collapse guard: {len(preference_pairs)} preference pairs < min_pairs {min_pairs}"
        )
        logger.warning("%s; training skipped, the round keeps its starting model", reason)
        round_model["skipped_reason"] = round_model["stop_reason"] = reason
        return round_model, {
            "training.n_pairs": {"value": float(len(preference_pairs)), "step": 0},
            "training.collapse_guard": {"value": 1.0, "step": 0},
        }
    condpo_params = dict(params.get("condpo") or {})
    CondpoConfig.from_dict(condpo_params)  # refuse bad keys before launching anything
    num_processes = int(params.get("num_processes", 1))
    key = content_key(
        ADAPTER_KEY_VERSION,
        preference_pairs,
        base_model["fingerprint"],
        round_model["adapter_fingerprints"],
        method,
        condpo_params,
        num_processes,
    )
    adapters_dir = Path(params["adapters_dir"])
    final = adapters_dir / f"round{len(parents) + 1}-{key}"
    work = adapters_dir / f".work-{key}"
    result_file = final / TRAINING_RESULT_FILE
    if result_file.is_file():
        logger.info("adapter %s was already trained on these pairs; reused", final)
        result = json.loads(result_file.read_text())
    else:
        results: list[dict[str, Any]] = []

        def train(staging: Path) -> None:
            if num_processes > 1:
                result = _launch(
                    preference_pairs,
                    base_model,
                    params,
                    condpo_params,
                    method,
                    parents,
                    staging,
                    work / "checkpoints",
                )
            else:
                result = train_condpo(
                    base_model["path"],
                    preference_pairs,
                    str(staging),
                    CondpoConfig.from_dict(condpo_params),
                    method=method,
                    parent_adapters=parents,
                    checkpoint_dir=str(work / "checkpoints"),
                )
            result["adapter_dir"] = str(final)
            (staging / TRAINING_RESULT_FILE).write_text(json.dumps(result, default=str))
            results.append(result)

        publish_directory(final, train)
        shutil.rmtree(work, ignore_errors=True)
        result = results[0]
    round_model["adapter_dir"] = str(final)
    round_model["adapters"] = [*parents, str(final)]
    round_model["adapter_fingerprints"] = [
        *round_model["adapter_fingerprints"],
        adapter_fingerprint(final),
    ]
    round_model["round_index"] = len(parents)
    _log_adapter(final)
    return round_model, {
        **_training_metrics(result),
        "training.collapse_guard": {"value": 0.0, "step": 0},
    }


def _launch(
    pairs: pd.DataFrame,
    base_model: dict[str, Any],
    params: dict[str, Any],
    condpo_params: dict[str, Any],
    method: str,
    parents: list[str],
    staging: Path,
    checkpoint_dir: Path,
) -> dict[str, Any]:
    """Run training under ``accelerate launch --num_processes N`` and read its result."""
    config_file = Path(params.get("accelerate_config", "conf/accelerate/ddp.yaml"))
    if not config_file.is_file():
        raise FileNotFoundError(
            f"parameter training.accelerate_config: no such file {config_file} "
            f"(working directory {Path.cwd()})"
        )
    with tempfile.TemporaryDirectory(prefix="condpo-launch-") as tmp:
        args_path, result_path = write_launch_args(
            tmp,
            base_model["path"],
            pairs,
            str(staging),
            condpo_params,
            method=method,
            parent_adapters=parents,
            checkpoint_dir=str(checkpoint_dir),
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
