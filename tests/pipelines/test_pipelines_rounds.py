"""Several rounds in one command (``kedro run --params rounds=2``) on the tiny model.

Each round must be its own MLflow run, nested under one parent run per command,
with the same metric keys so the MLflow UI compares rounds side by side; round 2
must start from round 1's adapter; each round writes its own versioned tables;
the collapse guard must stop early and say why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tiny_project import copy_project, kedro_run, latest, resume_params

pytestmark = pytest.mark.slow


def _client(project: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _runs(project: Path) -> tuple[object, list]:
    client = _client(project)
    experiment = client.get_experiment_by_name("conself")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["conself.round"]))


def test_each_round_is_a_child_run_with_the_same_metric_and_param_keys(two_rounds) -> None:
    project, _ = two_rounds
    parent, children = _runs(project)
    assert [r.info.run_name for r in children] == ["round_1", "round_2"]
    assert [r.data.tags["conself.round"] for r in children] == ["1", "2"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert parent.info.status == "FINISHED"
    assert all(r.info.status == "FINISHED" for r in children)
    first, second = children
    assert set(first.data.metrics) == set(second.data.metrics)
    assert len(first.data.metrics) > 40
    assert set(first.data.params) == set(second.data.params)
    assert second.data.params["model.adapter"] != first.data.params["model.adapter"]


def test_each_round_run_holds_its_artifacts(two_rounds) -> None:
    project, _ = two_rounds
    client = _client(project)
    _, children = _runs(project)
    for run in children:
        paths = {
            a.path
            for folder in ("tables", "plots", "reports", "adapter")
            for a in client.list_artifacts(run.info.run_id, folder)
        }
        for expected in (
            "tables/curriculum.parquet",
            "tables/preference_pairs.parquet",
            "tables/eval_results.parquet",
            "plots/threshold_sweep_plot.png",
            "reports/round_report.json",
            "adapter/adapter_model.safetensors",
        ):
            assert expected in paths, (run.info.run_name, sorted(paths))


def test_parent_run_tracks_pass_at_1_by_round(two_rounds) -> None:
    project, _ = two_rounds
    client = _client(project)
    parent, children = _runs(project)
    history = client.get_metric_history(parent.info.run_id, "round.pass_at_1.trained")
    assert [m.step for m in history] == [1, 2]
    for metric, run in zip(history, children, strict=True):
        trained = [v for k, v in run.data.metrics.items() if k.endswith("pass_at_1.trained")]
        assert trained == [pytest.approx(metric.value)]
    completed = client.get_metric_history(parent.info.run_id, "rounds.completed")
    assert [m.value for m in completed] == [1.0, 2.0]
    assert "conself.stop_reason" not in parent.data.tags


def test_round_two_starts_from_round_one_adapter(two_rounds) -> None:
    project, _ = two_rounds
    first = json.loads(latest(project, "data/06_models/round_1/round_model.json").read_text())
    start = json.loads(latest(project, "data/06_models/round_2/base_model.json").read_text())
    second = json.loads(latest(project, "data/06_models/round_2/round_model.json").read_text())
    assert first["adapter_dir"] and start["adapter_dir"] == first["adapter_dir"]
    assert start["adapters"] == [first["adapter_dir"]]
    assert second["adapters"] == [first["adapter_dir"], second["adapter_dir"]]
    assert second["round_index"] == 1
    lineage = json.loads((project / second["adapter_dir"] / "lineage.json").read_text())
    assert [p["adapter_dir"] for p in lineage["parents"]] == [first["adapter_dir"]]


def test_rounds_write_their_own_tables(two_rounds) -> None:
    project, _ = two_rounds
    for name in ("03_primary/{}/samples.parquet", "07_model_output/{}/eval_results.parquet"):
        one = pd.read_parquet(latest(project, "data/" + name.format("round_1")))
        two = pd.read_parquet(latest(project, "data/" + name.format("round_2")))
        assert len(one) and len(two)
    samples_1 = pd.read_parquet(latest(project, "data/03_primary/round_1/samples.parquet"))
    samples_2 = pd.read_parquet(latest(project, "data/03_primary/round_2/samples.parquet"))
    assert samples_1["completion"].tolist() != samples_2["completion"].tolist()


def test_round_two_reuses_the_programs_of_round_one_trained_model(two_rounds) -> None:
    """Round 2's starting model is round 1's trained model: its greedy programs are
    taken from round 1's evaluation instead of being decoded again."""
    project, _ = two_rounds
    one = pd.read_parquet(latest(project, "data/07_model_output/round_1/eval_samples.parquet"))
    two = pd.read_parquet(latest(project, "data/07_model_output/round_2/eval_samples.parquet"))
    trained_1 = one[one["model"] == "trained"].drop(columns="model").reset_index(drop=True)
    start_2 = two[two["model"] == "start"].drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(trained_1, start_2)


def test_collapse_guard_stops_early_and_says_why(
    tmp_path: Path, project_root: Path, tiny_checkpoint_dir: Path, tiny_model_spec: dict
) -> None:
    project = copy_project(project_root, tmp_path, tiny_checkpoint_dir)
    params = resume_params(tiny_model_spec["steps"]) + ",rounds=3,training.min_pairs=100000"
    log = kedro_run(project, params)
    assert "stopping after round 1: collapse guard" in " ".join(log.split())
    parent, children = _runs(project)
    assert [r.info.run_name for r in children] == ["round_1"]
    assert parent.data.tags["conself.stop_reason"].startswith("round 1: collapse guard")
    assert parent.data.metrics["rounds.stopped_early"] == 1.0
    (child,) = children
    guard = [v for k, v in child.data.metrics.items() if k.endswith("training.collapse_guard")]
    assert guard == [1.0]
    assert not (project / "data" / "03_primary" / "round_2").exists()
    report = json.loads(latest(project, "data/08_reporting/round_1/round_report.json").read_text())
    assert report["training_skipped_reason"].startswith("collapse guard")
