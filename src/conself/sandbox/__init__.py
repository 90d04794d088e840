"""Execution sandbox: run untrusted programs on test inputs, isolated, fast, deterministic.

Public API::

    from conself.sandbox import Sandbox, SandboxConfig, Job, Record, Outcome
    with Sandbox(SandboxConfig(time_limit_s=4)) as sb:
        for record in sb.run(jobs):        # records come back in job order, streamed
            ...

``Job(program, kind, entry_point="", input="")``: kind "call" imports the program and
calls ``entry_point(*ast.literal_eval(input))``; "stdio" runs it as ``__main__`` with
``input`` on stdin; "script" runs it as ``__main__`` and is ok iff it exits with 0.

Outcome classes (:class:`Outcome`); all but ``ok`` mean "crashed on this input":

* ``ok``: ran to completion (exit status 0); ``Record.output`` holds the canonical output.
* ``compile_error``: the program does not compile (``error_type`` e.g. SyntaxError).
* ``runtime_error``: uncaught exception (``error_type`` = its class name;
  ``MissingEntryPoint`` when the entry point is not defined).
* ``nonzero_exit``: ``sys.exit(n)``/``os._exit(n)`` with n != 0 (``error_type`` "exit n").
* ``time_limit``: CPU limit (RLIMIT_CPU, plus a post-hoc check of CPU time) or wall limit.
* ``memory_limit``: MemoryError under RLIMIT_AS.
* ``output_limit``: stdout/stderr/a file beyond the output limit, or a return value whose
  canonical form is larger than it.
* ``signal``: killed by a signal (``error_type`` e.g. SIGSEGV, SIGABRT).
* ``no_result``: no verdict: a call returned nothing (``sys.exit(0)``/``os._exit(0)``),
  the input was not an argument-list literal, the value could not be canonicalised, or
  the sandbox itself failed (``WorkerDied``, ``SandboxSetupError``).

Canonical forms: see :mod:`conself.sandbox.canonical` (``canonical_value`` for return
values, ``canonical_stdout`` for stdout: lines rstripped, trailing blank lines dropped).
Memory addresses (``at 0x...``) and the scratch path (``<scratch>``) are normalised in
outputs, stdout and stderr so the same batch gives identical records; ``Record``
equality and ``Record.to_row(timings=False)`` leave out the timing/memory fields.

Isolation layers (probed at start-up and logged; ``strict=True`` refuses to run when one
of ``SandboxConfig.required_layers`` is missing; ``Sandbox.layers`` tells what is active):

* ``rlimits``: CPU, address space, file size, open files, stack, no core/memlock;
  processes (RLIMIT_NPROC) when a private uid is in use.
* ``uid``: each worker slot runs programs as its own unprivileged uid/gid, locked under
  ``$TMPDIR/conself-sandbox-uids`` so concurrent sandboxes never share one. The only
  capability kept is CAP_DAC_READ_SEARCH, and only while Landlock confines reads (it
  lets the uid reach an interpreter installed under e.g. ``/root``).
* ``seccomp``: deny-list BPF filter: non-unix sockets, ptrace/process_vm, unshare/setns
  and namespace clone flags, mount, setsid/setpgid, exec, io_uring, bpf, keyrings,
  modules, clocks, TIOCSTI (EPERM, so the program sees a PermissionError).
* ``landlock``: writes only beneath the run's scratch directory (its working directory,
  HOME and TMPDIR); reads only beneath the interpreter, its libraries and system library
  paths (not the project's data); no exec; TCP bind/connect denied (``landlock_net``);
  signals and abstract unix sockets scoped to the slot (``landlock_scope``).
* ``cleanup``: the worker is a child subreaper, so every process a run starts (setsid
  and double-fork escapees included) stays its descendant; after each run all of them
  are killed (``kill(-1)`` issued as the slot uid) and reaped and the scratch is emptied
  before the slot takes its next job. If a worker dies, the engine kills what is left
  of its uid before starting a replacement.
* ``netns``/``mntns``: where the host allows namespaces, each worker gets an empty
  network namespace and a private mount namespace in which the scratch and ``/dev/shm``
  are small tmpfs mounts (size-capped; ``/dev/shm`` makes POSIX semaphores, hence
  ``multiprocessing`` queues and pools, work). Without them the engine degrades with a
  logged warning.

Speed: one warm worker process per slot forks a child per run; seccomp, Landlock and
no-new-privs are applied once to the worker and inherited, the program is compiled once
per worker (cached) and call arguments are parsed there, so a run costs about one fork.
On a VM a fork's cost is mostly page-table work (copying and tearing down one entry per
mapped page, one fault per page written afterwards), so the worker is kept small (heap
trimmed after start-up, no ``traceback``/``threading``), children find their module,
``sys.argv`` and streams ready, the worker's garbage is frozen before each fork (a
child's collections never walk it), and jobs reach workers in batches.

Determinism: fixed PYTHONHASHSEED, TZ=UTC, C.UTF-8 locale, one thread for numeric
libraries, ``random.seed(config.seed)`` before every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conself.sandbox.canonical import canonical_stdout, canonical_value
    from conself.sandbox.engine import Sandbox, SandboxUnavailable
    from conself.sandbox.types import Job, Outcome, Record, SandboxConfig

_EXPORTS = {
    "Job": "types", "Outcome": "types", "Record": "types", "SandboxConfig": "types",
    "Sandbox": "engine", "SandboxUnavailable": "engine",
    "canonical_stdout": "canonical", "canonical_value": "canonical",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """Import lazily: warm workers import this package and must stay small to fork fast."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"conself.sandbox.{module}"), name)


__all__ = [
    "Job",
    "Outcome",
    "Record",
    "Sandbox",
    "SandboxConfig",
    "SandboxUnavailable",
    "canonical_stdout",
    "canonical_value",
]
