"""The diagnostic figures render to PNG with the expected panels, also on degenerate data."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from conself.metrics import (
    figure_png,
    se_distribution_figure,
    se_vs_correctness_figure,
    threshold_sweep_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


CURRICULUM = pd.DataFrame(
    {
        "problem_id": ["a", "b", "c", "d", "e"],
        "semantic_entropy": [0.0, 0.8, 1.5, 2.0, math.nan],
        "normalized_entropy": [math.nan, 0.0, 0.58, 1.0, math.nan],
        "selected": [False, True, False, False, False],
    }
)
SWEEP = pd.DataFrame(
    {
        "tau": [1.0, 0.6, 0.3, 0.1],
        "n_problems": [2, 2, 1, 0],
        "n_pairs": [6, 6, 3, 0],
        "oracle_rate": [4 / 6, 4 / 6, 1.0, math.nan],  # no pairs -> no rate
    }
)
PER_PROBLEM = pd.DataFrame(
    {
        "problem_id": ["A", "B", "C"],
        "pass_rate": [0.75, 0.5, 0.0],
        "semantic_entropy": [0.81, 1.5, 2.0],
        "mean_nll": [0.3, 0.5, 0.9],
        "mean_topk_entropy": [2.0, 1.0, 0.5],
    }
)


def test_se_distribution_figure() -> None:
    fig = se_distribution_figure(CURRICULUM, tau=0.3)
    assert len(fig.axes) == 2
    assert png_bytes(fig).startswith(PNG_MAGIC)
    tau_lines = [line for line in fig.axes[1].get_lines() if list(line.get_xdata()) == [0.3, 0.3]]
    assert len(tau_lines) == 1
    assert "1 of 3" in fig.axes[1].get_title()


def test_threshold_sweep_figure_has_twin_axes() -> None:
    fig = threshold_sweep_figure(SWEEP)
    assert len(fig.axes) == 2  # counts + the twin oracle-rate axis
    assert fig.axes[1].get_ylabel() == "pair oracle rate"
    assert figure_png(fig).startswith(PNG_MAGIC)


def test_se_vs_correctness_figure() -> None:
    fig = se_vs_correctness_figure(PER_PROBLEM)
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    # SE and NLL fall as pass rate rises, token entropy rises with it
    assert titles == [
        "Spearman rho = -1.00 (n = 3)",
        "Spearman rho = -1.00 (n = 3)",
        "Spearman rho = +1.00 (n = 3)",
    ]
    assert png_bytes(fig).startswith(PNG_MAGIC)


@pytest.mark.parametrize("rows", [0, 1])
def test_figures_render_on_degenerate_tables(rows: int) -> None:
    figures = [
        se_distribution_figure(CURRICULUM.iloc[:rows], tau=0.5),
        threshold_sweep_figure(SWEEP.iloc[:rows]),
        se_vs_correctness_figure(PER_PROBLEM.iloc[:rows].drop(columns=["mean_nll"])),
    ]
    for fig in figures:
        assert png_bytes(fig).startswith(PNG_MAGIC)
    assert "n/a" in figures[2].axes[1].get_title()
