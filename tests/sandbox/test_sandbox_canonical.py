"""Canonical forms are pure functions, used on both sides of every output comparison."""

from __future__ import annotations

import collections
import math

import pytest

from conself.sandbox import Outcome, Record, canonical_stdout, canonical_value
from conself.sandbox.canonical import REPR_LIMIT, OutputTooLarge, Unserialisable


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1 + 0.2, "0.3"),
        (3.0, "3"),
        (-0.0, "0"),
        (1 / 3, "0.333333333333"),
        (1e20, "1e+20"),
        (2.5e-10, "2.5e-10"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-math.inf, "-inf"),
        (True, "True"),
        (1, "1"),
        (None, "None"),
        (complex(1, 0.5), "(1+0.5j)"),
        (complex(0.25, -2), "(0.25-2j)"),
        ("it's", '"it\'s"'),
        (b"\x00a", "b'\\x00a'"),
        (bytearray(b"ab"), "b'ab'"),
        ({3, 1, 2}, "{1, 2, 3}"),
        (frozenset({"b", "a"}), "{'a', 'b'}"),
        (set(), "set()"),
        ({"b": 1, "a": 2.0}, "{'a': 2, 'b': 1}"),
        (collections.OrderedDict([("z", 1), ("y", 2)]), "{'y': 2, 'z': 1}"),
        (collections.Counter("abca"), "{'a': 2, 'b': 1, 'c': 1}"),
        ([1, (2,), {3: [4.0, ()]}], "[1, (2,), {3: [4, ()]}]"),
        (collections.namedtuple("P", "x y")(1, 2), "(1, 2)"),
        ([[1, 2], [3]], "[[1, 2], [3]]"),
        ({(1, 2): {"k"}}, "{(1, 2): {'k'}}"),
    ],
)
def test_canonical_value(value: object, text: str) -> None:
    assert canonical_value(value) == text


def test_equal_values_share_a_form() -> None:
    assert canonical_value(3) == canonical_value(3.0)
    assert canonical_value({1: "a", 2: "b"}) == canonical_value({2: "b", 1: "a"})
    assert canonical_value({"x", "y", "z"}) == canonical_value({"z", "y", "x"})
    assert canonical_value(True) != canonical_value(1)
    assert canonical_value([1, 2]) != canonical_value((1, 2))


def test_builtin_values_read_back_as_literals() -> None:
    import ast

    for value in ([1, (2.5, "x")], {"k": {1, 2}}, (complex(1, -2),), b"\x00", set(), None):
        assert ast.literal_eval(canonical_value(value)) == value


def test_huge_int_beyond_digit_limit() -> None:
    assert canonical_value(10**5000).startswith("0x")


def test_custom_objects_have_bounded_normalised_repr() -> None:
    class Big:
        def __repr__(self) -> str:
            return "x" * (REPR_LIMIT * 3)

    assert len(canonical_value(Big())) == REPR_LIMIT + 3
    assert canonical_value(object()) == "<object object at 0x?>"

    class Plain:
        pass

    assert canonical_value([Plain()]).endswith("Plain object at 0x?>]")


def test_self_reference_and_depth() -> None:
    x: list[object] = [1]
    x.append(x)
    assert canonical_value(x) == "[1, [...]]"
    d: dict[str, object] = {}
    d["me"] = d
    assert canonical_value(d) == "{'me': {...}}"
    deep: list[object] = []
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(Unserialisable):
        canonical_value(deep)


def test_limit() -> None:
    with pytest.raises(OutputTooLarge):
        canonical_value(list(range(10**5)), limit=100)
    with pytest.raises(OutputTooLarge):
        canonical_value("x" * 200, limit=100)
    with pytest.raises(OutputTooLarge):
        canonical_value({"x" * 200}, limit=100)
    assert canonical_value([1, 2], limit=6) == "[1, 2]"


def test_numpy_values() -> None:
    np = pytest.importorskip("numpy")
    assert canonical_value(np.int64(3)) == "3"
    assert canonical_value(np.float32(0.5)) == "0.5"
    assert canonical_value(np.array([[1.5, 2.0]])) == "[[1.5, 2]]"
    assert canonical_value(np.bool_(True)) == "True"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a  \r\nb\t\n\n\n", "a\nb"),
        ("", ""),
        ("\n\n", ""),
        ("  indented\n", "  indented"),
        ("x\n\ny\n", "x\n\ny"),
        ("<A object at 0x7f3a2b4c5d60>\n", "<A object at 0x?>"),
        ("0xff 0x7f3a2b4c5d60\n", "0xff 0x?"),
    ],
)
def test_canonical_stdout(text: str, canonical: str) -> None:
    assert canonical_stdout(text) == canonical


def test_outcome_is_a_string() -> None:
    assert Outcome.OK == "ok"
    assert str(Outcome.TIME_LIMIT) == "time_limit"
    assert f"{Outcome.SIGNAL}" == "signal"
    assert {o.value for o in Outcome} >= {
        "ok", "compile_error", "runtime_error", "nonzero_exit", "time_limit", "memory_limit",
        "output_limit", "signal", "no_result",
    }  # fmt: skip


def test_record_equality_ignores_timings() -> None:
    a = Record("ok", None, "1", b"1\n", "", wall_time_s=0.1, cpu_time_s=0.05, peak_memory_kb=9)
    b = Record("ok", None, "1", b"1\n", "", wall_time_s=0.3, cpu_time_s=0.07, peak_memory_kb=12)
    assert a == b
    assert a.to_row(timings=False) == b.to_row(timings=False)
    assert a.to_row() != b.to_row()
    assert set(a.to_row()) == {"outcome", "error_type", "output", "stdout", "stderr_tail",
                               "wall_time_s", "cpu_time_s", "peak_memory_kb"}  # fmt: skip
    assert a.ok and not a.crashed
    assert Record("signal", "SIGSEGV").crashed
