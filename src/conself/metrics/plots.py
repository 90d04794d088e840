"""Figures of the oracle diagnostics (analysis only; see :mod:`conself.metrics.diagnostics`).

Each function returns a :class:`matplotlib.figure.Figure` built on the Agg canvas
directly, without pyplot: no global figure registry (nothing to close, nothing leaks
between pipeline runs) and no GUI backend, whatever ``MPLBACKEND`` says. Save with
``fig.savefig(path)`` (Kedro's ``matplotlib.MatplotlibWriter`` and MLflow's
``log_figure`` both do), or :func:`figure_png` for bytes.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from conself.metrics.diagnostics import spearman


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finite(values: pd.Series) -> np.ndarray:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    return array[np.isfinite(array)]


def _hist(ax: Axes, values: np.ndarray, bins: int, label: str) -> None:
    if len(values):
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8, edgecolor="white")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(label)
    ax.set_ylabel("problems")


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def se_distribution_figure(curriculum: pd.DataFrame, tau: float, bins: int = 20) -> Figure:
    """Two histograms: raw semantic entropy (bits) and normalised SE with the tau line.

    ``curriculum`` is the output of :func:`~conself.consensus.select_curriculum`
    (``semantic_entropy``, ``normalized_entropy``, ``selected``). Left: SE of every
    problem where it is defined. Right: normalised SE of the problems that survived the
    crash and zero-entropy filters, with the strict cut ``normalised SE < tau`` marked.
    """
    fig = _figure(10, 4)
    left, right = fig.subplots(1, 2)
    _hist(left, _finite(curriculum["semantic_entropy"]), bins, "semantic entropy (bits)")
    left.set_title(f"SE of {len(_finite(curriculum['semantic_entropy']))} problems")
    normalized = _finite(curriculum["normalized_entropy"])
    _hist(right, normalized, bins, "normalised SE")
    right.axvline(tau, color="tab:red", linestyle="--", label=f"tau = {tau:g}")
    right.set_xlim(-0.02, 1.02)
    n_selected = int(curriculum["selected"].sum()) if "selected" in curriculum else 0
    right.set_title(f"{n_selected} of {len(normalized)} candidates selected (SE < tau)")
    right.legend(loc="upper right")
    return fig


def threshold_sweep_figure(sweep: pd.DataFrame) -> Figure:
    """Pairs and curriculum size (left axis) and pair oracle rate (right axis) against tau.

    ``sweep`` is the output of :func:`~conself.metrics.threshold_sweep`. Taus without
    pairs have no oracle rate, so the rate line has gaps there.
    """
    fig = _figure(7, 4)
    ax = fig.subplots()
    data = sweep.sort_values("tau")
    ax.plot(data["tau"], data["n_pairs"], "o-", color="tab:blue", label="pairs")
    ax.plot(data["tau"], data["n_problems"], "s--", color="tab:gray", label="curriculum problems")
    ax.set_xlabel("tau (normalised SE threshold)")
    ax.set_ylabel("count")
    rate_ax = ax.twinx()
    rate_ax.plot(data["tau"], data["oracle_rate"], "^-", color="tab:red", label="oracle rate")
    rate_ax.set_ylabel("pair oracle rate")
    rate_ax.set_ylim(-0.02, 1.02)
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = rate_ax.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, loc="best")
    ax.set_title("threshold sweep")
    return fig


SCATTER_PANELS: tuple[tuple[str, str], ...] = (
    ("semantic_entropy", "semantic entropy (bits)"),
    ("mean_nll", "mean NLL per token"),
    ("mean_topk_entropy", "mean top-k token entropy"),
)


def se_vs_correctness_figure(per_problem: pd.DataFrame) -> Figure:
    """Three scatter panels: SE, mean NLL and mean token entropy against problem pass rate.

    ``per_problem`` is the first frame of
    :func:`~conself.metrics.confidence_correlations`; each panel's title gives
    Spearman's rho and the number of problems with both values.
    """
    fig = _figure(13, 4)
    axes = fig.subplots(1, 3, sharey=True)
    target = pd.to_numeric(per_problem["pass_rate"], errors="coerce")
    for ax, (column, label) in zip(axes, SCATTER_PANELS, strict=True):
        values = (
            pd.to_numeric(per_problem[column], errors="coerce")
            if column in per_problem
            else pd.Series(np.nan, index=per_problem.index)
        )
        ax.scatter(values, target, s=14, alpha=0.6, color="tab:blue")
        n, rho = spearman(values, target)
        rho_text = "n/a" if math.isnan(rho) else f"{rho:+.2f}"
        ax.set_title(f"Spearman rho = {rho_text} (n = {n})")
        ax.set_xlabel(label)
    axes[0].set_ylabel("problem pass rate (oracle)")
    axes[0].set_ylim(-0.05, 1.05)
    return fig
