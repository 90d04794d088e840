"""Public data types of the sandbox: jobs in, records out, outcome classes, configuration."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """Outcome class of one run; every value except ``OK`` means "crashed on this input"."""

    OK = "ok"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    NONZERO_EXIT = "nonzero_exit"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    SIGNAL = "signal"
    NO_RESULT = "no_result"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


KINDS = ("call", "stdio", "script")


@dataclass(frozen=True)
class Job:
    """One (program, input) run.

    ``kind`` "call": import ``program`` as a module and call ``entry_point(*args)`` with
    ``args = ast.literal_eval(input)`` (the literal of the positional-argument list);
    ``entry_point`` may also be ``"Class().method"``. "stdio": run as ``__main__`` with
    ``input`` on stdin (UTF-8, surrogateescape, so ``os.fsdecode``-style strings carry raw
    bytes). "script": run as ``__main__``; ok iff it ends with exit status 0.
    """

    program: str
    kind: str
    entry_point: str = ""
    input: str = ""


@dataclass(frozen=True)
class Record:
    """Result of one job. Equality ignores the timing/memory fields, which vary run to run.

    ``output`` is the canonical output and is set only when ``outcome == "ok"``.
    ``stdout`` is the undecoded stdout (capped at the output limit) with the scratch path
    and memory addresses normalised; ``stderr_tail`` is the decoded end of stderr.
    """

    outcome: str
    error_type: str | None = None
    output: str | None = None
    stdout: bytes = b""
    stderr_tail: str = ""
    wall_time_s: float = field(default=0.0, compare=False)
    cpu_time_s: float = field(default=0.0, compare=False)
    peak_memory_kb: int = field(default=0, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK.value

    @property
    def crashed(self) -> bool:
        """Any non-ok outcome: the method treats all of them as a crash on this input."""
        return not self.ok

    def to_row(self, timings: bool = True) -> dict[str, Any]:
        """Flat dict for a table row; ``timings=False`` keeps only the deterministic fields."""
        row = asdict(self)
        if not timings:
            for name in ("wall_time_s", "cpu_time_s", "peak_memory_kb"):
                row.pop(name)
        return row


DEFAULT_REQUIRED_LAYERS = ("rlimits", "uid", "seccomp", "landlock", "cleanup")

# Modules generated programs import most (HumanEval: typing; contest code: math,
# collections, heapq, bisect...). Each is imported once per worker instead of once per
# run, but each also enlarges the worker, whose size is paid on every fork: keep it short.
DEFAULT_PRELOAD = (
    "bisect", "collections", "decimal", "fractions", "functools", "heapq", "itertools",
    "math", "operator", "random", "re", "string", "typing",
)  # fmt: skip


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and isolation settings; every limit is per (program, input) run.

    ``wall_limit_s`` defaults to ``2 * time_limit_s + 1`` (wall time varies with load, CPU
    time does not, so the CPU limit is the one that decides most time-outs).
    ``strict`` refuses to start when a layer named in ``required_layers`` is unavailable.
    ``preload_modules`` are imported once per warm worker so runs do not pay for them.
    """

    time_limit_s: float = 4.0
    memory_limit_mb: int = 1024
    output_limit_bytes: int = 1 << 20
    workers: int | None = None
    strict: bool = False
    wall_limit_s: float | None = None
    max_processes: int = 64
    max_open_files: int = 256
    stack_limit_mb: int = 64
    scratch_limit_mb: int = 64
    stderr_tail_bytes: int = 4096
    seed: int = 0
    hash_seed: int = 0
    uid_base: int = 62000
    uid_count: int = 2000
    use_namespaces: bool = True
    required_layers: tuple[str, ...] = DEFAULT_REQUIRED_LAYERS
    preload_modules: tuple[str, ...] = DEFAULT_PRELOAD
    extra_read_paths: tuple[str, ...] = ()
    python: str | None = None

    @property
    def n_workers(self) -> int:
        """Default: one worker per core (more only added CPU per run once a slow job no
        longer holds the others up; measured on 2 cores, 3 workers: 770 runs/s, 2: 796)."""
        return max(1, self.workers or os.cpu_count() or 1)

    @property
    def wall_limit(self) -> float:
        return self.wall_limit_s if self.wall_limit_s is not None else 2 * self.time_limit_s + 1
