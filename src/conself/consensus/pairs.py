"""Consensus preference pairs (CONSELF.md, step 5, second half).

The highest-consensus program is the label-free stand-in for "correct"; pairs
teach the model to prefer it over its low-consensus alternatives, weighted by
how strong that consensus is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pandas as pd

from conself.consensus.errors import ConsensusError
from conself.consensus.tables import is_missing, require_columns

logger = logging.getLogger(__name__)

TIE_EPS = 1e-12
"""Consensus values this close are equal (they are means of fractions)."""

PAIR_COLUMNS = (
    "problem_id",
    "pair_index",
    "chosen_sample_id",
    "rejected_sample_id",
    "chosen_consensus",
    "rejected_consensus",
    "weight",
    "rejected_fully_crashed",
    "chosen",
    "rejected",
)


def pair_positions(
    consensus: Sequence[float],
    fully_crashed: Sequence[bool],
    programs: Sequence[str],
    max_pairs: int,
) -> list[tuple[int, int]]:
    """(chosen, rejected) positions for one problem; inputs in ``sample_id`` order.

    Chosen: every program at the maximum consensus, in the given order.
    Rejected: programs strictly below the maximum that are not fully crashed,
    or, only when there are none, every program below it (the fully crashed
    ones); lowest consensus first, ties in the given order. Pairs come from
    ``for c in chosen: for r in rejected``, skipping identical program texts
    (such a pair would teach nothing and contradict itself), up to ``max_pairs``.
    """
    if max_pairs < 0:
        raise ConsensusError(f"max_pairs_per_problem must be >= 0, got {max_pairs}")
    if not consensus:
        return []
    top = max(consensus)
    chosen = [k for k, c in enumerate(consensus) if c >= top - TIE_EPS]
    lower = [k for k, c in enumerate(consensus) if c < top - TIE_EPS]
    rejected = [k for k in lower if not fully_crashed[k]] or lower
    rejected.sort(key=lambda k: consensus[k])  # stable: ties keep sample order
    pairs: list[tuple[int, int]] = []
    for c in chosen:
        for r in rejected:
            if len(pairs) >= max_pairs:
                return pairs
            if programs[c] != programs[r]:
                pairs.append((c, r))
    return pairs


def build_pairs(
    curriculum_problem_ids: Iterable[str],
    samples: pd.DataFrame,
    consensus: pd.DataFrame,
    max_pairs_per_problem: int = 3,
) -> pd.DataFrame:
    """Preference pairs for the curriculum problems, in the order given.

    ``chosen``/``rejected`` are the full sampled completions; ``weight`` is the
    chosen program's consensus. A problem whose programs all share one
    consensus value yields no pair. Every program in ``consensus`` must have its
    row in ``samples`` and vice versa (for the problems asked), otherwise the
    pairs would come from a different distribution than the consensus did.
    """
    require_columns(samples, ("problem_id", "sample_id", "program", "completion"), "samples")
    require_columns(
        consensus, ("problem_id", "sample_id", "consensus", "fully_crashed"), "sample_consensus"
    )
    if max_pairs_per_problem < 0:
        raise ConsensusError(f"max_pairs_per_problem must be >= 0, got {max_pairs_per_problem}")
    problem_ids = list(dict.fromkeys(str(p) for p in curriculum_problem_ids))
    wanted = set(problem_ids)

    texts: dict[str, dict[int, tuple[str, str]]] = {}
    for raw_pid, sid, program, completion in samples[
        ["problem_id", "sample_id", "program", "completion"]
    ].itertuples(index=False, name=None):
        pid = str(raw_pid)
        if pid not in wanted or is_missing(program):
            continue
        if is_missing(completion):
            raise ConsensusError(f"samples: problem {pid!r} sample {sid}: completion is missing")
        texts.setdefault(pid, {})[int(sid)] = (str(program), str(completion))

    scores: dict[str, list[tuple[int, float, bool]]] = {}
    for raw_pid, sid, score, crashed in consensus[
        ["problem_id", "sample_id", "consensus", "fully_crashed"]
    ].itertuples(index=False, name=None):
        pid = str(raw_pid)
        if pid in wanted:
            scores.setdefault(pid, []).append((int(sid), float(score), bool(crashed)))

    rows = []
    for pid in problem_ids:
        programs = sorted(scores.get(pid, []))
        if not programs:
            raise ConsensusError(f"curriculum problem {pid!r} has no row in sample_consensus")
        known = texts.get(pid, {})
        ids = [sid for sid, _, _ in programs]
        if len(set(ids)) != len(ids):
            raise ConsensusError(f"sample_consensus: problem {pid!r} has a sample_id twice")
        unmatched = sorted(set(ids) ^ set(known))
        if unmatched:
            raise ConsensusError(
                f"problem {pid!r} sample {unmatched[0]}: present in only one of "
                "'samples' (with a program) and 'sample_consensus'"
            )
        positions = pair_positions(
            [score for _, score, _ in programs],
            [crashed for _, _, crashed in programs],
            [known[sid][0] for sid in ids],
            max_pairs_per_problem,
        )
        for index, (c, r) in enumerate(positions):
            chosen_id, chosen_score, _ = programs[c]
            rejected_id, rejected_score, rejected_crashed = programs[r]
            rows.append(
                {
                    "problem_id": pid,
                    "pair_index": index,
                    "chosen_sample_id": chosen_id,
                    "rejected_sample_id": rejected_id,
                    "chosen_consensus": chosen_score,
                    "rejected_consensus": rejected_score,
                    "weight": chosen_score,
                    "rejected_fully_crashed": rejected_crashed,
                    "chosen": known[chosen_id][1],
                    "rejected": known[rejected_id][1],
                }
            )
    n_without = len(problem_ids) - len({row["problem_id"] for row in rows})
    logger.info(
        "built %d pair(s) for %d curriculum problem(s); %d problem(s) gave no pair",
        len(rows),
        len(problem_ids),
        n_without,
    )
    table = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    return table.astype(
        {
            "problem_id": object,
            "pair_index": "int64",
            "chosen_sample_id": "int64",
            "rejected_sample_id": "int64",
            "chosen_consensus": "float64",
            "rejected_consensus": "float64",
            "weight": "float64",
            "rejected_fully_crashed": bool,
            "chosen": object,
            "rejected": object,
        }
    )
