"""Bad input through the real first node, and datasets that never half-write."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from conself import shards as atomic
from conself.datasets import AtomicJSONDataset, AtomicParquetDataset
from conself.pipelines.generation.nodes import prepare_problems
from conself.problems import ProblemSourceError


def _taco(record_id: str, inputs: list[str], **extra: Any) -> dict[str, Any]:
    record = {
        "id": record_id,
        "question": f"Problem {record_id}: print the input.",
        "starter_code": "",
        "input_output": json.dumps({"inputs": inputs, "outputs": inputs}),
    }
    record.update(extra)
    return record


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def _params(path: Path) -> dict[str, Any]:
    return {"source": "taco", "path": str(path), "eval_fraction": 0.5, "split_seed": 0}


GOOD = [_taco(f"p{i}", [f"{i}\n", f"{i + 1}\n"]) for i in range(6)]


def test_good_file_gives_disjoint_tables_and_separate_oracles(tmp_path: Path) -> None:
    train, evaluation, oracles = prepare_problems(_params(_write(tmp_path / "ok.jsonl", GOOD)))
    ids = set(train["problem_id"]) | set(evaluation["problem_id"])
    assert len(ids) == len(GOOD) == len(train) + len(evaluation)
    assert set(train["problem_id"]).isdisjoint(evaluation["problem_id"])
    assert set(oracles["problem_id"]) == ids
    assert "expected_outputs" not in train.columns


def test_malformed_json_line_names_file_and_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad_line.jsonl", [GOOD[0], '{"id": "p9", "question": "x",', GOOD[1]])
    with pytest.raises(ProblemSourceError) as err:
        prepare_problems(_params(path))
    message = str(err.value)
    assert str(path) in message
    assert "record 2" in message
    assert "not valid JSON" in message


def test_malformed_input_output_field_names_file_record_and_field(tmp_path: Path) -> None:
    bad = _taco("p7", ["1\n"])
    bad["input_output"] = '{"inputs": ["1\\n"], "outputs": '
    path = _write(tmp_path / "bad_field.jsonl", [GOOD[0], GOOD[1], bad])
    with pytest.raises(ProblemSourceError) as err:
        prepare_problems(_params(path))
    message = str(err.value)
    assert str(path) in message
    assert "record 3" in message and "'p7'" in message
    assert "'input_output'" in message


def test_record_missing_question_names_file_record_and_field(tmp_path: Path) -> None:
    missing = _taco("p8", ["1\n"])
    del missing["question"]
    path = _write(tmp_path / "missing.jsonl", [GOOD[0], missing])
    with pytest.raises(ProblemSourceError) as err:
        prepare_problems(_params(path))
    message = str(err.value)
    assert str(path) in message
    assert "record 2" in message and "'p8'" in message
    assert "field 'question'" in message and "missing" in message


def test_problem_without_test_inputs_is_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = _taco("p-empty", [])
    path = _write(tmp_path / "empty.jsonl", [*GOOD[:3], empty, *GOOD[3:]])
    with caplog.at_level(logging.INFO, logger="conself"):
        train, evaluation, oracles = prepare_problems(_params(path))
    ids = set(train["problem_id"]) | set(evaluation["problem_id"])
    assert "taco/p-empty" not in ids | set(oracles["problem_id"])
    assert len(ids) == len(GOOD)
    skipped = [r.getMessage() for r in caplog.records if "no test inputs" in r.getMessage()]
    assert skipped and "skipped 1 problems" in skipped[0] and "taco/p-empty" in skipped[0]


# ---- atomic datasets -------------------------------------------------------------------------


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_parquet_save_of_unserialisable_data_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "table.parquet"
    data = pd.DataFrame({"id": [1, 2], "thing": [object(), object()]})
    with pytest.raises(DatasetError):
        AtomicParquetDataset(filepath=str(target)).save(data)
    assert not target.exists()
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


def test_failed_write_keeps_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the bytes are written (here: the final rename) cleans up the temp
    file and leaves the previous complete file untouched."""
    target = tmp_path / "table.parquet"
    dataset = AtomicParquetDataset(filepath=str(target))
    before = pd.DataFrame({"a": [1, 2, 3]})
    dataset.save(before)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(pd.DataFrame({"a": [9]}))
    monkeypatch.setattr(atomic.os, "replace", os.replace)
    assert _files(tmp_path) == ["table.parquet"]
    pd.testing.assert_frame_equal(dataset.load(), before)


def test_versioned_parquet_failure_leaves_no_version(tmp_path: Path) -> None:
    target = tmp_path / "samples.parquet"
    dataset = AtomicParquetDataset(filepath=str(target), version=Version(None, None))
    with pytest.raises(DatasetError):
        dataset.save(pd.DataFrame({"x": [object()]}))
    assert _files(tmp_path) == []
    dataset.save(pd.DataFrame({"x": [1]}))
    assert len(_files(tmp_path)) == 1
    assert dataset.load()["x"].tolist() == [1]


def test_json_save_of_unserialisable_data_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    with pytest.raises(DatasetError):
        AtomicJSONDataset(filepath=str(target)).save({"when": object()})
    assert _files(tmp_path) == []
    AtomicJSONDataset(filepath=str(target)).save({"n": 1})
    assert json.loads(target.read_text()) == {"n": 1}
