"""Entropy-based curriculum (CONSELF.md, step 4).

Low but non-zero entropy = the model mostly agrees with itself: the most
learnable problems. Zero entropy teaches nothing, high entropy is guessing,
and a mostly crashing problem has no trustworthy majority.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from conself.consensus.errors import ConsensusError
from conself.consensus.tables import require_columns

logger = logging.getLogger(__name__)

ZERO_ENTROPY_EPS = 1e-12
"""SE at or below this is "full agreement" (one cluster gives exactly 0.0)."""
RATE_EPS = 1e-12
"""Guards ``crash_rate >= max_crash_rate`` against rounding of a stored ratio."""

REASONS = ("selected", "undefined_entropy", "crash_rate", "zero_entropy", "above_tau")


def select_curriculum(
    stats: pd.DataFrame, tau: float = 0.3, max_crash_rate: float = 0.8
) -> pd.DataFrame:
    """Return ``stats`` plus ``normalized_entropy``, ``selected`` and ``reason``.

    Every row is kept, with the first reason that applies, in this precedence:
    ``undefined_entropy`` (no surviving program), ``crash_rate``
    (``crash_rate >= max_crash_rate``), ``zero_entropy`` (``SE == 0``), then
    ``above_tau`` (normalised SE ``>= tau``); otherwise ``selected``.

    SE is min-max normalised over the problems that survive the first three
    filters only (those rows get a value; the others NaN). Degenerate range:
    when a single problem survives, or all survivors have the same SE, the
    range cannot rank anything, so every survivor gets 0.0 and is kept (for any
    ``tau > 0``) as equally learnable. Dropping them all instead would empty the
    curriculum for a reason unrelated to learnability.
    """
    require_columns(stats, ("problem_id", "crash_rate", "semantic_entropy"), "problem_stats")
    if not math.isfinite(tau):
        raise ConsensusError(f"tau must be a finite number, got {tau!r}")
    if not math.isfinite(max_crash_rate):
        raise ConsensusError(f"max_crash_rate must be a finite number, got {max_crash_rate!r}")

    table = stats.copy()
    entropy = table["semantic_entropy"].astype("float64").to_numpy()
    crash = table["crash_rate"].astype("float64").to_numpy()

    undefined = np.isnan(entropy)
    high_crash = ~undefined & (np.isnan(crash) | (crash >= max_crash_rate - RATE_EPS))
    zero = ~undefined & ~high_crash & (entropy <= ZERO_ENTROPY_EPS)
    remaining = ~undefined & ~high_crash & ~zero

    normalized = np.full(len(table), np.nan)
    if remaining.any():
        values = entropy[remaining]
        low, high = values.min(), values.max()
        normalized[remaining] = 0.0 if high == low else (values - low) / (high - low)
    above = remaining & ~(normalized < tau)

    reason = np.full(len(table), "selected", dtype=object)
    reason[above] = "above_tau"
    reason[zero] = "zero_entropy"
    reason[high_crash] = "crash_rate"
    reason[undefined] = "undefined_entropy"

    table["normalized_entropy"] = normalized
    table["selected"] = reason == "selected"
    table["reason"] = reason
    counts = {r: int((reason == r).sum()) for r in REASONS}
    logger.info(
        "curriculum: %d of %d problem(s) selected (tau=%s, max_crash_rate=%s); dropped: %s",
        counts["selected"],
        len(table),
        tau,
        max_crash_rate,
        {r: n for r, n in counts.items() if r != "selected" and n},
    )
    return table
