"""TACO and APPS: ``question``, ``starter_code`` and ``input_output`` (inputs/outputs/fn_name).

The problem's own inputs are the self-improvement test inputs; ``outputs`` go only to
the oracle table.
"""

from __future__ import annotations

import json
from typing import Any

from conself.problems.literals import dedupe, encode_args, encode_literal
from conself.problems.prompts import call_prompt, stdio_prompt
from conself.problems.records import get_field, get_json, get_str
from conself.problems.schema import ParsedProblem, RecordRef, io_problem_rows

_ID_FIELDS: tuple[str, ...] = ("id", "problem_id", "task_id", "question_id")


def _record_id(record: dict[str, Any], index: int) -> str:
    """The record's own id if it has one, else its 0-based position in the source."""
    for name in _ID_FIELDS:
        value = record.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != "":
            return str(value)
    return str(index)


def _stdio_text(value: Any, ref: RecordRef, what: str) -> str:
    """Stdin/stdout text; TACO sometimes stores it as a list of lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    got = type(value).__name__
    raise ref.error("input_output", f"{what} must be a string or a list of lines, got {got}")


def _first_solution(record: dict[str, Any]) -> str:
    """First reference solution if the record has a readable one (optional, oracle-only)."""
    value = record.get("solutions")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return ""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return ""


def io_pairs(spec: Any, ref: RecordRef, call_based: bool) -> tuple[list[str], list[str], int]:
    """Encode ``inputs``/``outputs`` pairs; pairs that cannot be encoded are dropped."""
    if not isinstance(spec, dict):
        got = type(spec).__name__
        raise ref.error("input_output", f"expected an object with 'inputs'/'outputs', got {got}")
    for key in ("inputs", "outputs"):
        if key not in spec:
            raise ref.error("input_output", f"missing key {key!r}")
        if not isinstance(spec[key], list):
            got = type(spec[key]).__name__
            raise ref.error("input_output", f"{key!r} must be a list, got {got}")
    raw_in, raw_out = spec["inputs"], spec["outputs"]
    if len(raw_in) != len(raw_out):
        raise ref.error("input_output", f"{len(raw_in)} inputs but {len(raw_out)} outputs")
    inputs: list[str] = []
    outputs: list[str] = []
    dropped = 0
    for i, (args, out) in enumerate(zip(raw_in, raw_out, strict=True)):
        if call_based:
            if not isinstance(args, list):
                raise ref.error(
                    "input_output",
                    f"inputs[{i}] must be a JSON list of arguments (fn_name is set), "
                    f"got {type(args).__name__}",
                )
            enc_in, enc_out = encode_args(args), encode_literal(out)
            if enc_in is None or enc_out is None:
                dropped += 1
                continue
        else:
            enc_in = _stdio_text(args, ref, f"inputs[{i}]")
            enc_out = _stdio_text(out, ref, f"outputs[{i}]")
        inputs.append(enc_in)
        outputs.append(enc_out)
    return inputs, outputs, dropped


def parse_taco(record: dict[str, Any], ref: RecordRef, source: str, index: int) -> ParsedProblem:
    """One TACO/APPS record -> problem + ``io`` oracle."""
    record_id = _record_id(record, index)
    ref = RecordRef(ref.file, ref.number, record_id)
    question = get_str(record, ref, "question")
    starter = get_str(record, ref, "starter_code", "")
    raw = get_field(record, ref, "input_output")
    spec: Any
    if isinstance(raw, str) and not raw.strip():
        spec = {"inputs": [], "outputs": []}  # no tests stored: skipped later, not an error
    else:
        spec = get_json(record, ref, "input_output")
    fn_name = spec.get("fn_name") if isinstance(spec, dict) else None
    if fn_name is not None and not isinstance(fn_name, str):
        raise ref.error("input_output", f"'fn_name' must be a string, got {type(fn_name).__name__}")
    call_based = bool(fn_name and fn_name.strip())
    inputs, outputs, dropped = io_pairs(spec, ref, call_based)
    difficulty = record.get("difficulty")
    problem_id = f"{source}/{record_id}"
    if call_based and fn_name is not None:
        first = spec["inputs"][0] if spec["inputs"] else None
        arity = len(first) if isinstance(first, list) else None
        prompt = call_prompt(question, starter, fn_name, arity)
    else:
        prompt = stdio_prompt(question, starter)
    problem, oracle = io_problem_rows(
        problem_id=problem_id,
        source=source,
        call_based=call_based,
        prompt=prompt,
        starter=starter,
        entry_point=fn_name or "",
        test_inputs=dedupe(inputs),
        difficulty=difficulty,
        oracle_inputs=inputs,
        expected_outputs=outputs,
        reference_program=_first_solution(record),
    )
    notes = [f"{dropped} test cases not representable as Python literals"] if dropped else []
    return ParsedProblem(problem, oracle, ref, notes)
