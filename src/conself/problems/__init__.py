"""Problems engine: every problem source normalised into a ``problems`` table (what the
model may see: prompt and test inputs, no outputs) and a separate ``oracles`` table
(expected outputs / check code, for evaluation only). Plain Python, no Kedro.
"""

from conself.problems.literals import decode_args, encode_args
from conself.problems.loader import SOURCE_OPTIONS, SOURCES, load_problems
from conself.problems.schema import (
    ORACLE_COLUMNS,
    PROBLEM_COLUMNS,
    ProblemSourceError,
    make_oracles_frame,
    make_problems_frame,
    normalize_oracles,
    normalize_problems,
)
from conself.problems.split import split_problems

__all__ = [
    "ORACLE_COLUMNS",
    "PROBLEM_COLUMNS",
    "SOURCES",
    "SOURCE_OPTIONS",
    "ProblemSourceError",
    "decode_args",
    "encode_args",
    "load_problems",
    "make_oracles_frame",
    "make_problems_frame",
    "normalize_oracles",
    "normalize_problems",
    "split_problems",
]
