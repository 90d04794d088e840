"""Kedro project wiring for the pipeline tests."""

from __future__ import annotations

import pytest
from kedro.framework.project import configure_project


@pytest.fixture(scope="session")
def kedro_project() -> None:
    """Point Kedro at the installed ``conself`` package (settings and pipeline registry)."""
    configure_project("conself")
