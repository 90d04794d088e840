"""Resumable shards: finished work is reused, keys change with what determines a shard."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from conself.shards import (
    ShardStore,
    content_key,
    group_shards,
    run_sharded,
    shard_seed,
)


def _shards(n: int) -> list[tuple[str, int, int]]:
    return [(f"s{i}", i, 1) for i in range(n)]


def test_only_missing_shards_are_computed_and_the_result_is_the_same(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "stage", "run")
    calls: list[int] = []

    def compute(i: int) -> pd.DataFrame:
        calls.append(i)
        if i == 2 and len(calls) == 3:
            raise KeyboardInterrupt  # the first run dies while computing shard 2
        return pd.DataFrame({"shard": [i, i], "value": [i * 10, i * 10 + 1]})

    with pytest.raises(KeyboardInterrupt):
        run_sharded(store, _shards(4), compute)
    assert sorted(p.name for p in store.folder.iterdir()) == ["s0.parquet", "s1.parquet"]
    finished = {p.name: p.stat().st_mtime_ns for p in store.folder.iterdir()}

    calls.clear()
    resumed = run_sharded(store, _shards(4), compute)
    assert calls == [2, 3]  # shards 0 and 1 were not recomputed
    assert {p.name: p.stat().st_mtime_ns for p in store.folder.glob("s[01].parquet")} == finished

    fresh = run_sharded(ShardStore(tmp_path, "stage", "other"), _shards(4), compute)
    pd.testing.assert_frame_equal(resumed, fresh)
    assert resumed["shard"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_no_temporary_or_partial_shard_is_left_when_saving_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ShardStore(tmp_path, "stage", "run")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        run_sharded(store, _shards(1), lambda i: pd.DataFrame({"x": [i]}))
    monkeypatch.undo()
    assert list(store.folder.iterdir()) == []


def test_content_key_depends_on_every_part_and_on_nothing_else() -> None:
    table = pd.DataFrame({"problem_id": ["a", "b"], "test_inputs": [[1, 2], [3]]})
    same = pd.DataFrame({"problem_id": ["a", "b"], "test_inputs": [[1, 2], [3]]})
    assert content_key(table, {"t": 1.0}) == content_key(same, {"t": 1.0})
    assert content_key(table, {"t": 1.0}) != content_key(table, {"t": 0.7})
    changed = same.assign(test_inputs=[[1, 2], [4]])
    assert content_key(table) != content_key(changed)
    assert content_key({"a": 1, "b": 2}) == content_key({"b": 2, "a": 1})


def test_shard_seed_depends_only_on_the_seed_and_the_shard() -> None:
    assert shard_seed(0, "k1") == shard_seed(0, "k1")
    assert shard_seed(0, "k1") != shard_seed(0, "k2")
    assert shard_seed(0, "k1") != shard_seed(1, "k1")
    assert 0 <= shard_seed(123, "x") < 2**31


def test_group_shards_keeps_order_and_drops_duplicates() -> None:
    assert group_shards(["a", "b", "a", "c", "d"], 2) == [["a", "b"], ["c", "d"]]
    assert group_shards([], 3) == []
    with pytest.raises(ValueError, match="shard_size"):
        group_shards(["a"], 0)


def test_all_shards_empty_gives_the_declared_columns(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "stage", "run")
    table = run_sharded(store, [], lambda _: pd.DataFrame(), columns=["a", "b"])
    assert list(table.columns) == ["a", "b"] and table.empty
