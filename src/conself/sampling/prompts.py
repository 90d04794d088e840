"""Prompts, observation parsing and program extraction: the text side of sampling.

Kept apart from the generation backend so that the preference pairs and the
evaluation build exactly the same plain prompt the sampler used, from one place.
"""

from __future__ import annotations

import re

OBSERVATION_INSTRUCTION = (
    "Read the following programming problem and do not write any code. "
    "Instead, list the key observations that help to solve it: important points, "
    "constraints, hints, pitfalls to avoid and strategies. Write each observation on "
    "its own line, in the format:\n"
    "Observation 1: ...\nObservation 2: ...\nObservation 3: ...\n\n"
    "Problem:\n{prompt}"
)

_CALL_FORMAT = (
    "Write a Python function `{entry_point}` that solves the problem. "
    "Return the complete, self-contained solution (with any imports it needs) in a single "
    "```python code block."
)
_STDIO_FORMAT = (
    "Write a complete Python program that reads the input from standard input and writes "
    "the answer to standard output. Return it in a single ```python code block."
)

_CODE_INSTRUCTION = "Solve the following programming problem in Python.\n\n{prompt}\n\n{fmt}"
_OBSERVATION_HINT = "\n\nHere is an observation about the problem that may help:\n{observation}"

# "Observation N:" with the markdown a chat model wraps it in: bold ("**Observation 1:**",
# "**Observation 1**:"), list markers ("- ", "1. ") or headings ("### "). A body ends where
# the next observation's line starts, so the next line's marker is not part of it.
_OBSERVATION_RE = re.compile(
    r"Observation\s*(\d+)\s*\**\s*[:.]\s*(.*?)"
    r"(?=\n?[ \t]*(?:[-+]|#+|\d+[.)])?[ \t]*\**\s*Observation\s*\d+\s*\**\s*[:.]|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_FENCE_RE = re.compile(r"```python[ \t]*\n(.*?)```", re.DOTALL)
FENCE = "```"


def observation_prompt(problem_prompt: str) -> str:
    """The user message that asks for observations (step 1 of a round)."""
    return OBSERVATION_INSTRUCTION.format(prompt=problem_prompt.strip())


def code_prompt(
    problem_prompt: str, kind: str, entry_point: str = "", observation: str | None = None
) -> str:
    """The user message that asks for a program, with or without one observation.

    Without an observation this is the *plain* prompt that the preference pairs
    and the evaluation use: the model must learn to produce the consensus program
    unaided.
    """
    fmt = _CALL_FORMAT.format(entry_point=entry_point) if kind == "call" else _STDIO_FORMAT
    text = _CODE_INSTRUCTION.format(prompt=problem_prompt.strip("\n"), fmt=fmt)
    if observation:
        text += _OBSERVATION_HINT.format(observation=observation.strip())
    return text


def parse_observations(text: str, limit: int) -> list[str]:
    """Return the first ``limit`` non-empty observations of an ``Observation N: ...`` list."""
    found = []
    for _, raw in _OBSERVATION_RE.findall(text):
        body = raw.strip().strip("*").strip()
        if body:
            found.append(body)
        if len(found) == limit:
            break
    return found


def extract_program(completion: str) -> str | None:
    """The program inside the first closed ```python fence, or None (sample dropped)."""
    match = _FENCE_RE.search(completion)
    if match is None:
        return None
    program = match.group(1)
    return program if program.strip() else None


def closes_code_block(text: str) -> bool:
    """True once a completion has opened and closed a code block: sampling may stop."""
    first = text.find(FENCE)
    return first >= 0 and text.find(FENCE, first + len(FENCE)) >= 0
