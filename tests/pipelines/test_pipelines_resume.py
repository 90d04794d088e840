"""SIGKILL during generation, execution or training; the same command then completes the round.

Each test kills a real ``kedro run`` process group in the middle of one long stage,
checks that the stage was really unfinished, re-runs the same command, and checks
that finished work was not redone and that the round's tables equal those of the
uninterrupted reference run (round 1 of ``two_rounds``, same parameters).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file
from tiny_project import copy_project, kedro_run, kedro_run_killed_when, latest, resume_params

pytestmark = pytest.mark.slow

# Measurements (time, memory) differ from run to run; everything else must be equal.
MEASURED = ["wall_time_s", "cpu_time_s", "peak_memory_kb"]
TABLES = {
    "data/03_primary/round_1/observations.parquet": [],
    "data/03_primary/round_1/samples.parquet": [],
    "data/03_primary/round_1/executions.parquet": MEASURED,
    "data/04_feature/round_1/problem_stats.parquet": [],
    "data/05_model_input/round_1/preference_pairs.parquet": [],
    "data/07_model_output/round_1/eval_samples.parquet": [],
    "data/07_model_output/round_1/eval_results.parquet": [],
}


def _shards(project: Path, stage: str) -> list[Path]:
    return sorted((project / "data" / "shards" / stage).glob("*/*.parquet"))


def _checkpoints(project: Path) -> list[Path]:
    folder = project / "data" / "06_models" / "adapters"
    return sorted(folder.glob(".work-*/checkpoints/checkpoint-*/trainer_state.json"))


def _adapter(project: Path) -> Path:
    record = json.loads(latest(project, "data/06_models/round_1/round_model.json").read_text())
    return project / record["adapter_dir"]


KILL_POINTS = {
    # after the first of 2 sampling shards is stored
    "generation": (lambda p: len(_shards(p, "samples")) >= 1, "samples", 2),
    # after the first of 7 execution shards (one problem each) is stored
    "execution": (lambda p: len(_shards(p, "executions")) >= 1, "executions", 7),
    # after the first training checkpoint (9 optimizer steps, one checkpoint per step)
    "training": (lambda p: len(_checkpoints(p)) >= 1, None, None),
}


@pytest.mark.parametrize("stage", sorted(KILL_POINTS))
def test_sigkill_then_rerun_completes_the_round_without_redoing_work(
    stage: str,
    two_rounds: tuple[Path, str],
    tmp_path: Path,
    project_root: Path,
    tiny_checkpoint_dir: Path,
    tiny_model_spec: dict,
) -> None:
    reference, _ = two_rounds
    project = copy_project(project_root, tmp_path, tiny_checkpoint_dir)
    params = resume_params(tiny_model_spec["steps"])
    condition, shard_stage, n_shards = KILL_POINTS[stage]

    kedro_run_killed_when(project, params, lambda: condition(project))

    # The stage was really interrupted: partial work stored, its dataset not saved.
    if shard_stage is not None:
        finished = {p: p.stat().st_mtime_ns for p in _shards(project, shard_stage)}
        assert 1 <= len(finished) < n_shards
        assert not (project / "data/03_primary/round_1" / f"{shard_stage}.parquet").exists()
    else:
        checkpoints = _checkpoints(project)
        assert checkpoints
        assert not list((project / "data/06_models/adapters").glob("round1-*"))

    log = " ".join(kedro_run(project, params).split())

    if shard_stage is not None:
        assert f"{shard_stage}: {len(finished)} of {n_shards} shards were already finished" in log
        assert {p: p.stat().st_mtime_ns for p in finished} == finished
    else:
        assert "resuming from" in log and "checkpoint-" in log
        assert not list((project / "data/06_models/adapters").glob(".work-*"))

    for table, measured in TABLES.items():
        resumed = pd.read_parquet(latest(project, table)).drop(columns=measured)
        expected = pd.read_parquet(latest(reference, table)).drop(columns=measured)
        pd.testing.assert_frame_equal(resumed, expected, obj=table)

    resumed_weights = load_file(_adapter(project) / "adapter_model.safetensors")
    expected_weights = load_file(_adapter(reference) / "adapter_model.safetensors")
    assert resumed_weights.keys() == expected_weights.keys()
    for name, tensor in expected_weights.items():
        assert resumed_weights[name].allclose(tensor, atol=1e-6), name
