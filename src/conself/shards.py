"""Resumable stages: work split into shards, each written atomically once computed.

Why: sampling and execution take hours on real budgets, and a crash must not
cost the finished part. A stage splits its work into shards (groups of
problems), and a shard's result is stored under a key that is a hash of
everything that determines it (the inputs, the model identity, the parameters,
the shard's seed). A rerun of the same command finds the finished shards and
computes only the rest; because each shard's seed depends only on the shard,
the resumed result equals an uninterrupted one. A changed input changes the key,
so stale shards are never reused. Shards are written to a temporary sibling and
renamed, so a kill mid-write leaves nothing that looks finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def write_atomically(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary sibling, fsync it, and rename it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-able parts (DataFrames by their rows), for shard and work keys."""
    digest = hashlib.sha256()
    for part in parts:
        value = (
            {"columns": list(part.columns), "rows": part.to_dict(orient="split")["data"]}
            if isinstance(part, pd.DataFrame)
            else part
        )
        digest.update(json.dumps(value, sort_keys=True, default=_jsonable).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:20]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return repr(value)


def shard_seed(seed: int, shard_key: str) -> int:
    """A seed that depends only on the run's seed and the shard, never on other shards."""
    digest = hashlib.sha256(f"{seed}:{shard_key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def group_shards(ids: Sequence[str], shard_size: int) -> list[list[str]]:
    """Consecutive groups of ``shard_size`` ids (input order), the unit of resumption."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + shard_size] for i in range(0, len(unique), shard_size)]


@dataclass(frozen=True)
class ShardStore:
    """The finished shards of one stage run, in ``root/<stage>/<run_key>/``."""

    root: Path
    stage: str
    run_key: str

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.stage / self.run_key

    def path(self, shard_key: str) -> Path:
        return self.folder / f"{shard_key}.parquet"

    def load(self, shard_key: str) -> pd.DataFrame | None:
        """The stored shard, or None when it was never finished."""
        path = self.path(shard_key)
        if not path.is_file():
            return None
        return pd.read_parquet(path)

    def save(self, shard_key: str, table: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        write_atomically(self.path(shard_key), buffer.getvalue())


class Progress:
    """One progress line per finished shard: items done, tokens/s (when known) and ETA."""

    def __init__(self, stage: str, total: int, unit: str) -> None:
        self.stage, self.total, self.unit = stage, total, unit
        self.done = self.computed = self.tokens = 0
        self.start = time.perf_counter()
        try:
            from tqdm.auto import tqdm

            self.bar: Any = tqdm(total=total, desc=stage, unit=unit, dynamic_ncols=True)
        except ImportError:  # tqdm comes with transformers; the log line is enough without it
            self.bar = None

    def advance(self, items: int, *, computed: bool, tokens: int = 0) -> None:
        self.done += items
        if computed:
            self.computed += items
            self.tokens += tokens
        elapsed = time.perf_counter() - self.start
        rate = self.computed / elapsed if elapsed > 0 and self.computed else 0.0
        eta = (self.total - self.done) / rate if rate else float("nan")
        tok_s = self.tokens / elapsed if elapsed > 0 and self.tokens else 0.0
        if self.bar is not None:
            self.bar.update(items)
            if tok_s:
                self.bar.set_postfix(tok_s=f"{tok_s:.1f}")
        logger.info(
            "%s: %d/%d %s%s%s",
            self.stage,
            self.done,
            self.total,
            self.unit,
            f", {tok_s:.1f} tokens/s" if tok_s else "",
            f", ETA {eta:.0f}s" if not math.isnan(eta) and self.done < self.total else "",
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_sharded(
    store: ShardStore,
    shards: Iterable[tuple[str, Any, int]],
    compute: Callable[[Any], pd.DataFrame],
    *,
    unit: str = "items",
    tokens: Callable[[pd.DataFrame], int] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compute each ``(shard_key, payload, n_items)`` unless stored; return all, in order.

    ``compute`` is called only for missing shards, so an expensive resource it
    needs (a model) can be created lazily on first call.
    """
    shards = list(shards)
    progress = Progress(store.stage, sum(n for _, _, n in shards), unit)
    tables, reused = [], 0
    try:
        for shard_key, payload, n_items in shards:
            table = store.load(shard_key)
            computed = table is None
            if table is None:
                store.save(shard_key, compute(payload))
                # read back, so a computed shard and a resumed one are the same table
                table = store.load(shard_key)
                assert table is not None
            else:
                reused += 1
            tables.append(table)
            n_tokens = tokens(table) if (tokens is not None and computed) else 0
            progress.advance(n_items, computed=computed, tokens=n_tokens)
    finally:
        progress.close()
    if reused:
        logger.info(
            "%s: %d of %d shards were already finished in %s and were reused",
            store.stage,
            reused,
            len(shards),
            store.folder,
        )
    nonempty = [t for t in tables if len(t)]
    if not nonempty:
        return tables[0] if tables else pd.DataFrame(columns=list(columns or []))
    return pd.concat(nonempty, ignore_index=True)


def run_by_problem_shards(
    stage: str,
    problems: pd.DataFrame,
    key_parts: list[Any],
    params: dict[str, Any],
    resume: dict[str, Any],
    compute: Callable[[pd.DataFrame, int], pd.DataFrame],
    *,
    items_per_problem: int,
    unit: str,
    columns: list[str],
    tokens: Callable[[pd.DataFrame], int] | None = None,
) -> pd.DataFrame:
    """Run ``compute(problem_shard, seed)`` per shard of ``shard_size`` problems, resuming.

    ``params`` gives ``seed`` and ``shard_size``; ``resume`` gives ``shards_dir``. The
    run key is ``stage`` plus ``key_parts`` (what all shards share: model identity,
    settings); each shard adds its own problems and derives its own seed.
    """
    seed = int(params.get("seed", 0))
    store = ShardStore(Path(resume["shards_dir"]), stage, content_key(stage, *key_parts))
    by_id = problems.set_index("problem_id", drop=False)
    shards = []
    for ids in group_shards(list(problems["problem_id"]), int(params.get("shard_size", 8))):
        part = by_id.loc[ids].reset_index(drop=True)
        key = content_key(part, seed)
        shards.append((key, (part, shard_seed(seed, key)), len(ids) * items_per_problem))
    return run_sharded(
        store,
        shards,
        lambda payload: compute(*payload),
        unit=unit,
        tokens=tokens,
        columns=columns,
    )
