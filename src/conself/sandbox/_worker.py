"""Warm worker process: one per slot, started by :class:`conself.sandbox.Sandbox`.

The worker (root when the host allows it) prepares everything once: an unprivileged uid
held through a lock file, a scratch directory (a size-capped tmpfs in its own mount
namespace when namespaces work), a network namespace, the Landlock ruleset, the seccomp BPF,
memfds for stdin/stdout/stderr/result and the preloaded modules. Per job it forks a child
that sets its CPU/file-size limits, drops to the slot uid and executes the program
in-process (no-new-privs, Landlock and seccomp were applied to the worker itself and are
inherited; the program was compiled in the worker, cached per program text): a run costs
about one fork instead of an interpreter start.

After each run every process of the slot (found as the worker's children, since the
worker is a child subreaper, and killed with ``kill(-1)`` issued as the slot uid) is
killed and reaped and the scratch is emptied before the slot takes the next job.

Protocol on the inherited pipes: frames of ``<u32 length><marshal payload>``.
"""

from __future__ import annotations

import _ast
import _signal as signal  # the C module: ``signal`` builds three enums the runs never need
import builtins
import contextlib
import errno
import fcntl
import gc
import io
import marshal
import math
import os
import random
import re
import select
import struct
import sys
import time
import types
import warnings
from typing import Any, NoReturn

from conself.sandbox import _isolation as iso
from conself.sandbox.canonical import (
    OutputTooLarge,
    Unserialisable,
    canonical_stdout,
    canonical_value,
)

RESULT_FD = 1023
PROGRAM_FILE = "main.py"
SCRATCH_TOKEN = "<scratch>"
EXIT_SETUP_FAILED = 121
EXIT_INTERNAL = 122
_FRAME_MAGIC = b"CSR1"
RESULTS_PER_FRAME = 4  # the engine refills a worker at this many pending jobs
_CODES = ("ok", "compile_error", "runtime_error", "nonzero_exit", "time_limit",
          "memory_limit", "output_limit", "signal", "no_result")  # fmt: skip
_ADDRESS_BYTES_RE = re.compile(rb"(?<=at )0x[0-9a-fA-F]+|\b0x[0-9a-f]{12}\b")
_CODE_CACHE_SIZE = 128
_MAINTENANCE_EVERY = 4096
_ARGS_CACHE_SIZE = 512
_CACHE_MAX_ITEM = 1 << 15
_MAX_PROGRAM_CHARS = 1 << 22
_FORBIDDEN_READ = ("/root", "/home", "/work", "/srv", "/mnt", "/media", "/var", "/tmp")


class _MissingEntryPoint(Exception):
    """The program defines no callable under the job's entry point."""


class _BadInput(Exception):
    """The job's input is not the literal of a positional-argument list."""


# ====================================================================== child side


def _set_stdio() -> None:
    """Text streams on fds 0-2, made once in the worker (never used there, so their
    buffers are empty at every fork) and inherited by each child, which saves pages."""
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)),
        encoding="utf-8", errors="surrogateescape",
    )  # fmt: skip
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
        encoding="utf-8", errors="surrogateescape",
    )  # fmt: skip
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding="utf-8", errors="backslashreplace", line_buffering=True,
    )  # fmt: skip
    _STREAMS[:] = [sys.stdin, sys.stdout, sys.stderr]
    # Between runs the worker's own output (it should have none) must not land in the
    # next run's memfds: sys.* point at a sink until a child takes the real streams.
    sink = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    sys.stdout = sys.__stdout__ = sys.stderr = sys.__stderr__ = sink


_STREAMS: list[Any] = []  # the run's stdin/stdout/stderr (flushed even if a program rebinds)


_NUMBER = (int, float, complex)


def _literal(node: Any) -> Any:  # noqa: PLR0911 - one return per literal kind
    """``ast.literal_eval`` over raw ``_ast`` nodes (the ``ast`` module costs the worker
    over a megabyte, and the worker's size is paid again on every fork)."""
    kind = type(node)
    if kind is _ast.Constant:
        return node.value
    if kind is _ast.List:
        return [_literal(e) for e in node.elts]
    if kind is _ast.Tuple:
        return tuple(_literal(e) for e in node.elts)
    if kind is _ast.Set:
        return {_literal(e) for e in node.elts}
    if kind is _ast.Dict and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    if (kind is _ast.Call and type(node.func) is _ast.Name and node.func.id == "set"
            and not node.args and not node.keywords):  # fmt: skip
        return set()
    if kind is _ast.UnaryOp and type(node.op) in (_ast.USub, _ast.UAdd):
        value = _literal(node.operand)
        if type(value) in _NUMBER:
            return -value if type(node.op) is _ast.USub else +value
    if kind is _ast.BinOp and type(node.op) in (_ast.Add, _ast.Sub):
        left, right = _literal(node.left), _literal(node.right)
        if type(left) in (int, float) and type(right) is complex:
            return left + right if type(node.op) is _ast.Add else left - right
    raise ValueError(f"malformed literal: {type(node).__name__}")


