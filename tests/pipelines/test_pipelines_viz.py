"""``kedro viz build`` on the project: every pipeline, each stage readable, datasets layered.

The build is what Kedro-Viz serves (``build/api/main`` for ``__default__``, one file per
pipeline under ``build/api/pipelines/``); it needs the project's conf and package only,
no model and no run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_project import copy_project

from conself.pipeline_registry import STAGES

pytestmark = pytest.mark.slow

PIPELINES = {"__default__", *STAGES}
# Kedro's data-layer convention, in data-flow order.
LAYER_ORDER = (
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
)
EXPECTED_LAYERS = {
    "problems": "intermediate",
    "oracles": "intermediate",
    "samples": "primary",
    "executions": "primary",
    "problem_stats": "feature",
    "sample_consensus": "feature",
    "curriculum": "model_input",
    "preference_pairs": "model_input",
    "round_model": "models",
    "eval_results": "model_output",
    "round_report": "reporting",
    "threshold_sweep": "reporting",
    "evaluation_metrics": "reporting",
}


@pytest.fixture(scope="module")
def viz_build(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kedro viz build`` in a project copy; returns its ``build/api`` folder."""
    project = copy_project(project_root, tmp_path_factory.mktemp("viz"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "viz", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"kedro viz build failed ({proc.returncode}):\n{log[-6000:]}"
    api = project / "build" / "api"
    assert (api / "main").is_file(), log[-4000:]
    return api


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_viz_build_lists_every_pipeline(viz_build: Path) -> None:
    main = _read(viz_build / "main")
    assert main["selected_pipeline"] == "__default__"
    assert {p["id"] for p in main["pipelines"]} == PIPELINES
    for name in PIPELINES:
        assert _read(viz_build / "pipelines" / name)["selected_pipeline"] == name


def test_each_stage_is_a_pipeline_of_its_own_nodes(viz_build: Path) -> None:
    """The round reads as its seven stages: every node is in exactly one stage."""
    main = _read(viz_build / "main")
    tasks = [n for n in main["nodes"] if n["type"] == "task"]
    assert tasks
    for task in tasks:
        stages = set(task["pipelines"]) - {"__default__"}
        assert "__default__" in task["pipelines"], task["name"]
        assert len(stages) == 1, (task["name"], task["pipelines"])
        assert set(task["tags"]) == stages, (task["name"], task["tags"])
    for stage in STAGES:
        nodes = _read(viz_build / "pipelines" / stage)["nodes"]
        assert any(n["type"] == "task" for n in nodes), stage


def test_every_dataset_carries_its_layer(viz_build: Path) -> None:
    main = _read(viz_build / "main")
    layers = {n["name"]: n.get("layer") for n in main["nodes"] if n["type"] == "data"}
    assert not [name for name, layer in layers.items() if not layer], layers
    assert set(layers.values()) <= set(LAYER_ORDER), layers
    assert {name: layers.get(name) for name in EXPECTED_LAYERS} == EXPECTED_LAYERS


def test_viz_shows_the_layers_in_data_flow_order(viz_build: Path) -> None:
    main = _read(viz_build / "main")
    layers = main["layers"]
    assert layers, "Kedro-Viz shows no layer bands (a cycle among the catalog's layers?)"
    used = {n.get("layer") for n in main["nodes"] if n["type"] == "data"} - {None}
    assert set(layers) == used
    chain = ("intermediate", "primary", "feature", "model_input", "model_output", "reporting")
    assert [layer for layer in layers if layer in chain] == list(chain), layers
