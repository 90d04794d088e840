"""Canonical forms of program outputs.

Pure functions, importable in any process: the sandbox child uses them on return values,
evaluation uses them on expected values parsed from oracle files, so both sides of a
comparison go through exactly the same code.

Rules (why: outputs of different programs are compared as strings, so two outputs that
Python considers equal should map to the same text, and the text must never depend on
memory layout, hash seeds or the scratch directory):

* ``None``/``bool`` -> ``repr``; bools stay distinct from ints (``True`` != ``1``).
* ``int`` -> decimal; beyond Python's int-to-str digit limit -> ``0x`` hex.
* ``float`` -> integral values below 2**53 print as ints (``3.0`` == ``3``); others as
  ``format(x, ".12g")`` so last-bit noise of equivalent computations does not split
  clusters; ``nan``/``inf``/``-inf``; ``-0.0`` -> ``0``.
* ``complex`` -> ``(re+imj)`` with canonical parts.
* ``str``/``bytes``/``bytearray`` -> ``repr`` (bytearray as bytes).
* ``list`` ``[a, b]``, ``tuple`` ``(a, b)`` / ``(a,)``; subclasses (namedtuples...) alike.
* ``set``/``frozenset`` -> ``{...}`` with elements sorted by canonical text; empty -> ``set()``.
* ``dict`` (and subclasses) -> ``{k: v, ...}`` sorted by canonical key text.
* numpy scalars/arrays -> canonical form of ``.tolist()``.
* anything else -> ``repr`` truncated to :data:`REPR_LIMIT` characters, addresses
  normalised. Builtin scalars and containers read back with ``ast.literal_eval``
  (except nan/inf).
* self-referencing containers print ``[...]``/``{...}`` like ``repr``.

:func:`canonical_stdout` uses the whitespace rule: ``\\r\\n`` -> ``\\n``, every line
``rstrip()``-ed, trailing empty lines dropped, no final newline; then addresses normalised.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPR_LIMIT = 10_000
MAX_DEPTH = 400
_EXACT_INT_FLOAT = float(2**53)

# "<Foo object at 0x7f3a...>" and bare 12-digit pointers; short hex literals (0xff) stay.
_ADDRESS_RE = re.compile(r"(?<=at )0x[0-9a-fA-F]+|\b0x[0-9a-f]{12}\b")
ADDRESS_TOKEN = "0x?"


class OutputTooLarge(ValueError):
    """The canonical text would exceed the caller's size limit."""


class Unserialisable(ValueError):
    """The value cannot be given a canonical form (e.g. nested too deeply)."""


def normalise_addresses(text: str) -> str:
    """Replace memory addresses, which vary from run to run, by a fixed token."""
    if "0x" not in text:
        return text
    return _ADDRESS_RE.sub(ADDRESS_TOKEN, text)


def canonical_float(x: float) -> str:
    """Float text that equal-enough floats (and integral floats vs ints) share."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < _EXACT_INT_FLOAT:
        return str(int(x))
    return format(x, ".12g")


def _canonical_int(x: int) -> str:
    try:
        return str(int(x))
    except ValueError:  # int-to-str digit limit
        return hex(int(x))


class _Writer:
    """Accumulates parts with a running size so huge values fail early."""

    __slots__ = ("limit", "parts", "size")

    def __init__(self, limit: int | None) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.limit is not None and self.size > self.limit:
            raise OutputTooLarge(f"canonical output exceeds {self.limit} characters")


def _is_numpy(obj: Any) -> bool:
    module = type(obj).__module__
    return isinstance(module, str) and module.split(".", 1)[0] == "numpy"


def _write(obj: Any, out: _Writer, stack: set[int], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Unserialisable("value nested too deeply")
    if obj is None or isinstance(obj, bool):
        out.add("True" if obj is True else "False" if obj is False else "None")
    elif isinstance(obj, int):
        out.add(_canonical_int(obj))
    elif isinstance(obj, float):
        out.add(canonical_float(float(obj)))
    elif isinstance(obj, complex):
        imag = canonical_float(obj.imag)
        sign = "" if imag.startswith("-") else "+"
        out.add(f"({canonical_float(obj.real)}{sign}{imag}j)")
    elif isinstance(obj, str):
        out.add(repr(str(obj)))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        out.add(repr(bytes(obj)))
    elif isinstance(obj, (list, tuple, set, frozenset, dict)):
        key = id(obj)
        if key in stack:
            out.add("[...]" if isinstance(obj, list) else "(...)" if isinstance(obj, tuple)
                    else "{...}")  # fmt: skip
            return
        stack.add(key)
        try:
            _write_container(obj, out, stack, depth)
        finally:
            stack.discard(key)
    elif _is_numpy(obj) and callable(getattr(obj, "tolist", None)):
        _write(obj.tolist(), out, stack, depth + 1)
    else:
        text = repr(obj)
        if not isinstance(text, str):
            raise Unserialisable("__repr__ did not return a str")
        if len(text) > REPR_LIMIT:
            text = text[:REPR_LIMIT] + "..."
        out.add(normalise_addresses(text))


def _write_container(obj: Any, out: _Writer, stack: set[int], depth: int) -> None:
    if isinstance(obj, list):
        out.add("[")
        for i, item in enumerate(obj):
            if i:
                out.add(", ")
            _write(item, out, stack, depth + 1)
        out.add("]")
    elif isinstance(obj, tuple):
        out.add("(")
        for i, item in enumerate(obj):
            if i:
                out.add(", ")
            _write(item, out, stack, depth + 1)
        out.add(",)" if len(obj) == 1 else ")")
    elif isinstance(obj, (set, frozenset)):
        if not obj:
            out.add("set()")
            return
        items = sorted(_sub(item, out, stack, depth) for item in obj)
        out.add("{" + ", ".join(items) + "}")
    else:
        pairs = sorted(
            (_sub(k, out, stack, depth), _sub(v, out, stack, depth)) for k, v in obj.items()
        )
        out.add("{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}")


def _sub(obj: Any, parent: _Writer, stack: set[int], depth: int) -> str:
    """Canonical text of one element, sharing the parent's remaining budget."""
    limit = None if parent.limit is None else max(0, parent.limit - parent.size)
    sub = _Writer(limit)
    _write(obj, sub, stack, depth + 1)
    return "".join(sub.parts)


def canonical_value(obj: Any, limit: int | None = None) -> str:
    """Deterministic text of a Python value (see the module docstring for the rules).

    ``limit`` bounds the text length: :class:`OutputTooLarge` is raised past it.
    :class:`Unserialisable` is raised for values nested deeper than :data:`MAX_DEPTH`.
    """
    kind = type(obj)
    if kind is int or kind is str or kind is bool or obj is None:  # fast path: common results
        text = repr(obj) if kind is not int else _canonical_int(obj)
        if limit is None or len(text) <= limit:
            return text
    out = _Writer(limit)
    _write(obj, out, set(), 0)
    return "".join(out.parts)


def canonical_stdout(text: str) -> str:
    """Stdout under the whitespace rule: lines rstripped, trailing blank lines dropped."""
    lines = text.replace("\r\n", "\n").split("\n")
    stripped = [line.rstrip() for line in lines]
    while stripped and not stripped[-1]:
        stripped.pop()
    return normalise_addresses("\n".join(stripped))
