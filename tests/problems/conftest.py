"""Fixture writers: every test builds its own small source files under tmp_path."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conself.problems import normalize_oracles, normalize_problems

WriteJsonl = Callable[..., Path]


def _dump(records: list[Any]) -> str:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return "\n".join(lines) + ("\n" if lines else "")


@pytest.fixture
def write_jsonl(tmp_path: Path) -> WriteJsonl:
    """Write records (dicts, or raw strings for malformed lines) as JSONL (``.gz`` too)."""

    def write(name: str, records: list[Any]) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _dump(records)
        if name.endswith(".gz"):
            with gzip.open(path, "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def parquet_roundtrip(tmp_path: Path) -> Callable[[pd.DataFrame, pd.DataFrame], None]:
    """Assert both tables survive a pyarrow parquet round trip unchanged."""

    def check(problems: pd.DataFrame, oracles: pd.DataFrame) -> None:
        for name, frame, normalize in (
            ("p", problems, normalize_problems),
            ("o", oracles, normalize_oracles),
        ):
            path = tmp_path / f"{name}.parquet"
            frame.to_parquet(path, engine="pyarrow")
            back = pd.read_parquet(path, engine="pyarrow")
            assert list(back.columns) == list(frame.columns)
            assert back.dtypes.to_dict() == frame.dtypes.to_dict()
            pd.testing.assert_frame_equal(normalize(back), frame)

    return check


def _table_text(frame: pd.DataFrame) -> str:
    parts: list[str] = []
    for value in frame.to_numpy().ravel():
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        else:
            parts.append(str(value))
    return "\n".join(parts)


@pytest.fixture
def table_text() -> Callable[[pd.DataFrame], str]:
    """Every cell of a table as one string (lists flattened), to search for leaks."""
    return _table_text
