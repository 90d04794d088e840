"""Output comparison rules (pure: no execution)."""

from __future__ import annotations

import pytest

from conself.metrics import call_output_matches, stdio_output_matches, values_match
from conself.sandbox import canonical_stdout, canonical_value


def out(value: object) -> str:
    """What the sandbox reports for a returned value."""
    return canonical_value(value)


@pytest.mark.parametrize(
    ("returned", "expected", "ok"),
    [
        (3, 3, True),
        (3.0, 3, True),  # canonical forms agree: integral float == int
        ([1, 2], [1, 2], True),
        ([1, 2], [2, 1], False),
        ({"b": 1, "a": 2}, {"a": 2, "b": 1}, True),
        ({1, 2}, {2, 1}, True),
        ("3", 3, False),
        (True, 1, False),  # bools stay distinct (canonical rule)
        (None, 0, False),
        ((1, 2), [1, 2], False),  # no tuple/list leniency unless asked (EvalPlus, scripts)
        (0.1 + 0.2, 0.3, True),  # float tolerance whenever a float is involved
        (1.0000001, 1.0, True),
        (1.001, 1.0, False),
        ([0.5, 1.0000001], [0.5, 1.0], True),
        (2**70, 2**70 + 1, False),  # ints never get a tolerance
    ],
)
def test_call_default(returned: object, expected: object, ok: bool) -> None:
    assert call_output_matches(out(returned), expected) is ok


def test_atol_like_evalplus() -> None:
    assert not call_output_matches(out(1.01), 1.0)
    assert call_output_matches(out(1.01), 1.0, atol=0.02)
    assert call_output_matches(out([1.01, 2]), [1.0, 2], atol=0.02)
    assert not call_output_matches(out(1.05), 1.0, atol=0.02)
    assert values_match(1e-9, 0.0)  # default abs tolerance 1e-6 near zero
    assert not values_match(1e-9, 0.0, atol=1e-12)


def test_wrapped_first_element_like_apps() -> None:
    assert not call_output_matches(out(3), [3])
    assert call_output_matches(out(3), [3], unwrap_first=True)
    assert call_output_matches(out([3]), [3], unwrap_first=True)
    assert call_output_matches(out([1, 2]), [[1, 2]], unwrap_first=True)
    assert not call_output_matches(out(4), [3], unwrap_first=True)
    assert not call_output_matches(out(3), [], unwrap_first=True)


def test_tuple_as_list_for_json_oracles() -> None:
    assert call_output_matches(out((1, 2)), [1, 2], tuple_as_list=True)
    assert call_output_matches(out((1.0000001, 2)), [1, 2], tuple_as_list=True)
    assert not call_output_matches(out([(1, 2)]), [[1, 2]], tuple_as_list=True)  # top only


def test_expected_known_only_as_text() -> None:
    from conself.metrics.compare import NO_VALUE

    text = out(float("nan"))
    assert call_output_matches(text, NO_VALUE, expected_text=text)
    assert not call_output_matches(out(1), NO_VALUE, expected_text=text)


@pytest.mark.parametrize(
    ("stdout", "expected", "ok"),
    [
        ("3\n", "3", True),
        ("1 2  \n3\n\n\n", "1 2\n3\n", True),  # trailing spaces, trailing blank lines
        ("1 2\r\n3\r\n", "1 2\n3", True),
        ("  1 2\n", "1 2\n", True),  # LiveCodeBench strips each line on both sides
        ("\n1\n", "1", True),  # ... and the whole text
        ("1.0 2\n", "1 2\n", True),  # ... and compares numeric tokens as Decimals
        ("1.50\n", "1.5", True),
        ("1.5000001\n", "1.5", False),  # Decimal equality is exact
        ("1 2\n", "1  2\n", True),  # inner whitespace: numeric tokens equal (LCB)
        ("a b\n", "a  b\n", False),  # ... but text tokens are compared as whole lines
        ("1\n2\n", "1 2\n", False),  # line structure matters
        ("YES\n", "yes\n", False),
        ("", "", True),
        ("", "0", False),
    ],
)
def test_stdio(stdout: str, expected: str, ok: bool) -> None:
    assert stdio_output_matches(canonical_stdout(stdout), expected) is ok
