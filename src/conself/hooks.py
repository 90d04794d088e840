"""Project hooks: attach the round's small tables to its MLflow run; tag rounds."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from kedro.framework.hooks import hook_impl
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# Datasets small enough to keep with every run for side-by-side comparison.
ARTIFACT_DATASETS = {
    "curriculum": "tables",
    "preference_pairs": "tables",  # capped at PAIRS_SAMPLE rows (a seeded sample)
    "problem_stats": "tables",
    "eval_results": "tables",
    "eval_summary": "tables",
    "round_report": "reports",
    "threshold_sweep": "diagnostics",
    "pair_diagnostics": "diagnostics",
    "confidence_correlations": "diagnostics",
    "se_distribution_plot": "plots",
    "threshold_sweep_plot": "plots",
    "se_vs_correctness_plot": "plots",
}


# Larger pair tables are logged as a seeded sample: enough to read, small enough to keep.
PAIRS_SAMPLE = 500


class MlflowTableArtifacts:
    """Logs selected datasets as MLflow artifacts right after they are saved.

    kedro-mlflow's artifact wrapper cannot wrap versioned datasets (its lazy save
    version clashes with the catalog's), so the copies are logged here instead.
    """

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        folder = ARTIFACT_DATASETS.get(dataset_name)
        if folder is None:
            return
        import mlflow

        if mlflow.active_run() is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            if isinstance(data, Figure):
                path = Path(tmp) / f"{dataset_name}.png"
                data.savefig(path, dpi=110)
            elif isinstance(data, pd.DataFrame):
                if dataset_name == "preference_pairs" and len(data) > PAIRS_SAMPLE:
                    data = data.sample(n=PAIRS_SAMPLE, random_state=0).sort_index()
                path = Path(tmp) / f"{dataset_name}.parquet"
                data.to_parquet(path)
            else:
                path = Path(tmp) / f"{dataset_name}.json"
                path.write_text(json.dumps(data, indent=2, default=str))
            mlflow.log_artifact(str(path), artifact_path=folder)


class RoundTracking:
    """Ties each round's MLflow run to the command's parent run, and hands results back.

    The multi-round driver (:mod:`conself.cli`) sets ``parent_run_id`` before each
    round; the round's run (started by kedro-mlflow) gets the ``mlflow.parentRunId``
    and ``conself.round`` tags, so the MLflow UI nests rounds under their command.
    The round's ``round_model`` and ``round_report`` are kept for the driver, which
    decides from them whether the next round starts (collapse guard).
    """

    parent_run_id: ClassVar[str | None] = None
    outputs: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self._round: int = 1
        self._tagged: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._round = int((run_params.get("runtime_params") or {}).get("round", 1))

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        import mlflow

        run = mlflow.active_run()
        if run is None or run.info.run_id in self._tagged:
            return
        tags = {"conself.round": str(self._round)}
        if self.parent_run_id is not None and self.parent_run_id != run.info.run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        mlflow.set_tags(tags)
        self._tagged.add(run.info.run_id)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if dataset_name in ("round_model", "round_report"):
            RoundTracking.outputs[dataset_name] = data
