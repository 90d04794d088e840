"""Code semantic entropy over behaviour vectors (CONSELF.md, step 3).

A program's *behaviour* is the tuple of its outputs over all test inputs of its
problem, ``None`` where it crashed on that input. This module is pure: it knows
nothing of tables, so the rule can be checked on hand-written vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from conself.consensus.errors import ConsensusError

Behaviour = tuple[str | None, ...]
"""Outputs of one program over the inputs of its problem, in input order."""


@dataclass(frozen=True)
class EntropyResult:
    """Semantic entropy of one problem and the clustering it came from.

    ``cluster_sizes`` is sorted by decreasing size (ties: first appearance), and
    ``cluster_ids[k]`` indexes it for behaviour ``k`` (``-1`` when fully crashed), so
    cluster 0 is always the majority behaviour.
    """

    n_samples: int
    n_fully_crashed: int
    crash_rate: float
    """``n_fully_crashed / n_samples``; NaN when there is no sample at all."""
    entropy: float
    """``-sum p_c log2 p_c`` over the survivors' clusters; NaN when none survive."""
    cluster_sizes: tuple[int, ...]
    cluster_ids: tuple[int, ...]

    @property
    def n_survivors(self) -> int:
        """Programs that ran to completion on at least one input."""
        return self.n_samples - self.n_fully_crashed

    @property
    def n_clusters(self) -> int:
        """Distinct behaviours among the survivors."""
        return len(self.cluster_sizes)


def is_fully_crashed(behaviour: Behaviour) -> bool:
    """True when the program crashed on every input (all outputs are ``None``)."""
    return all(output is None for output in behaviour)


def check_behaviours(behaviours: Sequence[Behaviour]) -> int:
    """Return the common number of inputs, or raise if vectors are empty or ragged.

    Why: with zero inputs "crashed on every input" is vacuous and consensus is a
    mean over nothing, so both would silently mean something arbitrary.
    """
    lengths = {len(b) for b in behaviours}
    if len(lengths) > 1:
        raise ConsensusError(f"behaviour vectors have different lengths: {sorted(lengths)}")
    n_inputs = lengths.pop() if lengths else 0
    if behaviours and n_inputs == 0:
        raise ConsensusError("behaviour vectors are empty: a problem needs at least one input")
    return n_inputs


def semantic_entropy(behaviours: Sequence[Behaviour]) -> EntropyResult:
    """Cluster behaviours by identity and return the Shannon entropy in bits.

    Fully crashed programs are left out of the distribution but counted in
    ``crash_rate``; a partial crash stays in, its ``None`` entries compared like any
    other output (so it forms its own cluster unless another program crashed on
    exactly the same inputs with the same other outputs). One cluster gives an
    entropy of exactly ``0.0``, which the curriculum relies on.
    """
    check_behaviours(behaviours)
    first_seen: dict[Behaviour, int] = {}
    counts: dict[Behaviour, int] = {}
    n_fully_crashed = 0
    for behaviour in behaviours:
        if is_fully_crashed(behaviour):
            n_fully_crashed += 1
            continue
        key = tuple(behaviour)
        first_seen.setdefault(key, len(first_seen))
        counts[key] = counts.get(key, 0) + 1

    ordered = sorted(counts, key=lambda key: (-counts[key], first_seen[key]))
    rank = {key: index for index, key in enumerate(ordered)}
    sizes = tuple(counts[key] for key in ordered)
    cluster_ids = tuple(-1 if is_fully_crashed(b) else rank[tuple(b)] for b in behaviours)

    n_samples = len(behaviours)
    survivors = n_samples - n_fully_crashed
    if survivors == 0:
        entropy = math.nan
    elif len(sizes) == 1:
        entropy = 0.0  # exact, never -0.0 or rounding noise
    else:
        entropy = -math.fsum((s / survivors) * math.log2(s / survivors) for s in sizes)
    crash_rate = n_fully_crashed / n_samples if n_samples else math.nan
    return EntropyResult(
        n_samples=n_samples,
        n_fully_crashed=n_fully_crashed,
        crash_rate=crash_rate,
        entropy=entropy,
        cluster_sizes=sizes,
        cluster_ids=cluster_ids,
    )
