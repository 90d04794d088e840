"""The two tables every source is normalised into, and the error type for bad input.

Problems (what the model may see) and oracles (what only evaluation may see) are
separate tables so that oracle isolation is a matter of which dataset a node reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

PROBLEM_COLUMNS: list[str] = [
    "problem_id",
    "source",
    "kind",
    "prompt",
    "starter_code",
    "entry_point",
    "test_inputs",
    "difficulty",
]
ORACLE_COLUMNS: list[str] = [
    "problem_id",
    "oracle_kind",
    "check_script",
    "inputs",
    "expected_outputs",
    "reference_program",
    "atol",
]

KINDS: tuple[str, ...] = ("call", "stdio")
ORACLE_KINDS: tuple[str, ...] = ("script", "io", "reference")

_STR = "str"
_LIST = "list"
_FLOAT = "float"
_PROBLEM_TYPES: dict[str, str] = {
    "problem_id": _STR,
    "source": _STR,
    "kind": _STR,
    "prompt": _STR,
    "starter_code": _STR,
    "entry_point": _STR,
    "test_inputs": _LIST,
    "difficulty": _STR,
}
_ORACLE_TYPES: dict[str, str] = {
    "problem_id": _STR,
    "oracle_kind": _STR,
    "check_script": _STR,
    "inputs": _LIST,
    "expected_outputs": _LIST,
    "reference_program": _STR,
    "atol": _FLOAT,
}


class ProblemSourceError(ValueError):
    """Bad problem input: the message names the file, the record and the field."""


@dataclass(frozen=True)
class RecordRef:
    """Where a record came from, so every error can point at it."""

    file: str
    number: int  # 1-based line (JSONL) or row/element number
    record_id: str | None = None

    def where(self) -> str:
        """Human-readable location, e.g. ``taco.jsonl, record 3 (id 'abc')``."""
        ident = f" (id {self.record_id!r})" if self.record_id is not None else ""
        return f"{self.file}, record {self.number}{ident}"

    def error(self, field_name: str | None, detail: str) -> ProblemSourceError:
        """Build (not raise) an error for this record and field."""
        if field_name is None:
            return ProblemSourceError(f"{self.where()}: {detail}")
        return ProblemSourceError(f"{self.where()}: field {field_name!r}: {detail}")


@dataclass
class ParsedProblem:
    """One source record normalised into a problem row and its oracle row."""

    problem: dict[str, Any]
    oracle: dict[str, Any]
    ref: RecordRef
    notes: list[str] = field(default_factory=list)


def _to_list(value: Any) -> list[Any]:
    """Lists come back from parquet as numpy arrays; give them back as lists of str."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(v) for v in list(value)]


def _frame(
    rows: Iterable[Mapping[str, Any]], columns: list[str], types: dict[str, str]
) -> pd.DataFrame:
    """Build a frame with exactly ``columns`` and the project's fixed dtypes."""
    frame = pd.DataFrame(list(rows), columns=columns)
    return _coerce(frame, columns, types)


def _coerce(frame: pd.DataFrame, columns: list[str], types: dict[str, str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ProblemSourceError(f"table lacks columns {missing}; expected {columns}")
    out = frame.loc[:, columns].copy().reset_index(drop=True)
    for name, kind in types.items():
        if kind == _STR:
            out[name] = out[name].astype("str")
        elif kind == _FLOAT:
            out[name] = out[name].astype("float64")
        else:
            out[name] = pd.Series([_to_list(v) for v in out[name]], dtype=object, index=out.index)
    return out


def make_problems_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Problem rows -> frame with :data:`PROBLEM_COLUMNS` (missing difficulty is NA)."""
    return _frame(rows, PROBLEM_COLUMNS, _PROBLEM_TYPES)


def make_oracles_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Oracle rows -> frame with :data:`ORACLE_COLUMNS`."""
    return _frame(rows, ORACLE_COLUMNS, _ORACLE_TYPES)


def normalize_problems(frame: pd.DataFrame) -> pd.DataFrame:
    """Restore column order, dtypes and plain lists after a parquet round trip."""
    return _coerce(frame, PROBLEM_COLUMNS, _PROBLEM_TYPES)


def normalize_oracles(frame: pd.DataFrame) -> pd.DataFrame:
    """Restore column order, dtypes and plain lists after a parquet round trip."""
    return _coerce(frame, ORACLE_COLUMNS, _ORACLE_TYPES)


def io_problem_rows(
    *,
    problem_id: str,
    source: str,
    call_based: bool,
    prompt: str,
    starter: str,
    entry_point: str,
    test_inputs: list[str],
    difficulty: Any,
    oracle_inputs: list[str],
    expected_outputs: list[str],
    reference_program: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The problem row and its input/output oracle row, for sources that ship test cases.

    One builder for TACO/APPS and LiveCodeBench, so both sources keep exactly the
    same schema and the same split between what the model sees and the oracle.
    """
    problem = {
        "problem_id": problem_id,
        "source": source,
        "kind": "call" if call_based else "stdio",
        "prompt": prompt,
        "starter_code": starter,
        "entry_point": entry_point if call_based else "",
        "test_inputs": test_inputs,
        "difficulty": None if difficulty is None else str(difficulty),
    }
    oracle = {
        "problem_id": problem_id,
        "oracle_kind": "io",
        "check_script": "",
        "inputs": oracle_inputs,
        "expected_outputs": expected_outputs,
        "reference_program": reference_program,
        "atol": 0.0,
    }
    return problem, oracle
