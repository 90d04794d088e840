"""The analysis notebook runs headless (nbclient) against a real 2-round tiny run.

``notebooks/conself_run.ipynb`` reads the rounds from the catalog and the MLflow store of
the project named by ``CONSELF_PROJECT`` (Kedro env ``CONSELF_ENV``). It must run without
error, draw its plots, read pass@1 for both rounds from the parent run's MLflow history
(the same numbers as the rounds' reports), and write nothing into the project.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from tiny_project import latest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "conself_run.ipynb"
MARK = "PASS_AT_1="
# Appended by the test only: what the notebook computed for pass@1 by round.
PROBE = f"print({MARK!r} + pass_at_1.reset_index().to_json(orient='records'))"


def _files(project: Path) -> set[str]:
    return {
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith("-journal")
    }


@pytest.fixture(scope="module")
def executed(two_rounds: tuple[Path, str]) -> tuple[nbformat.NotebookNode, set[str], set[str]]:
    """The notebook executed on the two-round project: (notebook, files before, after)."""
    project, _ = two_rounds
    before = _files(project)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {
        "CONSELF_PROJECT": str(project),
        "CONSELF_ENV": "tiny",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        startup_timeout=120,
        resources={"metadata": {"path": str(project)}},
    )
    client.execute(env=env)  # raises CellExecutionError, with the cell and traceback
    return notebook, before, _files(project)


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_runs_and_draws_its_plots(executed) -> None:
    notebook, _, _ = executed
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 3, f"{len(figures)} figure(s)"


def test_notebook_reads_pass_at_1_of_both_rounds_from_mlflow(executed, two_rounds) -> None:
    notebook, _, _ = executed
    project, _ = two_rounds
    printed = "".join(
        o.text for o in notebook.cells[-1].outputs if o.output_type == "stream"
    ).strip()
    assert printed.startswith(MARK), printed
    rows = {row["round"]: row for row in json.loads(printed[len(MARK) :])}
    assert sorted(rows) == [1, 2]
    for number, row in rows.items():
        assert row["source"] == "mlflow rounds_1-2"
        report = json.loads(
            latest(project, f"data/08_reporting/round_{number}/round_report.json").read_text()
        )
        assert row["start"] == pytest.approx(report["pass_at_1"]["start"])
        assert row["trained"] == pytest.approx(report["pass_at_1"]["trained"])
        assert row["gain"] == pytest.approx(row["trained"] - row["start"])


def test_notebook_writes_nothing_into_the_project(executed) -> None:
    _, before, after = executed
    assert after == before, sorted(after ^ before)
