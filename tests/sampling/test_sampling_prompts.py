"""The text side of sampling: observation parsing, program extraction, prompts."""

from __future__ import annotations

import pytest

from conself.sampling import (
    closes_code_block,
    code_prompt,
    extract_program,
    observation_prompt,
    parse_observations,
)

# ---- parse_observations ------------------------------------------------------------------


def test_parse_observations_well_formed_keeps_first_limit_in_order() -> None:
    text = (
        "Observation 1: read all of the input first.\n"
        "Observation 2: numbers may be negative.\n"
        "Observation 3: print one line.\n"
        "Observation 4: keep it simple.\n"
    )
    assert parse_observations(text, 3) == [
        "read all of the input first.",
        "numbers may be negative.",
        "print one line.",
    ]
    assert parse_observations(text, 10)[-1] == "keep it simple."


def test_parse_observations_numbered_markdown() -> None:
    text = (
        "Here are my observations:\n\n"
        "**Observation 1:** The input is a single integer.\n"
        "**Observation 2.** Watch out for *negative* values\n"
        "  that span two lines.\n"
        "- Observation 3: Output must end with a newline.\n"
    )
    found = parse_observations(text, 3)
    assert found == [
        "The input is a single integer.",
        "Watch out for *negative* values\n  that span two lines.",
        "Output must end with a newline.",
    ]
    # No markdown residue: bold markers and list dashes belong to the layout.
    assert not any(o.startswith("*") or o.endswith("*") or o.endswith("-") for o in found)


@pytest.mark.parametrize(
    "text",
    [
        "1. Observation 1: alpha\n2. Observation 2: beta\n3. Observation 3: gamma",
        "- **Observation 1**: alpha\n- **Observation 2**: beta\n- **Observation 3**: gamma",
        "### Observation 1: alpha\n### Observation 2: beta\n### Observation 3: gamma",
        "* Observation 1: alpha\n* Observation 2: beta\n* Observation 3: gamma",
        "observation 1. alpha observation 2. beta observation 3. gamma",
    ],
)
def test_parse_observations_list_and_heading_markers(text: str) -> None:
    """The next line's list marker or heading is layout, not part of the observation."""
    assert parse_observations(text, 3) == ["alpha", "beta", "gamma"]


def test_parse_observations_fewer_than_limit_returns_what_is_there() -> None:
    text = "Observation 1: only one point here."
    assert parse_observations(text, 3) == ["only one point here."]


def test_parse_observations_skips_empty_bodies() -> None:
    text = "Observation 1:\nObservation 2: the real one."
    assert parse_observations(text, 3) == ["the real one."]


@pytest.mark.parametrize("text", ["", "I would just write the code.", "```python\nx=1\n```"])
def test_parse_observations_none(text: str) -> None:
    assert parse_observations(text, 3) == []


# ---- extract_program -----------------------------------------------------------------------


def test_extract_program_first_python_fence() -> None:
    completion = (
        "Here it is:\n```python\nprint(1)\n```\nand an alternative:\n```python\nprint(2)\n```\n"
    )
    assert extract_program(completion) == "print(1)\n"


def test_extract_program_skips_a_leading_non_python_fence() -> None:
    completion = "```text\nsample input\n```\n```python\nprint(input())\n```"
    assert extract_program(completion) == "print(input())\n"


def test_extract_program_unclosed_fence_is_none() -> None:
    assert extract_program("```python\nprint(1)\n") is None


@pytest.mark.parametrize(
    "completion",
    ["```cpp\nint main() {}\n```", "```\nprint(1)\n```", "```javascript\nconsole.log(1)\n```"],
)
def test_extract_program_other_language_or_bare_fence_is_none(completion: str) -> None:
    assert extract_program(completion) is None


@pytest.mark.parametrize("completion", ["```python\n```", "```python\n   \n\n```"])
def test_extract_program_empty_block_is_none(completion: str) -> None:
    assert extract_program(completion) is None


def test_extract_program_no_fence_is_none() -> None:
    assert extract_program("print(1)") is None


# ---- closes_code_block -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ("", False),
        ("Let me think.", False),
        ("```python\nprint(1)\n", False),
        ("```python\nprint(1)\n```", True),
        ("```python\nprint(1)\n```\nMore text", True),
        ("```\n```", True),
        ("``", False),
    ],
)
def test_closes_code_block(text: str, closed: bool) -> None:
    assert closes_code_block(text) is closed


# ---- prompts ---------------------------------------------------------------------------------

PROBLEM = "Read an integer n and print n + 1."
OBSERVATION = "the input may contain negative numbers"


def test_code_prompt_plain_has_no_observation_text() -> None:
    plain = code_prompt(PROBLEM, "stdio")
    with_obs = code_prompt(PROBLEM, "stdio", "", OBSERVATION)
    assert PROBLEM in plain
    assert OBSERVATION not in plain
    assert "observation" not in plain.lower()
    assert OBSERVATION in with_obs
    # The observation is added to the plain prompt, nothing else changes.
    assert with_obs.startswith(plain)
    assert with_obs != plain


def test_code_prompt_empty_observation_is_the_plain_prompt() -> None:
    assert code_prompt(PROBLEM, "stdio", "", "") == code_prompt(PROBLEM, "stdio")
    assert code_prompt(PROBLEM, "stdio", "", None) == code_prompt(PROBLEM, "stdio")


def test_code_prompt_kind_decides_the_format() -> None:
    call = code_prompt("Add two numbers.", "call", "add")
    stdio = code_prompt("Add two numbers.", "stdio")
    assert "`add`" in call and "standard input" not in call
    assert "standard input" in stdio
    assert "```python" in call and "```python" in stdio


def test_observation_prompt_asks_for_observations_not_code() -> None:
    prompt = observation_prompt(PROBLEM)
    assert PROBLEM in prompt
    assert "Observation 1:" in prompt
    assert "do not write any code" in prompt
