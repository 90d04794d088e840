"""MBPP (original ``text``/``code``/``test_list`` and the sanitized ``prompt`` variant).

The asserts hold expected outputs, so they go to the oracle only; the prompt gets the
description plus a neutral signature (name and arity read from the asserts' calls).
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from conself.problems.literals import (
    called_names,
    calls_in_order,
    dedupe,
    defined_functions,
    literal_call_args,
)
from conself.problems.prompts import call_prompt
from conself.problems.records import get_field, get_id, get_str
from conself.problems.schema import ParsedProblem, RecordRef

_BUILTINS = frozenset(dir(builtins))


def _str_list(
    record: dict[str, Any], ref: RecordRef, name: str, required: bool = True
) -> list[str]:
    value = get_field(record, ref, name) if required else (record.get(name) or [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ref.error(name, f"expected a list of strings, got {type(value).__name__}")
    return value


def parse_asserts(
    tests: list[str], ref: RecordRef, field_name: str = "test_list"
) -> list[ast.Module]:
    """Parse each assert (never run it); a syntax error names the item."""
    trees = []
    for i, test in enumerate(tests):
        try:
            trees.append(ast.parse(test))
        except SyntaxError as exc:
            raise ref.error(field_name, f"item {i} is not valid Python ({exc.msg})") from None
    return trees


def find_entry_point(trees: list[ast.Module], code: str, ref: RecordRef, field_name: str) -> str:
    """The function under test: a called name the reference defines, else a non-builtin."""
    names = dedupe(n for tree in trees for n in called_names(tree))
    defined = set(defined_functions(code))
    for name in names:
        if name in defined:
            return name
    for name in names:
        if name not in _BUILTINS:
            return name
    raise ref.error(field_name, "no call to the function under test found in the asserts")


def call_arity(trees: list[ast.Module], entry_point: str) -> int | None:
    """Number of positional arguments in the first call to ``entry_point``."""
    for tree in trees:
        for call in calls_in_order(tree):
            if isinstance(call.func, ast.Name) and call.func.id == entry_point:
                return len(call.args)
    return None


def parse_mbpp(record: dict[str, Any], ref: RecordRef, source: str) -> ParsedProblem:
    """One MBPP record -> problem (text + signature) + ``script`` oracle (the asserts)."""
    task_id = get_id(record, ref, "task_id")
    ref = RecordRef(ref.file, ref.number, task_id)
    text_field = "text" if "text" in record or "prompt" not in record else "prompt"
    text = get_str(record, ref, text_field)
    tests = _str_list(record, ref, "test_list")
    code = get_str(record, ref, "code", "")
    if "test_imports" in record and "test_setup_code" not in record:
        setup = "\n".join(_str_list(record, ref, "test_imports", required=False))
    else:
        setup = get_str(record, ref, "test_setup_code", "")
    trees = parse_asserts(tests, ref)
    entry_point = find_entry_point(trees, code, ref, "test_list")
    inputs = dedupe(i for tree in trees for i in literal_call_args(tree, entry_point)[0])
    problem_id = f"{source}/{task_id}"
    problem = {
        "problem_id": problem_id,
        "source": source,
        "kind": "call",
        "prompt": call_prompt(text, "", entry_point, call_arity(trees, entry_point)),
        "starter_code": "",
        "entry_point": entry_point,
        "test_inputs": inputs,
        "difficulty": None,
    }
    script = (setup.strip() + "\n\n" if setup.strip() else "") + "\n".join(tests) + "\n"
    oracle = {
        "problem_id": problem_id,
        "oracle_kind": "script",
        "check_script": script,
        "inputs": inputs,
        "expected_outputs": [],
        "reference_program": code,
        "atol": 0.0,
    }
    return ParsedProblem(problem, oracle, ref)
