"""Test-input encoding and reading call arguments out of test code with ``ast``.

Call-based inputs are stored as the Python literal of the positional-argument list so
the sandbox can rebuild them with ``ast.literal_eval`` and never has to run test code.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from typing import Any


def _finite(value: Any) -> bool:
    """False when a float inside ``value`` is inf/nan: their repr is not a literal."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, complex):
        return math.isfinite(value.real) and math.isfinite(value.imag)
    if isinstance(value, dict):
        return all(_finite(k) and _finite(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_finite(v) for v in value)
    return True


def encode_literal(value: Any) -> str | None:
    """``repr(value)`` if it round-trips through ``ast.literal_eval``, else ``None``."""
    if not _finite(value):
        return None
    try:
        text = repr(value)
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if back != value or type(back) is not type(value):
        return None
    return text


def encode_args(args: Iterable[Any]) -> str | None:
    """Encode a positional-argument list as a Python literal list, or ``None``."""
    return encode_literal(list(args))


def decode_args(text: str) -> list[Any]:
    """Inverse of :func:`encode_args` (used by tests and consumers)."""
    value = ast.literal_eval(text)
    if not isinstance(value, list):
        raise ValueError(f"test input is not a literal argument list: {text[:80]!r}")
    return value


def dedupe(items: Iterable[str]) -> list[str]:
    """Drop repeats, keep first occurrence order (repeats would double-weight an input)."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _call_name(node: ast.Call) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else None


def calls_in_order(tree: ast.AST) -> list[ast.Call]:
    """Every call node, in source order (``ast.walk`` is breadth-first, not source order)."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return sorted(calls, key=lambda n: (n.lineno, n.col_offset))


def called_names(tree: ast.AST) -> list[str]:
    """Names of plainly-named functions called in ``tree``, in source order, deduped."""
    return dedupe(name for call in calls_in_order(tree) if (name := _call_name(call)))


def literal_call_args(tree: ast.AST, func_name: str) -> tuple[list[str], int]:
    """Encoded argument lists of ``func_name(...)`` calls whose arguments are all literals.

    Calls with keyword or starred arguments, or any non-literal argument (a variable,
    ``float('inf')``, a nested call), are skipped. Returns ``(inputs, skipped)``;
    inputs keep source order and repeats are dropped.
    """
    found: list[str] = []
    skipped = 0
    for call in calls_in_order(tree):
        if _call_name(call) != func_name:
            continue
        if call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
            skipped += 1
            continue
        try:
            args = [ast.literal_eval(a) for a in call.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            skipped += 1
            continue
        encoded = encode_args(args)
        if encoded is None:
            skipped += 1
            continue
        found.append(encoded)
    return dedupe(found), skipped


def defined_functions(code: str) -> list[str]:
    """Top-level function names defined in ``code`` (parsed, never executed); [] if unparsable."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
