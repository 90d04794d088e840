"""Oracle diagnostics of the label-free method (CONSELF.md, "Diagnostics the method needs").

ANALYSIS ONLY. Everything here reads oracles, so nothing here may feed training: the
pipeline wires these functions downstream of the pairs, never upstream of them.

* :func:`sample_verdicts`: the oracle verdict of every sampled program.
* :func:`pair_oracle_rate`: share of preference pairs whose chosen program passes the
  oracle and whose rejected program fails it.
* :func:`threshold_sweep`: curriculum size, number of pairs and their oracle rate for
  each tau, through the real :func:`~conself.consensus.select_curriculum` and
  :func:`~conself.consensus.build_pairs` (the rules live in one place only).
* :func:`confidence_correlations`: per-problem pass rate next to semantic entropy, mean
  NLL and mean top-k token entropy, with Spearman correlations of each signal.

Spearman's rho is computed here (average ranks, then Pearson of the ranks), because
pandas' ``corr(method="spearman")`` needs scipy, which the project does not depend on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from conself.consensus import build_pairs, select_curriculum
from conself.metrics.evaluate import SandboxLike, evaluate_programs
from conself.sandbox import SandboxConfig

logger = logging.getLogger(__name__)

VERDICT_COLUMNS: list[str] = [
    "problem_id",
    "sample_id",
    "passed",
    "first_failure",
    "n_tests",
    "n_passed",
    "error_type",
]
SWEEP_COLUMNS: list[str] = [
    "tau",
    "n_problems",
    "n_problems_with_pairs",
    "n_pairs",
    "n_oracle_consistent",
    "oracle_rate",
    "mean_weight",
]
PER_PROBLEM_COLUMNS: list[str] = [
    "problem_id",
    "n_programs",
    "n_passed",
    "pass_rate",
    "solved",
    "semantic_entropy",
    "crash_rate",
    "majority_share",
    "mean_nll",
    "mean_topk_entropy",
    "majority_pass_rate",
]
CORRELATION_COLUMNS: list[str] = ["signal", "target", "n", "rho"]

#: Signals correlated with ``pass_rate`` by :func:`confidence_correlations`.
SIGNALS: tuple[str, ...] = (
    "semantic_entropy",
    "mean_nll",
    "mean_topk_entropy",
    "crash_rate",
    "majority_share",
)
#: tau = 1.0, 0.9, ..., 0.1 (rounded, so 0.3 is exactly the config's 0.3).
DEFAULT_TAUS: tuple[float, ...] = tuple(round(1.0 - 0.1 * k, 1) for k in range(10))

SAMPLES_MODEL = "samples"
"""The ``model`` value :func:`sample_verdicts` gives its candidates."""


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table '{name}' lacks column(s) {missing}")


def _has_program(value: Any) -> bool:
    """Same rule as the consensus tables: None/NaN/pd.NA means "no code extracted"."""
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and math.isnan(value))


# --------------------------------------------------------------------------- verdicts


def sample_verdicts(
    samples: pd.DataFrame,
    problems: pd.DataFrame,
    oracles: pd.DataFrame,
    sandbox: SandboxLike | SandboxConfig | None = None,
) -> pd.DataFrame:
    """Oracle verdict of every sampled program, one row per ``samples`` row, in its order.

    Runs :func:`~conself.metrics.evaluate_programs` (``sample_id`` becomes its
    ``sample_index``, ``model`` is ``"samples"``). Columns :data:`VERDICT_COLUMNS`: a row
    without an extracted program fails with ``first_failure == "no_program"``;
    ``first_failure``/``error_type`` are None when the program passed. ``sandbox`` is a
    started sandbox, or a config (None = defaults) to open one for this call.
    """
    _require(samples, ("problem_id", "sample_id", "program"), "samples")
    if samples.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS).astype(
            {"sample_id": "int64", "passed": bool, "n_tests": "int64", "n_passed": "int64"}
        )
    candidates = pd.DataFrame(
        {
            "problem_id": samples["problem_id"].astype(str).to_numpy(),
            "model": SAMPLES_MODEL,
            "sample_index": samples["sample_id"].astype("int64").to_numpy(),
            "program": samples["program"].to_numpy(dtype=object),
        }
    )
    results = evaluate_programs(candidates, problems, oracles, sandbox)
    table = results.rename(columns={"sample_index": "sample_id"})[VERDICT_COLUMNS].copy()
    logger.info(
        "oracle verdicts of %d sampled program(s) on %d problem(s): %d passed",
        len(table),
        table["problem_id"].nunique(),
        int(table["passed"].sum()),
    )
    return table.reset_index(drop=True)


def _verdict_lookup(verdicts: pd.DataFrame) -> dict[tuple[str, int], bool]:
    _require(verdicts, ("problem_id", "sample_id", "passed"), "sample_verdicts")
    keys = list(
        zip(
            verdicts["problem_id"].astype(str),
            verdicts["sample_id"].astype("int64"),
            strict=True,
        )
    )
    if len(set(keys)) != len(keys):
        dup = pd.Series(keys)[pd.Series(keys).duplicated()].iloc[0]
        raise ValueError(f"sample_verdicts: problem {dup[0]!r} has sample_id {dup[1]} twice")
    return dict(zip(keys, verdicts["passed"].astype(bool), strict=True))


# --------------------------------------------------------------------------- pairs


def pair_oracle_rate(pairs: pd.DataFrame, verdicts: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """Share of pairs whose chosen program passes the oracle AND whose rejected one fails.

    Returns ``(rate, table)``: ``rate`` is NaN when there is no pair; ``table`` is
    ``pairs`` plus ``chosen_passed``, ``rejected_passed`` and ``oracle_consistent``.
    Every paired program must have a verdict (a missing one raises: counting it as a
    failure would bias the rate).
    """
    _require(pairs, ("problem_id", "chosen_sample_id", "rejected_sample_id"), "pairs")
    passed = _verdict_lookup(verdicts)
    table = pairs.copy()

    def look(column: str) -> list[bool]:
        out = []
        for pid, sid in zip(table["problem_id"].astype(str), table[column], strict=True):
            key = (pid, int(sid))
            if key not in passed:
                raise ValueError(
                    f"pairs: problem {pid!r} sample {int(sid)} ({column}) has no oracle verdict"
                )
            out.append(passed[key])
        return out

    table["chosen_passed"] = pd.Series(look("chosen_sample_id"), index=table.index, dtype=bool)
    table["rejected_passed"] = pd.Series(look("rejected_sample_id"), index=table.index, dtype=bool)
    table["oracle_consistent"] = table["chosen_passed"] & ~table["rejected_passed"]
    rate = float(table["oracle_consistent"].mean()) if len(table) else math.nan
    return rate, table


def threshold_sweep(
    stats: pd.DataFrame,
    samples: pd.DataFrame,
    consensus: pd.DataFrame,
    verdicts: pd.DataFrame,
    taus: Sequence[float] = DEFAULT_TAUS,
    max_crash_rate: float = 0.8,
    max_pairs_per_problem: int = 3,
) -> pd.DataFrame:
    """Curriculum size, pairs and their oracle rate for each tau (how tau is justified).

    For every tau, in the order given, calls ``select_curriculum(stats, tau,
    max_crash_rate)`` and ``build_pairs`` on the selected problems, then
    :func:`pair_oracle_rate`. Columns :data:`SWEEP_COLUMNS`: ``n_problems`` (curriculum
    size), ``n_problems_with_pairs``, ``n_pairs``, ``n_oracle_consistent``,
    ``oracle_rate`` (NaN without pairs) and ``mean_weight`` (mean chosen consensus of
    the pairs, NaN without pairs).

    Note on tau = 1.0: the rule is strict (normalised SE ``< tau``), and min-max
    normalisation maps the highest surviving SE to exactly 1.0, so tau = 1.0 keeps every
    surviving problem except the one(s) with the maximal SE, not all of them (unless all
    survivors share one SE, when every one normalises to 0.0 and is kept).
    """
    rows = []
    for tau in taus:
        curriculum = select_curriculum(stats, tau=float(tau), max_crash_rate=max_crash_rate)
        selected = curriculum.loc[curriculum["selected"], "problem_id"].astype(str).tolist()
        pairs = build_pairs(selected, samples, consensus, max_pairs_per_problem)
        rate, table = pair_oracle_rate(pairs, verdicts)
        rows.append(
            {
                "tau": float(tau),
                "n_problems": len(selected),
                "n_problems_with_pairs": int(table["problem_id"].nunique()),
                "n_pairs": len(table),
                "n_oracle_consistent": int(table["oracle_consistent"].sum()),
                "oracle_rate": rate,
                "mean_weight": float(table["weight"].mean()) if len(table) else math.nan,
            }
        )
    sweep = pd.DataFrame(rows, columns=SWEEP_COLUMNS).astype(
        {
            "tau": "float64",
            "n_problems": "int64",
            "n_problems_with_pairs": "int64",
            "n_pairs": "int64",
            "n_oracle_consistent": "int64",
            "oracle_rate": "float64",
            "mean_weight": "float64",
        }
    )
    logger.info("threshold sweep over %d tau value(s):\n%s", len(sweep), sweep.to_string())
    return sweep


# --------------------------------------------------------------------------- correlations


def spearman(x: Sequence[float] | pd.Series, y: Sequence[float] | pd.Series) -> tuple[int, float]:
    """``(n, rho)``: Spearman's rank correlation over the pairs where both are finite.

    Ties get average ranks (the usual definition). ``rho`` is NaN when fewer than two
    pairs remain or either side is constant (no ranking to correlate).
    """
    a = pd.Series(np.asarray(x, dtype="float64"))
    b = pd.Series(np.asarray(y, dtype="float64"))
    if len(a) != len(b):
        raise ValueError(f"spearman: lengths differ ({len(a)} vs {len(b)})")
    keep = np.isfinite(a.to_numpy()) & np.isfinite(b.to_numpy())
    n = int(keep.sum())
    if n < 2:
        return n, math.nan
    ra = a[keep].rank(method="average").to_numpy() - (n + 1) / 2
    rb = b[keep].rank(method="average").to_numpy() - (n + 1) / 2
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if denom == 0.0:
        return n, math.nan
    rho = float((ra * rb).sum()) / denom
    return n, max(-1.0, min(1.0, rho))


def confidence_correlations(
    stats: pd.DataFrame,
    samples: pd.DataFrame,
    verdicts: pd.DataFrame,
    consensus: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-problem correctness next to the model's confidence signals, and their correlations.

    Returns ``(per_problem, summary)``.

    ``per_problem`` (:data:`PER_PROBLEM_COLUMNS`), one row per ``stats`` row, in its order,
    over the problem's *extracted* programs (the population its semantic entropy is
    computed on; samples without code are left out): ``n_programs``, ``n_passed``,
    ``pass_rate`` (share passing the oracle; NaN without programs), ``solved`` (any
    passes), ``semantic_entropy``/``crash_rate``/``majority_share`` from ``stats``,
    ``mean_nll``/``mean_topk_entropy`` (means of the per-sample values, NaNs skipped; NaN
    when the columns are absent), and ``majority_pass_rate`` (share of the majority
    cluster's programs that pass; only with ``consensus``, else NaN).

    ``summary`` (:data:`CORRELATION_COLUMNS`): one row per signal in :data:`SIGNALS` with
    ``target == "pass_rate"``, ``n`` (problems where both are finite) and Spearman's
    ``rho``. High SE / NLL / token entropy should go with a low pass rate (negative rho).
    """
    _require(stats, ("problem_id", "semantic_entropy"), "problem_stats")
    _require(samples, ("problem_id", "sample_id", "program"), "samples")
    passed = _verdict_lookup(verdicts)

    progs = samples.loc[samples["program"].map(_has_program)].copy()
    progs["problem_id"] = progs["problem_id"].astype(str)
    progs["sample_id"] = progs["sample_id"].astype("int64")
    keys = zip(progs["problem_id"], progs["sample_id"], strict=True)
    flags = []
    for pid, sid in keys:
        if (pid, sid) not in passed:
            raise ValueError(f"samples: problem {pid!r} sample {sid} has no oracle verdict")
        flags.append(passed[(pid, sid)])
    progs["passed"] = pd.Series(flags, index=progs.index, dtype=bool)
    for column in ("mean_nll", "mean_topk_entropy"):
        progs[column] = (
            pd.to_numeric(progs[column], errors="coerce") if column in progs else math.nan
        )
    grouped = progs.groupby("problem_id", sort=False).agg(
        n_programs=("passed", "size"),
        n_passed=("passed", "sum"),
        mean_nll=("mean_nll", "mean"),
        mean_topk_entropy=("mean_topk_entropy", "mean"),
    )

    majority: dict[str, float] = {}
    if consensus is not None:
        _require(consensus, ("problem_id", "sample_id", "cluster_id"), "sample_consensus")
        top = consensus.loc[consensus["cluster_id"] == 0]
        for pid, group in top.groupby(top["problem_id"].astype(str), sort=False):
            votes = [passed.get((pid, int(s))) for s in group["sample_id"]]
            known = [v for v in votes if v is not None]
            if len(known) != len(votes):
                raise ValueError(f"sample_consensus: problem {pid!r} has programs without verdict")
            majority[pid] = float(np.mean(known)) if known else math.nan

    rows = []
    for record in stats.to_dict("records"):
        pid = str(record["problem_id"])
        if pid in grouped.index:
            g = grouped.loc[pid]
            n_programs, n_passed = int(g["n_programs"]), int(g["n_passed"])
            nll, tok = float(g["mean_nll"]), float(g["mean_topk_entropy"])
        else:
            n_programs, n_passed, nll, tok = 0, 0, math.nan, math.nan
        rows.append(
            {
                "problem_id": pid,
                "n_programs": n_programs,
                "n_passed": n_passed,
                "pass_rate": n_passed / n_programs if n_programs else math.nan,
                "solved": n_passed > 0,
                "semantic_entropy": float(record["semantic_entropy"]),
                "crash_rate": float(record.get("crash_rate", math.nan)),
                "majority_share": float(record.get("majority_share", math.nan)),
                "mean_nll": nll,
                "mean_topk_entropy": tok,
                "majority_pass_rate": majority.get(pid, math.nan),
            }
        )
    per_problem = pd.DataFrame(rows, columns=PER_PROBLEM_COLUMNS).astype(
        {"n_programs": "int64", "n_passed": "int64", "solved": bool}
    )
    summary_rows = []
    for signal in SIGNALS:
        n, rho = spearman(per_problem[signal], per_problem["pass_rate"])
        summary_rows.append({"signal": signal, "target": "pass_rate", "n": n, "rho": rho})
    summary = pd.DataFrame(summary_rows, columns=CORRELATION_COLUMNS).astype(
        {"n": "int64", "rho": "float64"}
    )
    logger.info("confidence vs correctness (Spearman):\n%s", summary.to_string())
    return per_problem, summary