def _parse_args(text: str) -> list[Any]:
    if not text.strip():
        return []
    try:
        value = _literal(compile(text, "<input>", "eval", _ast.PyCF_ONLY_AST).body)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise _BadInput(f"input is not a literal: {exc}") from None
    if not isinstance(value, (list, tuple)):
        raise _BadInput("input must be the literal of a positional-argument list")
    return list(value)


def _resolve(module: types.ModuleType, entry_point: str) -> Any:
    """``name``, ``Class.method`` or ``Class().method`` (LeetCode-style solutions)."""
    if "." not in entry_point and "(" not in entry_point:
        target = module.__dict__.get(entry_point)
        if not callable(target):
            raise _MissingEntryPoint(f"entry point {entry_point!r} not defined or not callable")
        return target
    target: Any = module
    for part in entry_point.split("."):
        call = part.endswith("()")
        name = part[:-2] if call else part
        if not hasattr(target, name):
            raise _MissingEntryPoint(f"entry point {entry_point!r} not defined")
        target = getattr(target, name)
        if call:
            target = target()
    if not callable(target):
        raise _MissingEntryPoint(f"entry point {entry_point!r} is not callable")
    return target


def _exception_line(exc: BaseException) -> str:
    """``Type: message`` like the interpreter prints it (module-qualified unless builtin)."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__", None):
        name = f"{kind.__module__}.{name}"
    try:
        text = str(exc.msg if isinstance(exc, SyntaxError) and exc.msg else exc)
    except BaseException:
        text = "<exception str() failed>"
    line = f"{name}: {text}\n" if text else f"{name}\n"
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, (list, tuple)):
        line += "".join(f"{note}\n" for note in notes if isinstance(note, str))
    return line


def _exception_only(exc: BaseException) -> str:
    """What ``traceback.format_exception_only`` gives, syntax errors with their caret."""
    if not isinstance(exc, SyntaxError) or exc.lineno is None:
        return _exception_line(exc)
    text = f'  File "{exc.filename or "<string>"}", line {exc.lineno}\n'
    if isinstance(exc.text, str) and exc.text.strip():
        source = exc.text.rstrip("\n")
        stripped = source.lstrip()
        text += f"    {stripped}\n"
        if isinstance(exc.offset, int) and exc.offset >= 1:
            start = max(0, exc.offset - 1 - (len(source) - len(stripped)))
            end = exc.end_offset if exc.end_lineno == exc.lineno else None
            width = max(1, end - exc.offset) if isinstance(end, int) else 1
            text += "    " + " " * start + "^" * width + "\n"
    return text + _exception_line(exc)


_CAUSE_SEPARATOR = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT_SEPARATOR = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _traceback_text(exc: BaseException, source: list[str], seen: set[int]) -> str:
    """One exception with its causes/contexts, frames from the program's first one on.

    Why not ``traceback``: it (with ``linecache`` and ``tokenize``) would enlarge the warm
    worker by a few hundred KB, paid on every fork; programs' frames are all we show.
    """
    seen.add(id(exc))
    text = ""
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        text = _traceback_text(cause, source, seen) + _CAUSE_SEPARATOR
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        text = _traceback_text(context, source, seen) + _CONTEXT_SEPARATOR
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != PROGRAM_FILE:
        tb = tb.tb_next
    if tb is not None:
        text += "Traceback (most recent call last):\n"
    last: tuple[str, int, str] | None = None
    repeats = 0
    while tb is not None:
        code = tb.tb_frame.f_code
        entry = (code.co_filename, tb.tb_lineno or 0, code.co_name)
        tb = tb.tb_next
        if entry == last:
            repeats += 1
            if repeats >= 3:  # like the interpreter: long recursions are summarised
                continue
        else:
            if repeats >= 3:
                text += f"  [Previous line repeated {repeats - 2} more times]\n"
            last, repeats = entry, 0
        text += f'  File "{entry[0]}", line {entry[1]}, in {entry[2]}\n'
        if entry[0] == PROGRAM_FILE and 0 < entry[1] <= len(source):
            line = source[entry[1] - 1].strip()
            if line:
                text += f"    {line}\n"
    if repeats >= 3:
        text += f"  [Previous line repeated {repeats - 2} more times]\n"
    return text + _exception_only(exc)


def _print_traceback(exc: BaseException, program: str) -> None:
    """Traceback of the program's own frames, with its source lines."""
    with contextlib.suppress(BaseException):
        sys.stderr.write(_traceback_text(exc, program.splitlines(), set()))


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(BaseException):
        print(code, file=sys.stderr)
    return 1


def _frame_bytes(code: str, error_type: str | None, output: str | None) -> bytes:
    err = (error_type or "").encode("utf-8", "backslashreplace")[:200]
    out = b"" if output is None else output.encode("utf-8", "surrogatepass")
    return (_FRAME_MAGIC + struct.pack("<BBI", _CODES.index(code), output is not None,
            len(err)) + err + struct.pack("<I", len(out)) + out)  # fmt: skip


def _write_frame(code: str, error_type: str | None, output: str | None) -> None:
    os.pwrite(RESULT_FD, _frame_bytes(code, error_type, output), 0)


