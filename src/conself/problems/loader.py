"""``load_problems``: one entry point that turns any supported source into the two tables."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from conself.problems.evalplus import parse_evalplus
from conself.problems.hub import hub_snapshot, is_hub_path
from conself.problems.humaneval import default_humaneval_path, parse_humaneval
from conself.problems.livecodebench import parse_date, parse_livecodebench, release_files
from conself.problems.mbpp import parse_mbpp
from conself.problems.records import iter_records, resolve_files
from conself.problems.schema import (
    ParsedProblem,
    ProblemSourceError,
    RecordRef,
    make_oracles_frame,
    make_problems_frame,
)
from conself.problems.taco import parse_taco

logger = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = (
    "humaneval",
    "taco",
    "apps",
    "mbpp",
    "humaneval_plus",
    "mbpp_plus",
    "livecodebench",
)

#: Options each source accepts besides ``errors`` ("raise" | "skip" malformed records).
SOURCE_OPTIONS: dict[str, frozenset[str]] = {
    "humaneval": frozenset(),
    "taco": frozenset(),
    "apps": frozenset(),
    "mbpp": frozenset(),
    "humaneval_plus": frozenset({"plus_inputs"}),
    "mbpp_plus": frozenset({"plus_inputs", "keep_prompt_asserts"}),
    "livecodebench": frozenset({"release_version", "start_date", "end_date", "private_inputs"}),
}

Parser = Callable[[dict[str, Any], RecordRef, int], "ParsedProblem | None"]


def _parser(source: str, options: dict[str, Any]) -> Parser:
    """Bind a source's record parser to its options."""
    if source == "humaneval":
        return lambda rec, ref, _i: parse_humaneval(rec, ref, source)
    if source in ("taco", "apps"):
        return lambda rec, ref, i: parse_taco(rec, ref, source, i)
    if source == "mbpp":
        return lambda rec, ref, _i: parse_mbpp(rec, ref, source)
    if source in ("humaneval_plus", "mbpp_plus"):
        plus = bool(options.get("plus_inputs", False))
        keep = bool(options.get("keep_prompt_asserts", False))
        return lambda rec, ref, _i: parse_evalplus(
            rec, ref, source, plus_inputs=plus, keep_prompt_asserts=keep
        )
    start = parse_date(options["start_date"], "start_date") if options.get("start_date") else None
    end = parse_date(options["end_date"], "end_date") if options.get("end_date") else None
    private = bool(options.get("private_inputs", False))
    return lambda rec, ref, _i: parse_livecodebench(
        rec, ref, source, start_date=start, end_date=end, private_inputs=private
    )


def _check_arguments(source: str, limit: int | None, options: dict[str, Any]) -> str:
    if source not in SOURCES:
        raise ProblemSourceError(
            f"unknown problem source {source!r}; choose one of {list(SOURCES)}"
        )
    allowed = SOURCE_OPTIONS[source] | {"errors"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ProblemSourceError(
            f"{source}: unknown option(s) {unknown}; this source accepts {sorted(allowed)}"
        )
    errors = options.get("errors", "raise")
    if errors not in ("raise", "skip"):
        raise ProblemSourceError(
            f"{source}: option 'errors' must be 'raise' or 'skip', not {errors!r}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ProblemSourceError(
            f"{source}: limit must be a positive integer or None, not {limit!r}"
        )
    return str(errors)


def _files(
    source: str, path: str | Path | None, options: dict[str, Any]
) -> tuple[Path, list[Path]]:
    if path is None:
        if source != "humaneval":
            raise ProblemSourceError(
                f"{source}: a path to the local data file or directory is required"
            )
        path = default_humaneval_path()
    elif is_hub_path(path):
        path = hub_snapshot(str(path), source)
    names = None
    version = options.get("release_version")
    if source == "livecodebench" and version:
        names = release_files(str(version))
    return Path(path), resolve_files(path, source, names)


def load_problems(
    source: str, path: str | Path | None = None, limit: int | None = None, **options: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load ``source`` into ``(problems_df, oracles_df)``, rows in file order.

    Problems with no usable test inputs are skipped, counted and logged (the ids are
    also in ``problems_df.attrs["skipped_no_inputs"]``); malformed records raise
    :class:`ProblemSourceError` unless ``errors="skip"``. ``limit`` caps the number of
    problems kept and stops reading early.
    """
    errors = _check_arguments(source, limit, options)
    root, files = _files(source, path, options)
    parse = _parser(source, options)
    problems: list[dict[str, Any]] = []
    oracles: list[dict[str, Any]] = []
    seen: dict[str, RecordRef] = {}
    no_inputs: list[str] = []
    invalid: list[str] = []
    filtered = 0
    dropped_notes = 0
    n_records = 0
    for index, (ref, record) in enumerate(iter_records(files)):
        n_records += 1
        try:
            if isinstance(record, ProblemSourceError):
                raise record
            parsed = parse(record, ref, index)
            if parsed is None:
                filtered += 1
                continue
            pid = parsed.problem["problem_id"]
            if pid in seen:
                first = seen[pid].where()
                raise parsed.ref.error(None, f"duplicate problem_id {pid!r} (first at {first})")
        except ProblemSourceError as exc:
            if errors == "raise":
                raise
            invalid.append(str(exc))
            logger.warning("%s: skipping malformed record: %s", source, exc)
            continue
        seen[pid] = parsed.ref
        dropped_notes += len(parsed.notes)
        for note in parsed.notes:
            logger.debug("%s: %s", parsed.ref.where(), note)
        if not parsed.problem["test_inputs"]:
            no_inputs.append(pid)
            continue
        problems.append(parsed.problem)
        oracles.append(parsed.oracle)
        if limit is not None and len(problems) >= limit:
            break
    if n_records == 0:
        raise ProblemSourceError(f"{source}: {root}: no problem records found (empty file?)")
    if no_inputs:
        logger.warning(
            "%s: skipped %d problems with no test inputs: %s", source, len(no_inputs), no_inputs
        )
    if dropped_notes:
        logger.info(
            "%s: %d problems lost test cases with no literal form (see debug log)",
            source,
            dropped_notes,
        )
    if filtered:
        logger.info("%s: %d problems outside the date window", source, filtered)
    if invalid:
        logger.warning("%s: skipped %d malformed records", source, len(invalid))
    logger.info("%s: loaded %d problems from %s", source, len(problems), root)
    problems_df = make_problems_frame(problems)
    oracles_df = make_oracles_frame(oracles)
    problems_df.attrs.update(
        {"skipped_no_inputs": no_inputs, "skipped_invalid": invalid, "filtered": filtered}
    )
    return problems_df, oracles_df
