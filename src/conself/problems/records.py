"""Read raw records from local files: JSONL (optionally gzipped), a JSON list, parquet,
a Hugging Face ``.arrow`` shard, or a directory of those.

Every record carries a :class:`RecordRef` so later errors can name file and record.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conself.problems.schema import ProblemSourceError, RecordRef

_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".arrow")


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(_SUFFIXES)


def resolve_files(path: str | Path, source: str, names: list[str] | None = None) -> list[Path]:
    """The data files behind ``path`` (a file or a directory), in a stable order.

    ``names`` restricts a directory to these file names, in this order.
    """
    root = Path(path)
    if not root.exists():
        raise ProblemSourceError(f"{source}: problem file or directory does not exist: {root}")
    if root.is_file():
        if names is not None:
            raise ProblemSourceError(
                f"{source}: {root}: selecting files {names} needs a directory, not a file"
            )
        return [root]
    if names is not None:
        files = [root / name for name in names]
        absent = [str(f) for f in files if not f.is_file()]
        if absent:
            raise ProblemSourceError(f"{source}: {root}: missing data files {absent}")
        return files
    files = sorted(p for p in root.iterdir() if _is_data_file(p))
    if not files:
        raise ProblemSourceError(
            f"{source}: directory {root} holds no data files (expected one of {list(_SUFFIXES)})"
        )
    return files


def _open_text(path: Path) -> Any:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


#: A record, or the error that makes it unreadable (so callers may raise or skip it).
RecordOrError = dict[str, Any] | ProblemSourceError


def _check_record(value: Any, ref: RecordRef) -> RecordOrError:
    if not isinstance(value, dict):
        return ref.error(None, f"expected a JSON object, got {type(value).__name__}")
    return value


def _iter_jsonl(path: Path) -> Iterator[tuple[RecordRef, RecordOrError]]:
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                ref = RecordRef(str(path), number)
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield ref, ref.error(None, f"line is not valid JSON ({exc})")
                    continue
                yield ref, _check_record(value, ref)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ProblemSourceError(f"{path}: cannot read file ({exc})") from None


def _iter_json(path: Path) -> Iterator[tuple[RecordRef, RecordOrError]]:
    try:
        with _open_text(path) as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ProblemSourceError(f"{path}: cannot read file ({exc})") from None
    if not text.strip():
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # A ".json" file may also be JSON lines; fall back before failing.
        if "\n" in text.strip():
            yield from _iter_jsonl(path)
            return
        raise ProblemSourceError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        got = type(value).__name__
        raise ProblemSourceError(f"{path}: expected a JSON list of records, got {got}")
    for number, item in enumerate(value, start=1):
        ref = RecordRef(str(path), number)
        yield ref, _check_record(item, ref)


def _iter_arrow_table(path: Path) -> Iterator[tuple[RecordRef, RecordOrError]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.name.endswith(".parquet"):
            batches = pq.ParquetFile(path).iter_batches()
        else:
            try:
                reader = pa.ipc.open_stream(pa.memory_map(str(path)))
            except pa.ArrowInvalid:
                reader = pa.ipc.open_file(pa.memory_map(str(path)))
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                batches = iter(reader)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield RecordRef(str(path), number), row
    except (OSError, pa.ArrowException) as exc:
        raise ProblemSourceError(f"{path}: cannot read table ({exc})") from None


def iter_records(files: list[Path]) -> Iterator[tuple[RecordRef, RecordOrError]]:
    """Yield ``(ref, record)`` for every record of every file, in file order.

    A record that cannot be read (bad JSON line, not an object) is yielded as a
    :class:`ProblemSourceError` instead; an unreadable file raises.
    """
    for path in files:
        name = path.name
        if name.endswith((".parquet", ".arrow")):
            yield from _iter_arrow_table(path)
        elif name.endswith((".json", ".json.gz")):
            yield from _iter_json(path)
        else:
            yield from _iter_jsonl(path)


# ---- typed field access -------------------------------------------------------------------

_MISSING = object()


def get_field(record: dict[str, Any], ref: RecordRef, name: str, default: Any = _MISSING) -> Any:
    """A field's value; a missing required field (no default) is an error."""
    if name in record and record[name] is not None:
        return record[name]
    if default is _MISSING:
        raise ref.error(name, "missing required field")
    return default


def get_str(record: dict[str, Any], ref: RecordRef, name: str, default: Any = _MISSING) -> Any:
    """A string field; any other type is an error naming the type found."""
    value = get_field(record, ref, name, default)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, str):
        raise ref.error(name, f"expected a string, got {type(value).__name__}")
    return value


def get_id(record: dict[str, Any], ref: RecordRef, name: str) -> str:
    """A record id (string or integer) as text."""
    value = get_field(record, ref, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ref.error(name, f"expected a string or integer id, got {type(value).__name__}")
    return str(value)


def get_json(record: dict[str, Any], ref: RecordRef, name: str, default: Any = _MISSING) -> Any:
    """A field stored either as a JSON string or as the decoded value."""
    value = get_field(record, ref, name, default)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ref.error(name, f"not valid JSON ({exc})") from None
    return value