def _run_program(kind: str, code_obj: types.CodeType, program: str, entry_point: str,
                 args: list[Any], output_limit: int) -> None:  # fmt: skip
    """Execute the (worker-compiled) program in this already isolated process.

    Every object the child writes to costs a copy-on-write page fault (several
    microseconds here), so everything that can be made ready in the worker is: the
    module object and its ``sys.modules`` entry, ``sys.argv``, the streams.
    """
    main_pid = os.getpid()
    sys.stdin, sys.stdout, sys.stderr = _STREAMS
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = _STREAMS
    result: tuple[str, str | None, str | None] = ("ok", None, None)
    module = _MODULES[kind == "call"]  # fresh: the worker never runs a program in it
    try:
        exec(code_obj, module.__dict__)
        if kind == "call":
            value = _resolve(module, entry_point)(*args)
            result = ("ok", None, canonical_value(value, output_limit))
        else:
            threading = sys.modules.get("threading")  # loaded only if the program used it
            if threading is not None:
                threading._shutdown()  # join like a real exit
    except SystemExit as exc:
        status = _exit_code(exc)
        if status:
            result = ("nonzero_exit", f"exit {status}", None)
        elif kind == "call":
            result = ("no_result", "SystemExit", None)
    except MemoryError:
        result = ("memory_limit", "MemoryError", None)
    except OutputTooLarge:
        result = ("output_limit", "OutputTooLarge", None)
    except Unserialisable as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        result = ("no_result", "Unserialisable", None)
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            result = ("output_limit", "EFBIG", None)
        else:
            name = type(exc).__name__
            if isinstance(exc, _MissingEntryPoint):
                name = "MissingEntryPoint"
            _print_traceback(exc, program)
            result = ("runtime_error", name, None)
    for stream in (_STREAMS[1], _STREAMS[2], sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError as exc:
            if exc.errno == errno.EFBIG and result[0] == "ok":
                result = ("output_limit", "EFBIG", None)
        except BaseException:
            pass
    if os.getpid() != main_pid:  # a raw fork() of the program reached the end: no verdict
        os._exit(0 if result[0] == "ok" else 1)
    _write_frame(*result)


def _make_modules() -> list[types.ModuleType]:
    """The run's module, made once in the worker: ``[__main__, solution]``.

    Registered in ``sys.modules`` (``pickle``/``multiprocessing`` look functions up there)
    and never executed in by the worker, so each child starts from a pristine copy.
    """
    modules = []
    for name in ("__main__", "solution"):
        module = types.ModuleType(name)
        module.__file__ = PROGRAM_FILE
        module.__builtins__ = builtins  # type: ignore[attr-defined]
        sys.modules[name] = module
        modules.append(module)
    return modules


_MODULES: list[types.ModuleType] = []


class _SeedNumpyRandom:
    """Meta-path hook: seed numpy's global generator when a program imports it.

    numpy seeds itself from OS entropy at import, which would make ``np.random`` results
    differ between two runs of the same batch.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "numpy.random":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module = _seeding(spec.loader.exec_module, self.seed)
                return spec
        return None


def _seeding(exec_module: Any, seed: int) -> Any:
    def run(module: types.ModuleType) -> None:
        exec_module(module)
        with contextlib.suppress(Exception):
            module.seed(seed)

    return run


def _warm_up() -> None:
    """Exercise the child's code paths once in the worker (with trusted code only).

    Why: CPython's type-attribute cache and lazily created objects would otherwise be
    filled in every child, and each write to a page shared with the worker is a
    copy-on-write fault; filled here, children mostly read them.
    """
    module = types.ModuleType("solution")
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    exec(compile("def f(x):\n    return x\n", PROGRAM_FILE, "exec"), module.__dict__)
    for value in (1, "a", 1.5, [1, (2,)], {1: {2}}, None, b"x"):
        canonical_value(_resolve(module, "f")(value), 1 << 20)
    _parse_args("[1, 'a', [2.5]]")
    for stream in _STREAMS[1:]:
        stream.flush()
    _frame_bytes("ok", None, "1")
    with contextlib.suppress(Exception):
        raise _MissingEntryPoint("warm")


def _parse_frame(data: bytes) -> tuple[str, str | None, str | None] | None:
    """The child's verdict, or None when absent/garbled (the program may write anything)."""
    try:
        if not data.startswith(_FRAME_MAGIC):
            return None
        code, has_out, n_err = struct.unpack_from("<BBI", data, 4)
        pos = 10
        err = data[pos : pos + n_err].decode("utf-8", "backslashreplace")
        pos += n_err
        (n_out,) = struct.unpack_from("<I", data, pos)
        pos += 4
        out = data[pos : pos + n_out]
        if len(out) != n_out:
            return None
        return (_CODES[code], err or None,
                out.decode("utf-8", "backslashreplace") if has_out else None)  # fmt: skip
    except (struct.error, IndexError):
        return None


# ====================================================================== worker side


class Worker:
    """State of one warm slot."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.layers: dict[str, bool] = {}
        self.notes: list[str] = []
        self.uid: int | None = None
        self.lock_fd: int | None = None
        self.scratch: str = ""
        self.ruleset_fd: int | None = None
        self.seccomp: iso.SeccompProgram | None = None
        self.keep_read_cap = False
        self.cap_keeper: iso.CapabilityKeeper | None = None
        self.shm_dir: str | None = None
        self.stdin_fd = self.stdout_fd = self.stderr_fd = self.result_fd = -1
        self.stdin_size = 0
        self.scratch_token = b""
        self.child: int | None = None
        self._children_fd = -1
        self._empty_size = -1
        self._runs = 0
        self._worker_main: types.ModuleType | None = None
        self._code_cache: dict[str, types.CodeType | tuple[str, str]] = {}
        self._args_cache: dict[str, list[Any]] = {}
        self._args_cache_chars = 0
        self.pid = os.getpid()
        self._poller = select.poll()
        self._wall_ms = int(cfg["wall_limit_s"] * 1000) + 1
        self._run_limits = (
            max(1, math.ceil(cfg["time_limit_s"])), cfg["memory_limit_mb"] << 20,
            cfg["output_limit"] + 4096, cfg["max_open_files"],
        )  # fmt: skip

    # ---------------------------------------------------------------- setup

    def setup(self) -> dict[str, Any]:
        cfg = self.cfg
        self.pid = os.getpid()
        signal.signal(signal.SIGTERM, self._on_term)
        with contextlib.suppress(OSError):
            iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != cfg["parent_pid"]:
            raise SystemExit("parent already gone")
        try:
            iso.prctl(iso.PR_SET_CHILD_SUBREAPER, 1)
            self.layers["cleanup"] = True
        except OSError as exc:
            self.layers["cleanup"] = False
            self.notes.append(f"subreaper: {exc}")
        for name in cfg["preload"]:
            with contextlib.suppress(Exception):
                __import__(name)
        self.layers["rlimits"] = True
        root = os.geteuid() == 0
        if root:
            self._acquire_uid()
        self.layers["uid"] = self.uid is not None
        self._make_scratch(root)
        self._namespaces(root)
        self._landlock()
        self._seccomp()
        # The memfds sit at the fd numbers a child needs, so a fork inherits them as-is.
        for name, target in (("stdin", 0), ("stdout", 1), ("stderr", 2), ("result", RESULT_FD)):
            fd = os.memfd_create(name)
            os.dup2(fd, target)
            os.close(fd)
        self.stdin_fd, self.stdout_fd, self.stderr_fd, self.result_fd = 0, 1, 2, RESULT_FD
        self._worker_wide_limits()
        self.scratch_token = self.scratch.encode()
        # Above RESULT_FD (closed in every child), opened before RLIMIT_NOFILE applies.
        children = os.open(f"/proc/self/task/{os.getpid()}/children", os.O_RDONLY | os.O_CLOEXEC)
        self._children_fd = fcntl.fcntl(children, fcntl.F_DUPFD_CLOEXEC, RESULT_FD + 1)
        os.close(children)
        self._probe_empty_size()
        home = self.scratch
        os.environ.update({"HOME": home, "TMPDIR": home, "TMP": home, "TEMP": home,
                           "PWD": home})  # fmt: skip
        for name in ("PYTHONPATH", "LD_BIND_NOW"):  # the worker's, not the programs'
            os.environ.pop(name, None)
        os.chdir(self.scratch)
        _set_stdio()
        self._lockdown()
        sys.meta_path.insert(0, _SeedNumpyRandom(cfg["seed"]))
        _warm_up()
        self._worker_main = sys.modules.get("__main__")  # keep this module alive
        _MODULES[:] = _make_modules()
        sys.argv = [PROGRAM_FILE]
        # Address space and open files bind the worker too (it needs little of either),
        # so children inherit them; CPU and file size are set per run.
        iso.set_shared_run_limits(self._run_limits[1], self._run_limits[3])
        random.seed(cfg["seed"])  # never used by the worker: every child inherits this state
        gc.collect()
        gc.freeze()
        iso.release_free_heap()
        probe = self.run("print(1)", "stdio", "", "")
        if probe[0] != "ok" or probe[2] != "1":
            raise RuntimeError(f"self-test failed: {probe[0]} {probe[1]} {probe[4]!r}")
        return {"layers": self.layers, "notes": self.notes, "uid": self.uid,
                "scratch": self.scratch, "pid": os.getpid()}  # fmt: skip

    def _acquire_uid(self) -> None:
        """Lock a uid no other sandbox (in any process) uses, then kill its leftovers."""
        lock_dir = self.cfg["lock_dir"]
        base, count = self.cfg["uid_base"], self.cfg["uid_count"]
        taken = _passwd_ids()
        start = (self.cfg["slot"] * 7919 + os.getpid()) % count
        for i in range(count):
            uid = base + (start + i) % count
            if uid in taken:
                continue  # a real account: never borrow it
            fd = os.open(os.path.join(lock_dir, f"{uid}.lock"),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # fmt: skip
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            # Above RESULT_FD: the fds a child must not keep are closed with one call.
            self.uid, self.lock_fd = uid, fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, RESULT_FD + 1)
            os.close(fd)
            fd = self.lock_fd
            if not self._kill_uid():
                self.notes.append(f"uid {uid} unusable")
                self.uid = None
                os.close(fd)
                self.lock_fd = None
                continue
            return
        self.notes.append("no free sandbox uid")

    def _make_scratch(self, root: bool) -> None:
        self.scratch = os.path.join(self.cfg["base_dir"], f"slot-{self.cfg['slot']}")
        os.makedirs(self.scratch, mode=0o700, exist_ok=True)
        if self.uid is not None:
            os.chown(self.scratch, self.uid, self.uid)
        os.chmod(self.scratch, 0o700)

    def _namespaces(self, root: bool) -> None:
        """Private network/IPC/UTS and mount namespaces for the whole slot (set up once)."""
        for name in ("netns", "mntns"):
            self.layers[name] = False
        if not (root and self.cfg["use_namespaces"]):
            return
        try:
            iso.unshare(iso.CLONE_NEWNET | iso.CLONE_NEWIPC | iso.CLONE_NEWUTS)
            self.layers["netns"] = True
        except OSError as exc:
            self.notes.append(f"netns: {exc}")
        try:
            iso.unshare(iso.CLONE_NEWNS)
            iso.mount("none", "/", None, iso.MS_REC | iso.MS_PRIVATE, None)
            uid = self.uid if self.uid is not None else 0
            size = self.cfg["scratch_limit_mb"]
            iso.mount("conself-scratch", self.scratch, "tmpfs",
                      iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC,
                      f"size={size}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}")  # fmt: skip
            self.layers["mntns"] = True
        except OSError as exc:
            self.notes.append(f"mntns: {exc}")
            return
        try:  # a private, emptied-after-each-run /dev/shm: POSIX semaphores (multiprocessing)
            iso.mount("conself-shm", "/dev/shm", "tmpfs",
                      iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC,
                      f"size={self.cfg['scratch_limit_mb']}m,nr_inodes=1024,mode=1777")  # fmt: skip
            self.shm_dir = "/dev/shm"
        except OSError as exc:
            self.notes.append(f"private /dev/shm: {exc}")

    def _read_paths(self) -> list[str]:
        """Where the program may read: the interpreter, its libraries, system libraries."""
        paths = {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/proc", "/sys/devices/system/cpu",
                 "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group",
                 "/etc/nsswitch.conf", "/etc/hosts", "/etc/ssl", "/etc/mime.types",
                 "/etc/os-release", "/etc/timezone", "/etc/locale.alias", "/dev/zero",
                 "/dev/urandom", "/dev/random", "/dev/full"}  # fmt: skip
        paths.update({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})
        paths.update(p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p))
        paths.update(self.cfg["extra_read_paths"])
        package_root = self.cfg["package_root"]
        keep = set()
        for p in paths:
            real = os.path.realpath(p)
            if real == package_root or real in _FORBIDDEN_READ:
                continue
            keep.add(real)
        return sorted(keep)

    def _landlock(self) -> None:
        abi = iso.landlock_abi()
        self.layers["landlock"] = False
        self.layers["landlock_net"] = False
        self.layers["landlock_scope"] = False
        if abi <= 0:
            self.notes.append("landlock: unavailable")
            return
        try:
            rw_dirs = [self.scratch] + ([self.shm_dir] if self.shm_dir else [])
            fd, rule_notes = iso.build_landlock_ruleset(abi, self._read_paths(), rw_dirs,
                                                        ["/dev/null"])  # fmt: skip
        except OSError as exc:
            self.notes.append(f"landlock: {exc}")
            return
        self.ruleset_fd = fd
        self.notes.extend(f"landlock: {n}" for n in rule_notes if not n.startswith("skip"))
        self.layers["landlock"] = True
        self.layers["landlock_net"] = abi >= 4
        self.layers["landlock_scope"] = abi >= 6
        self.notes.append(f"landlock ABI {abi}")
        # Reads stay confined by Landlock, so the slot uid may keep the right to traverse
        # directories it could not enter otherwise (e.g. an interpreter under /root).
        self.keep_read_cap = self.uid is not None

    def _seccomp(self) -> None:
        try:
            bpf = self.cfg.get("seccomp_bpf")
            if bpf:
                self.seccomp = iso.SeccompProgram(bpf)
            else:
                self.seccomp, notes = iso.build_seccomp()
                self.notes.extend(f"seccomp: {n}" for n in notes)
            self.layers["seccomp"] = True
        except Exception as exc:
            self.notes.append(f"seccomp: {exc}")
            self.layers["seccomp"] = False

    def _lockdown(self) -> None:
        """Apply no-new-privs, Landlock and seccomp to the worker itself, once.

        Children inherit all three through fork, so a run pays nothing for them; the
        worker needs none of what they deny (it only forks, kills, reaps and empties the
        scratch, which Landlock allows).
        """
        iso.prctl(iso.PR_SET_NO_NEW_PRIVS, 1)
        if self.ruleset_fd is not None:
            try:
                iso.landlock_restrict_self(self.ruleset_fd)
            except OSError as exc:
                self.notes.append(f"landlock: {exc}")
                for name in ("landlock", "landlock_net", "landlock_scope"):
                    self.layers[name] = False
                self.keep_read_cap = False
                self.cap_keeper = None
                iso.prctl(iso.PR_SET_KEEPCAPS, 0)  # without Landlock no capability is kept
            os.close(self.ruleset_fd)
            self.ruleset_fd = None
        if self.seccomp is not None:
            try:
                self.seccomp.apply()
            except OSError as exc:
                self.notes.append(f"seccomp: {exc}")
                self.layers["seccomp"] = False

    # ---------------------------------------------------------------- run

    def _worker_wide_limits(self) -> None:
        """Limits and credentials that can be set once in the worker and inherited.

        RLIMIT_NPROC does not bind root (the worker) but binds the slot uid after the
        child's setuid; the gid and empty group list are harmless for a root worker.
        """
        cfg = self.cfg
        iso.set_static_rlimits(
            stack=cfg["stack_limit_mb"] << 20,
            processes=cfg["max_processes"] if self.uid is not None else None,
        )
        if self.uid is not None:
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            if self.keep_read_cap:
                iso.prctl(iso.PR_SET_KEEPCAPS, 1)
                self.cap_keeper = iso.CapabilityKeeper(iso.CAP_DAC_READ_SEARCH)

    def _isolate(self) -> None:
        """In the forked child: close the worker's fds, per-run limits, then the slot uid."""
        os.closerange(3, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 20)
        iso.set_child_limits(self._run_limits[0], self._run_limits[2])
        if self.uid is not None:
            os.setresuid(self.uid, self.uid, self.uid)
            if self.cap_keeper is not None:
                self.cap_keeper.apply()
        # No parent-death signal here (a prctl per run): if the worker dies, the engine
        # kills everything of the slot's uid, and whoever locks the uid next does too.

    def _child(self, kind: str, code_obj: types.CodeType, program: str, entry_point: str,
               args: list[Any]) -> NoReturn:  # fmt: skip
        status = EXIT_SETUP_FAILED
        try:
            self._isolate()
            status = EXIT_INTERNAL
            _run_program(kind, code_obj, program, entry_point, args, self.cfg["output_limit"])
            status = 0
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(2, f"\nsandbox: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(status)

    def _compile(self, program: str) -> types.CodeType | tuple[str, str]:
        """Compile in the worker, cached: a program usually runs on many inputs."""
        cached = self._code_cache.get(program)
        if cached is not None:
            return cached
        if len(program) > _MAX_PROGRAM_CHARS:
            return ("ProgramTooLarge", f"program longer than {_MAX_PROGRAM_CHARS} characters\n")
        try:
            # Warnings off: a warning printed only on the first (uncached) compile would
            # make the records of two identical batches differ.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result: types.CodeType | tuple[str, str] = compile(
                    program, PROGRAM_FILE, "exec", dont_inherit=True
                )
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError,
                TypeError) as exc:  # fmt: skip
            result = (type(exc).__name__, _exception_only(exc))
        if len(program) <= _CACHE_MAX_ITEM:
            if len(self._code_cache) >= _CODE_CACHE_SIZE:  # the worker's size is paid per fork
                self._code_cache.clear()
            self._code_cache[program] = result
        return result

    def _args(self, text_input: str) -> list[Any]:
        cached = self._args_cache.get(text_input)
        if cached is not None:
            return cached
        args = _parse_args(text_input)
        if len(text_input) <= _CACHE_MAX_ITEM:
            self._args_cache_chars += len(text_input)
            if len(self._args_cache) >= _ARGS_CACHE_SIZE or self._args_cache_chars > 1 << 22:
                self._args_cache.clear()
                self._args_cache_chars = len(text_input)
            self._args_cache[text_input] = args
        return args

    def run(self, program: str, kind: str, entry_point: str, text_input: str) -> tuple:
        """Run one job; returns the record fields (outcome, error, output, stdout, ...)."""
        compiled = self._compile(program)
        if isinstance(compiled, tuple):
            err = self._normalise(compiled[1].encode()).decode("utf-8", "backslashreplace")
            return ("compile_error", compiled[0], None, b"", err, 0.0, 0.0, 0)
        args: list[Any] = []
        if kind == "call":
            try:
                args = self._args(text_input)
            except _BadInput as exc:
                return ("no_result", "BadInput", None, b"", f"sandbox: {exc}", 0.0, 0.0, 0)
        data = text_input.encode("utf-8", "surrogateescape") if kind == "stdio" else b""
        if data or self.stdin_size:
            os.ftruncate(self.stdin_fd, 0)
            if data:
                os.pwrite(self.stdin_fd, data, 0)
            self.stdin_size = len(data)
        os.lseek(self.stdin_fd, 0, os.SEEK_SET)
        # Objects the worker made since the last fork join the frozen generation, so a
        # child's garbage collections never walk (and copy-on-write) the worker's pages;
        # now and then the worker collects its own garbage and trims its heap.
        self._runs += 1
        if not self._runs % _MAINTENANCE_EVERY:
            gc.unfreeze()
            gc.collect()
            iso.release_free_heap()
        gc.freeze()
        start = time.monotonic()
        pid = iso.raw_fork()
        if pid == 0:
            self._child(kind, compiled, program, entry_point, args)
        self.child = pid
        timed_out = False
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        if pidfd >= 0:
            poller = self._poller
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(self._wall_ms):
                timed_out = True
                os.kill(pid, signal.SIGKILL)
            poller.unregister(pidfd)
            os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        self.child = None
        wall = time.monotonic() - start
        self.sweep()
        cpu = usage.ru_utime + usage.ru_stime
        return self._collect(kind, status, timed_out, wall, cpu, usage.ru_maxrss)

    def _read_fd(self, fd: int, limit: int, tail: bool = False) -> tuple[bytes, int]:
        size = os.fstat(fd).st_size
        if not size:
            return b"", 0
        offset = max(0, size - limit) if tail else 0
        data = os.pread(fd, min(size, limit), offset)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return data, size

    def _normalise(self, data: bytes) -> bytes:
        if self.scratch_token in data:
            data = data.replace(self.scratch_token, SCRATCH_TOKEN.encode())
        if b"0x" in data:
            data = _ADDRESS_BYTES_RE.sub(b"0x?", data)
        return data

    def _collect(self, kind: str, status: int, timed_out: bool, wall: float, cpu: float,
                 maxrss: int) -> tuple:  # fmt: skip
        cfg = self.cfg
        limit = cfg["output_limit"]
        stdout, out_size = self._read_fd(self.stdout_fd, limit)
        stderr, err_size = self._read_fd(self.stderr_fd, cfg["stderr_tail_bytes"], tail=True)
        result, _ = self._read_fd(self.result_fd, limit + 4096)
        self._clean_scratch()
        self._clean_shm()
        stdout = self._normalise(stdout)
        stderr_tail = self._normalise(stderr).decode("utf-8", "backslashreplace")
        over = out_size > limit or err_size > limit
        frame = _parse_frame(result)
        error: str | None = None
        output: str | None = None
        if timed_out:
            outcome = "time_limit"
            error = "WallTime"
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = iso.SIGNAL_NAMES.get(sig, f"SIG{sig}")
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cfg["time_limit_s"]):
                outcome, error = "time_limit", name
            elif sig == signal.SIGXFSZ or over:
                outcome, error = "output_limit", name
            else:
                outcome, error = "signal", name
        elif frame is not None:
            outcome, error, output = frame
        else:
            code = os.WEXITSTATUS(status)
            if code == EXIT_SETUP_FAILED:
                outcome, error = "no_result", "SandboxSetupError"
            elif code:
                outcome, error = "nonzero_exit", f"exit {code}"
            elif kind == "call":
                outcome, error = "no_result", "NoReturnValue"
            else:
                outcome = "ok"
        if outcome == "ok" and over:
            outcome, error = "output_limit", "OutputTooLarge"
        if outcome == "ok" and cpu > cfg["time_limit_s"]:
            outcome, error = "time_limit", "CpuTime"
        if outcome != "ok":
            output = None
        elif kind == "call":
            output = (output or "").replace(self.scratch, SCRATCH_TOKEN)
        else:
            output = canonical_stdout(stdout.decode("utf-8", "backslashreplace"))
        return (outcome, error, output, stdout, stderr_tail, wall, cpu, maxrss)

    # ---------------------------------------------------------------- cleanup

    def _children(self) -> list[int]:
        """The worker's children (zombies included), read through a descriptor opened at
        start-up: one pread per run instead of open/read/close."""
        data = os.pread(self._children_fd, 1 << 16, 0)
        return [int(p) for p in data.split()] if data else []

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _kill_uid(self) -> bool:
        """kill(-1, SIGKILL) issued as the slot uid: reaches exactly that uid's processes."""
        if self.uid is None:
            return True
        helper = os.fork()
        if helper == 0:
            code = 1
            try:
                os.setresgid(self.uid, self.uid, self.uid)
                os.setresuid(self.uid, self.uid, self.uid)
                code = 0
                for _ in range(10):
                    try:
                        os.kill(-1, signal.SIGKILL)
                    except ProcessLookupError:
                        break
            finally:
                os._exit(code)
        _, status = os.waitpid(helper, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    def _kill_tree(self) -> None:
        """Without a private uid: SIGKILL every descendant found through /proc."""
        todo = self._children()
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            try:
                with open(f"/proc/{pid}/task/{pid}/children", "rb") as handle:
                    todo.extend(int(p) for p in handle.read().split())
            except OSError:
                pass

    def _uid_alive(self) -> bool:
        """Full /proc scan for processes of the slot uid (used only on the slow path)."""
        if self.uid is None:
            return False
        needle = f"Uid:\t{self.uid}\t".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status", "rb") as handle:
                    text = handle.read()
            except OSError:
                continue
            if needle in text and b"State:\tZ" not in text:
                return True
        return False

    def sweep(self) -> bool:
        """Kill and reap everything the run left; True if something had survived it."""
        if not self._children():  # zombies are listed too, so empty means nothing left
            return False
        for attempt in range(200):
            if self.uid is not None:
                self._kill_uid()
            else:
                self._kill_tree()
            time.sleep(0.0005 * attempt)
            self._reap()
            if not self._children() and not self._uid_alive():
                return True
        raise RuntimeError("could not kill the processes left by a run")

    def _clean_scratch(self) -> None:
        """Empty the scratch and restore its owner and mode (a program may chmod it)."""
        scratch = self.scratch
        st = os.lstat(scratch)
        want_uid = self.uid if self.uid is not None else os.geteuid()
        if st.st_uid != want_uid or (st.st_mode & 0o7777) != 0o700:
            os.chown(scratch, want_uid, want_uid)
            os.chmod(scratch, 0o700)
        if st.st_size != self._empty_size or st.st_nlink != 2:
            _empty_dir(scratch)

    def _clean_shm(self) -> None:
        shm = self.shm_dir
        if shm is None:
            return
        st = os.lstat(shm)
        if st.st_size != self._empty_size or st.st_nlink != 2:
            if _empty_dir(shm):
                os.chmod(shm, 0o1777)

    def _probe_empty_size(self) -> None:
        """The size tmpfs reports for an empty directory, if it tells emptiness reliably.

        tmpfs sizes a directory by its entry count, so one ``lstat`` shows that a run left
        the scratch empty and the per-run directory scan can be skipped. Checked here by
        creating and removing an entry; on other file systems the scan always runs.
        """
        self._empty_size = -1
        if not self.layers.get("mntns"):
            return
        before = os.lstat(self.scratch).st_size
        probe = os.path.join(self.scratch, ".probe")
        os.mkdir(probe)
        grown = os.lstat(self.scratch).st_size
        os.rmdir(probe)
        after = os.lstat(self.scratch).st_size
        if before == after != grown:
            self._empty_size = before

    def shutdown(self) -> None:
        if self.child is not None:
            with contextlib.suppress(OSError):
                os.kill(self.child, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._reap()
            if self.uid is not None:
                self._kill_uid()
            else:
                self._kill_tree()
            self._reap()
            self._clean_scratch()

    def _on_term(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:  # inherited by a run: act like the default action
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.shutdown()
        os._exit(0)


def _passwd_ids() -> set[int]:
    """Uids and gids named in /etc/passwd and /etc/group (read directly: the ``pwd``
    module would load NSS libraries into the worker)."""
    ids: set[int] = set()
    for path in ("/etc/passwd", "/etc/group"):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    fields = line.split(":")
                    if len(fields) > 2 and fields[2].isdigit():
                        ids.add(int(fields[2]))
        except OSError:
            pass
    return ids


def _empty_dir(path: str) -> bool:
    """Remove everything beneath ``path`` without following symlinks (no shutil: the
    worker keeps its imports small because its size is paid on every fork).
    Returns whether there was anything to remove."""
    with os.scandir(path) as it:
        entries = list(it)
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.path, 0o700)
                _empty_dir(entry.path)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
    return bool(entries)


# ====================================================================== protocol


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(fd: int) -> Any:
    header = _read_exact(fd, 4)
    if header is None:
        return None
    (size,) = struct.unpack("<I", header)
    body = _read_exact(fd, size)
    if body is None:
        return None
    return marshal.loads(body)


def _send(fd: int, obj: Any) -> None:
    body = marshal.dumps(obj)
    data = memoryview(struct.pack("<I", len(body)) + body)
    while data:
        n = os.write(fd, data)
        data = data[n:]


def main() -> None:
    # Move the protocol pipes out of the way so fds 0-2 can be handed to children.
    inp = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, RESULT_FD + 1)
    out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, RESULT_FD + 1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", cwd)]
    cfg = _recv(inp)
    if cfg is None:
        return
    worker = Worker(cfg)
    try:
        info = worker.setup()
    except BaseException as exc:
        worker.shutdown()
        _send(out, ("error", f"{type(exc).__name__}: {exc}", worker.notes))
        return
    _send(out, ("ready", info))
    try:
        while True:
            batch = _recv(inp)  # the engine sends jobs in batches
            if batch is None:
                break
            # Results go back a few per frame: every frame wakes the engine, which costs
            # more than the write. Never held past the batch, so the engine (which refills
            # a worker once half its queue is answered) never leaves it waiting for work.
            results = []
            for seq, program, kind, entry_point, text_input in batch:
                results.append((seq, *worker.run(program, kind, entry_point, text_input)))
                if len(results) >= RESULTS_PER_FRAME:
                    _send(out, results)
                    results = []
            if results:
                _send(out, results)
    except BaseException as exc:  # tell the engine why before it sees the pipe close
        with contextlib.suppress(BaseException):
            import traceback  # only on the way out: the warm worker stays small

            _send(out, ("fatal", "".join(traceback.format_exception(exc))))
        raise
    finally:
        worker.shutdown()


if __name__ == "__main__":
    main()
