"""Project hooks: attach the round's small tables to its MLflow run."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# Datasets small enough to keep with every run for side-by-side comparison.
ARTIFACT_DATASETS = {
    "curriculum": "tables",
    "preference_pairs": "tables",
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
                path = Path(tmp) / f"{dataset_name}.parquet"
                data.to_parquet(path)
            else:
                path = Path(tmp) / f"{dataset_name}.json"
                path.write_text(json.dumps(data, indent=2, default=str))
            mlflow.log_artifact(str(path), artifact_path=folder)
