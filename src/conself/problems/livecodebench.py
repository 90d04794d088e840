"""LiveCodeBench code generation: public inputs for the model, all outputs for the oracle.

Private test cases may be plain JSON or, as in the real release, base64(zlib(pickle(json))).
The pickle is read with an unpickler that refuses every class, so a crafted file cannot
run code: only the JSON string inside is accepted.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import pickle
import re
import zlib
from typing import Any

from conself.problems.literals import dedupe, encode_args, encode_literal
from conself.problems.prompts import call_prompt, stdio_prompt
from conself.problems.records import get_field, get_id, get_json, get_str
from conself.problems.schema import ParsedProblem, ProblemSourceError, RecordRef, io_problem_rows

#: Files of the hub dataset ``livecodebench/code_generation_lite``, one per release step.
RELEASE_FILES: list[str] = [f"test{'' if i == 1 else i}.jsonl" for i in range(1, 7)]


def release_files(version: str) -> list[str]:
    """File names of ``release_vN`` (cumulative), ``vN``, ``vA_vB`` or ``release_latest``."""
    if version == "release_latest":
        return list(RELEASE_FILES)
    if m := re.fullmatch(r"release_v(\d+)", version):
        n = int(m.group(1))
        if 1 <= n <= len(RELEASE_FILES):
            return RELEASE_FILES[:n]
    if m := re.fullmatch(r"v(\d+)", version):
        n = int(m.group(1))
        if 1 <= n <= len(RELEASE_FILES):
            return [RELEASE_FILES[n - 1]]
    if m := re.fullmatch(r"v(\d+)_v(\d+)", version):
        a, b = int(m.group(1)), int(m.group(2))
        if 1 <= a <= b <= len(RELEASE_FILES):
            return RELEASE_FILES[a - 1 : b]
    raise ProblemSourceError(
        f"livecodebench: unknown release_version {version!r} (use release_v1..release_v"
        f"{len(RELEASE_FILES)}, v1..v{len(RELEASE_FILES)}, vA_vB or release_latest)"
    )


def parse_date(value: Any, name: str) -> str:
    """An option date as ``YYYY-MM-DD`` (accepts str, date or datetime)."""
    text = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise ProblemSourceError(f"livecodebench: option {name!r}: not a date: {value!r}") from None


class _NoClassesUnpickler(pickle.Unpickler):
    """Unpickles plain data only; any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _decode_compressed(text: str) -> Any:
    raw = zlib.decompress(base64.b64decode(text.encode("utf-8"), validate=False))
    value = _NoClassesUnpickler(io.BytesIO(raw)).load()
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def decode_test_cases(record: dict[str, Any], ref: RecordRef, name: str) -> list[dict[str, Any]]:
    """A test-case list from plain JSON or the compressed release form."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as plain_exc:
            try:
                value = _decode_compressed(value)
            except (
                binascii.Error,
                zlib.error,
                pickle.UnpicklingError,
                EOFError,
                ValueError,
                TypeError,
                json.JSONDecodeError,
            ) as exc:
                raise ref.error(
                    name, f"neither JSON ({plain_exc}) nor base64/zlib/pickle JSON ({exc})"
                ) from None
    if not isinstance(value, list):
        raise ref.error(name, f"expected a list of test cases, got {type(value).__name__}")
    for i, case in enumerate(value):
        if not isinstance(case, dict):
            raise ref.error(name, f"test case {i} must be an object, got {type(case).__name__}")
        for key in ("input", "output"):
            if not isinstance(case.get(key), str):
                raise ref.error(name, f"test case {i}: {key!r} must be a string")
        if case.get("testtype", "stdin") not in ("stdin", "functional"):
            raise ref.error(name, f"test case {i}: unknown testtype {case.get('testtype')!r}")
    return value


def functional_args(text: str, ref: RecordRef, name: str, index: int) -> list[Any]:
    """LiveCodeBench functional input: one JSON value per argument, one per line."""
    args = []
    for j, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            args.append(json.loads(line))
        except json.JSONDecodeError as exc:
            detail = f"test case {index}: input line {j + 1} is not JSON ({exc})"
            raise ref.error(name, detail) from None
    return args


def _encode_cases(
    cases: list[dict[str, Any]], ref: RecordRef, name: str, call_based: bool
) -> tuple[list[str], list[str], int]:
    inputs: list[str] = []
    outputs: list[str] = []
    dropped = 0
    for i, case in enumerate(cases):
        if not call_based:
            inputs.append(case["input"])
            outputs.append(case["output"])
            continue
        try:
            expected = json.loads(case["output"])
        except json.JSONDecodeError as exc:
            raise ref.error(name, f"test case {i}: output is not JSON ({exc})") from None
        enc_in = encode_args(functional_args(case["input"], ref, name, i))
        enc_out = encode_literal(expected)
        if enc_in is None or enc_out is None:
            dropped += 1
            continue
        inputs.append(enc_in)
        outputs.append(enc_out)
    return inputs, outputs, dropped


def parse_livecodebench(
    record: dict[str, Any],
    ref: RecordRef,
    source: str,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    private_inputs: bool = False,
) -> ParsedProblem | None:
    """One LiveCodeBench record -> problem + ``io`` oracle; ``None`` if outside the date window."""
    question_id = get_id(record, ref, "question_id")
    ref = RecordRef(ref.file, ref.number, question_id)
    if start_date or end_date:
        contest = get_str(record, ref, "contest_date")
        try:
            day = dt.date.fromisoformat(contest[:10]).isoformat()
        except ValueError:
            raise ref.error("contest_date", f"not a date: {contest!r}") from None
        if (start_date and day < start_date) or (end_date and day > end_date):
            return None
    content = get_str(record, ref, "question_content")
    starter = get_str(record, ref, "starter_code", "")
    get_field(record, ref, "public_test_cases")
    public = decode_test_cases(record, ref, "public_test_cases")
    private = decode_test_cases(record, ref, "private_test_cases")
    types = {c.get("testtype", "stdin") for c in public + private}
    if len(types) > 1:
        raise ref.error("public_test_cases", "mixes 'stdin' and 'functional' test cases")
    metadata = get_json(record, ref, "metadata", {})
    if not isinstance(metadata, dict):
        raise ref.error("metadata", f"expected an object, got {type(metadata).__name__}")
    call_based = types == {"functional"} or (not types and bool(metadata.get("func_name")))
    func_name = ""
    if call_based:
        func_name = metadata.get("func_name") or ""
        if not isinstance(func_name, str) or not func_name:
            raise ref.error("metadata", "functional test cases need a string 'func_name'")
    pub_in, pub_out, dropped = _encode_cases(public, ref, "public_test_cases", call_based)
    priv_in, priv_out, more = _encode_cases(private, ref, "private_test_cases", call_based)
    problem_id = f"{source}/{question_id}"
    difficulty = record.get("difficulty")
    if call_based:
        first = public[0]["input"] if public else None
        arity = None if first is None else len(functional_args(first, ref, "public_test_cases", 0))
        prompt = call_prompt(content, starter, func_name, arity)
    else:
        prompt = stdio_prompt(content, starter)
    problem, oracle = io_problem_rows(
        problem_id=problem_id,
        source=source,
        call_based=call_based,
        prompt=prompt,
        starter=starter,
        entry_point=func_name,
        test_inputs=dedupe(pub_in + priv_in if private_inputs else pub_in),
        difficulty=difficulty,
        oracle_inputs=pub_in + priv_in,
        expected_outputs=pub_out + priv_out,
    )
    lost = dropped + more
    notes = [f"{lost} test cases not representable as Python literals"] if lost else []
    return ParsedProblem(problem, oracle, ref, notes)
