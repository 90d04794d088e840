"""Semantic entropy, curriculum, behavioural consensus and preference pairs.

Plain Python + pandas (no Kedro): steps 3 to 5 of CONSELF.md. The pure cores
(``semantic_entropy``, ``consensus_scores``, ``pair_positions``) work on
behaviour vectors; the table functions wrap them for the pipeline.
"""

from conself.consensus.curriculum import select_curriculum
from conself.consensus.entropy import Behaviour, EntropyResult, semantic_entropy
from conself.consensus.errors import ConsensusError
from conself.consensus.pairs import build_pairs, pair_positions
from conself.consensus.scores import consensus_scores
from conself.consensus.tables import collect_behaviours, problem_stats, sample_consensus

__all__ = [
    "Behaviour",
    "ConsensusError",
    "EntropyResult",
    "build_pairs",
    "collect_behaviours",
    "consensus_scores",
    "pair_positions",
    "problem_stats",
    "sample_consensus",
    "select_curriculum",
    "semantic_entropy",
]
