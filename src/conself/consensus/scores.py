"""Behavioural consensus of each program (CONSELF.md, step 5, first half).

Pure: works on behaviour vectors, so the rule can be checked by hand.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from conself.consensus.entropy import Behaviour, check_behaviours


def consensus_scores(behaviours: Sequence[Behaviour]) -> tuple[float, ...]:
    """Consensus of every program with the others, in the order given.

    For program ``k`` and input ``i``: 0 if ``k`` crashed on ``i``, else the share of
    programs that did not crash on ``i`` whose output equals ``k``'s (``k`` counts
    itself). The score is the mean over *all* inputs, so a partial crash is
    penalised in proportion to how often it crashed.

    Why exact arithmetic: ties decide which programs are "chosen", and a float
    mean of fractions can differ in the last bit between two programs that agree
    equally often. Each share is scaled to the common denominator of the inputs
    (an integer), and the one final division rounds correctly, so equal
    rationals give the identical float.
    """
    n_inputs = check_behaviours(behaviours)
    columns = []
    for i in range(n_inputs):
        column = [b[i] for b in behaviours]
        votes = Counter(output for output in column if output is not None)
        columns.append((column, votes, sum(votes.values())))
    common = math.lcm(*(n_ok for _, _, n_ok in columns if n_ok))
    totals = [0] * len(behaviours)
    for column, votes, n_ok in columns:
        for k, output in enumerate(column):
            if output is not None:
                totals[k] += votes[output] * (common // n_ok)
    return tuple(total / (common * n_inputs) for total in totals)
