"""The model-facing text of a problem: description plus how the program is run.

The sampler wraps this in its own chat template; here we only state what a solution
must look like (function name/arity or stdin/stdout), never any expected output.
"""

from __future__ import annotations

STDIO_NOTE = "Read the input from standard input and write the answer to standard output."


def _starter_block(starter_code: str) -> str:
    return f"Use the following starter code:\n```python\n{starter_code.rstrip()}\n```\n"


def signature(name: str, arity: int) -> str:
    """``name(arg1, arg2)``: a neutral signature (names carry no hint from the solution)."""
    return f"{name}({', '.join(f'arg{i}' for i in range(1, arity + 1))})"


def call_prompt(description: str, starter_code: str, entry_point: str, arity: int | None) -> str:
    """Prompt for a call-based problem: starter code if any, else the function's signature."""
    text = description.rstrip()
    if starter_code.strip():
        return f"{text}\n\n{_starter_block(starter_code)}"
    if arity is None:
        return f"{text}\n\nWrite a Python function named `{entry_point}`.\n"
    return f"{text}\n\nWrite a Python function `{signature(entry_point, arity)}`.\n"


def stdio_prompt(description: str, starter_code: str = "") -> str:
    """Prompt for a standard-input/standard-output problem."""
    text = f"{description.rstrip()}\n\n{STDIO_NOTE}\n"
    if starter_code.strip():
        text += f"\n{_starter_block(starter_code)}"
    return text
