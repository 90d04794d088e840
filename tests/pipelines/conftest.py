"""Kedro project wiring for the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.project import configure_project
from tiny_project import copy_project, kedro_run, resume_params


@pytest.fixture(scope="session")
def kedro_project() -> None:
    """Point Kedro at the installed ``conself`` package (settings and pipeline registry)."""
    configure_project("conself")


@pytest.fixture(scope="session")
def two_rounds(
    tmp_path_factory: pytest.TempPathFactory,
    project_root: Path,
    tiny_checkpoint_dir: Path,
    tiny_model_spec: dict,
) -> tuple[Path, str]:
    """``kedro run --params rounds=2`` on a project copy, uninterrupted: (project, log).

    Its round 1 is also the reference the interrupted-and-resumed runs must equal.
    """
    project = copy_project(project_root, tmp_path_factory.mktemp("rounds"), tiny_checkpoint_dir)
    log = kedro_run(project, resume_params(tiny_model_spec["steps"]) + ",rounds=2")
    return project, log
