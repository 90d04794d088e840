"""The one error type of the consensus engine."""

from __future__ import annotations


class ConsensusError(ValueError):
    """Inconsistent or malformed input to the consensus engine.

    Why a dedicated type: a missing execution row or a duplicated sample must stop
    the round with a message naming the problem, sample and input, instead of
    silently turning into a crash and biasing the entropy and the pairs.
    """
