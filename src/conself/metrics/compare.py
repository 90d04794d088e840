"""Output comparison: is a program's output on one test the expected one?

Pure functions, no execution. Each rule copies the harness of the benchmark whose
oracle it checks, because a pass@1 number is only comparable to published ones when
the comparison is the same:

* **call-based** (:func:`call_output_matches`): the sandbox gives the canonical text of
  the returned value (:func:`conself.sandbox.canonical_value`). It passes when the
  canonical texts are equal; otherwise both sides are compared as values, recursively,
  where numbers compare like EvalPlus: when either side is a (non-integral) float or
  ``atol > 0``, ``math.isclose(out, exp, rel_tol=1e-6, abs_tol=atol or 1e-6)``; ints
  compare exactly; bools only equal bools (canonical forms keep ``True`` != ``1``).
  Options for JSON-born oracles (TACO/APPS/LiveCodeBench, which cannot store a tuple):
  ``tuple_as_list`` turns a returned top-level tuple into a list (APPS and LiveCodeBench
  do this); ``unwrap_first`` also accepts ``out == exp[0]`` for a non-empty list ``exp``
  (APPS stores many call-based outputs wrapped as ``[3]``).
* **stdio** (:func:`stdio_output_matches`): the sandbox gives the canonical stdout
  (each line right-stripped, trailing blank lines dropped, see
  :func:`conself.sandbox.canonical_stdout`); the expected text goes through the same
  function. Equal texts pass. Otherwise LiveCodeBench's ``grade_stdio`` decides: both
  texts stripped, split into lines, each line stripped; same number of lines; each line
  pair equal as text or, token by token, equal as :class:`decimal.Decimal` values.
"""

from __future__ import annotations

import ast
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from conself.sandbox import canonical_stdout, canonical_value

#: Relative tolerance for float comparisons (EvalPlus uses 1e-7 in ``np.allclose``;
#: canonical floats keep 12 significant digits, so 1e-6 is the meaningful floor here).
FLOAT_REL_TOL = 1e-6
#: Absolute tolerance used for floats when the oracle gives no ``atol`` (EvalPlus: 1e-6).
FLOAT_ABS_TOL = 1e-6


class _NoValue:
    """Marker: a canonical text that is not a Python literal (e.g. ``nan``, a repr)."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


def parse_canonical(text: str) -> Any:
    """The Python value a canonical text denotes, or :data:`NO_VALUE` if it is no literal.

    Why: canonical texts round floats and sort sets, so two values can differ as text
    yet be equal within tolerance; comparing them needs the values back.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return NO_VALUE


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _has_float(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple, set, frozenset)):
        return any(_has_float(v) for v in x)
    if isinstance(x, dict):
        return any(_has_float(v) for v in x.values())
    return False


def values_match(out: Any, exp: Any, atol: float = 0.0) -> bool:
    """Structural equality with EvalPlus-like float tolerance (see the module docstring)."""
    tolerant = atol > 0 or _has_float(out) or _has_float(exp)
    return _match(out, exp, tolerant, atol if atol > 0 else FLOAT_ABS_TOL, 0)


def _match(out: Any, exp: Any, tolerant: bool, abs_tol: float, depth: int) -> bool:  # noqa: PLR0911
    if depth > 400:
        return False
    if isinstance(out, bool) or isinstance(exp, bool):
        return type(out) is type(exp) and out == exp
    if _is_number(out) and _is_number(exp):
        if isinstance(out, int) and isinstance(exp, int):
            return out == exp
        if not tolerant:
            return out == exp
        try:
            return math.isclose(out, exp, rel_tol=FLOAT_REL_TOL, abs_tol=abs_tol)
        except OverflowError:  # int too large for float
            return False
    if isinstance(out, (list, tuple)) and isinstance(exp, (list, tuple)):
        if type(out) is not type(exp) or len(out) != len(exp):
            return False
        return all(
            _match(o, e, tolerant, abs_tol, depth + 1) for o, e in zip(out, exp, strict=True)
        )
    if isinstance(out, dict) and isinstance(exp, dict):
        if out.keys() != exp.keys():
            return False
        return all(_match(out[k], exp[k], tolerant, abs_tol, depth + 1) for k in exp)
    if type(out) is not type(exp):
        return False
    try:
        return bool(out == exp)
    except Exception:  # exotic values: only identical canonical text counts
        return False


def _safe_canonical(value: Any) -> str | None:
    try:
        return canonical_value(value)
    except ValueError:
        return None


def call_output_matches(
    output: str,
    expected: Any,
    *,
    atol: float = 0.0,
    expected_text: str | None = None,
    tuple_as_list: bool = False,
    unwrap_first: bool = False,
) -> bool:
    """Does a returned value (canonical ``output``) equal ``expected`` (a Python value)?

    ``expected`` may be :data:`NO_VALUE` when only its canonical ``expected_text`` is
    known (a reference program returned something that is not a literal): then only
    the texts are compared. ``expected_text`` defaults to ``canonical_value(expected)``.
    """
    alternatives: list[tuple[Any, str | None]] = []
    text = expected_text if expected_text is not None else _safe_canonical(expected)
    alternatives.append((expected, text))
    if unwrap_first and isinstance(expected, list) and expected:
        alternatives.append((expected[0], _safe_canonical(expected[0])))
    if any(t is not None and t == output for _, t in alternatives):
        return True
    value = parse_canonical(output)
    if value is NO_VALUE:
        return False
    if tuple_as_list and isinstance(value, tuple):
        value = list(value)
        if any(t is not None and t == _safe_canonical(value) for _, t in alternatives):
            return True
    return any(exp is not NO_VALUE and values_match(value, exp, atol) for exp, _ in alternatives)


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdio_output_matches(output: str, expected: str) -> bool:
    """Does canonical stdout ``output`` match the expected stdout (raw text)?

    Rule: canonical forms equal, else LiveCodeBench's ``grade_stdio`` (module docstring).
    """
    if output == canonical_stdout(expected):
        return True
    got, want = _stripped_lines(output), _stripped_lines(expected.replace("\r\n", "\n"))
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g == w:
            continue
        g_dec, w_dec = _decimals(g), _decimals(w)
        if g_dec is None or w_dec is None:
            return False
        try:
            if g_dec != w_dec:
                return False
        except InvalidOperation:  # signalling NaN
            return False
    return True
