"""EvalPlus HumanEval+ / MBPP+ JSONL: ``base_input`` (+ ``plus_input``) argument lists.

EvalPlus stores no expected outputs: the oracle is the canonical solution, which
evaluation runs in the sandbox (with ``atol`` for floats) to obtain them.
"""

from __future__ import annotations

from typing import Any

from conself.problems.literals import dedupe, encode_args
from conself.problems.prompts import call_prompt
from conself.problems.records import get_field, get_id, get_str
from conself.problems.schema import ParsedProblem, RecordRef


def _encoded_inputs(record: dict[str, Any], ref: RecordRef, name: str) -> tuple[list[str], int]:
    """Encode a list of argument lists; values with no literal form (inf, nan) are dropped."""
    value = get_field(record, ref, name)
    if not isinstance(value, list):
        raise ref.error(name, f"expected a list of argument lists, got {type(value).__name__}")
    out: list[str] = []
    dropped = 0
    for i, args in enumerate(value):
        if not isinstance(args, list):
            got = type(args).__name__
            raise ref.error(name, f"item {i} must be a list of arguments, got {got}")
        encoded = encode_args(args)
        if encoded is None:
            dropped += 1
        else:
            out.append(encoded)
    return out, dropped


def strip_prompt_asserts(prompt: str) -> str:
    """MBPP+ prompts embed one assert (an expected output): keep only the description."""
    lines = [ln for ln in prompt.splitlines() if not ln.strip().startswith("assert ")]
    text = "\n".join(lines).strip()
    for quote in ('"""', "'''"):
        if text.startswith(quote) and text.endswith(quote) and len(text) >= 6:
            text = text[3:-3].strip()
    return text


def parse_evalplus(
    record: dict[str, Any],
    ref: RecordRef,
    source: str,
    *,
    plus_inputs: bool = False,
    keep_prompt_asserts: bool = False,
) -> ParsedProblem:
    """One EvalPlus record -> problem + ``reference`` oracle (canonical solution, atol)."""
    task_id = get_id(record, ref, "task_id")
    ref = RecordRef(ref.file, ref.number, task_id)
    prompt = get_str(record, ref, "prompt")
    entry_point = get_str(record, ref, "entry_point")
    solution = get_str(record, ref, "canonical_solution")
    base, dropped = _encoded_inputs(record, ref, "base_input")
    plus: list[str] = []
    if plus_inputs or record.get("plus_input") is not None:
        plus, more = _encoded_inputs(record, ref, "plus_input")  # required if plus_inputs
        dropped += more
    atol = get_field(record, ref, "atol", 0.0)
    if isinstance(atol, bool) or not isinstance(atol, (int, float)):
        raise ref.error("atol", f"expected a number, got {type(atol).__name__}")
    if source == "mbpp_plus" and not keep_prompt_asserts:
        raw_base = record["base_input"]
        arity = len(raw_base[0]) if raw_base else None
        shown = call_prompt(strip_prompt_asserts(prompt), "", entry_point, arity)
        starter = ""
    else:
        shown = prompt
        starter = prompt if source == "humaneval_plus" else ""
    inputs = dedupe(base + plus) if plus_inputs else dedupe(base)
    problem = {
        "problem_id": task_id,
        "source": source,
        "kind": "call",
        "prompt": shown,
        "starter_code": starter,
        "entry_point": entry_point,
        "test_inputs": inputs,
        "difficulty": None,
    }
    oracle = {
        "problem_id": task_id,
        "oracle_kind": "reference",
        "check_script": "",
        # The full EvalPlus test set, whatever the model was shown for self-improvement.
        "inputs": dedupe(base + plus),
        "expected_outputs": [],
        "reference_program": prompt + solution,
        "atol": float(atol),
    }
    notes = [f"{dropped} inputs not representable as Python literals"] if dropped else []
    return ParsedProblem(problem, oracle, ref, notes)
