"""The parent side: spawns warm workers, feeds them jobs, streams records back in order."""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conself.sandbox._worker import RESULTS_PER_FRAME
from conself.sandbox.types import KINDS, Job, Outcome, Record, SandboxConfig

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<I")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# Jobs travel to a worker in batches and results come back a few per frame (one write,
# one wake-up for several runs): a worker is topped up to _MAX_QUEUED_PER_WORKER jobs once
# it is down to _REFILL_AT, the size of its result frames, so it always has work queued.
_REFILL_AT = RESULTS_PER_FRAME
_MAX_QUEUED_PER_WORKER = 2 * _REFILL_AT
_START_TIMEOUT_S = 60.0
_WINDOW_PER_WORKER = 64
_HELD_BYTES = 64 << 20


def _held_bytes(done: dict[int, Record]) -> int:
    """Bytes of output held by records waiting for an earlier job to finish."""
    return sum(len(r.stdout) + len(r.output or "") for r in done.values())


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start (strict mode with a missing layer, or no worker came up)."""


# Run (rarely) as root in a fresh interpreter after a worker died: take the uid's lock
# (if someone else holds it, they swept the uid when they took it), become the uid and
# kill(-1), which reaches exactly the processes the dead worker's runs left behind.
_KILL_UID_CODE = """
import fcntl, os, signal, sys
lock_dir, uid = sys.argv[1], int(sys.argv[2])
fd = os.open(os.path.join(lock_dir, f"{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(0)
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
for _ in range(20):
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        break
"""


def _worker_env(config: SandboxConfig) -> dict[str, str]:
    """Fixed environment: hash seed, time zone, locale, single-threaded numeric libraries."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONHASHSEED": str(config.hash_seed),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": _PACKAGE_ROOT,
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "LANGUAGE": "C",
        # Bind every symbol of the worker's libraries at load: with lazy binding a child's
        # first call of a function the worker never called writes the GOT and walks the
        # linker's tables, a dozen copy-on-write faults per run. The worker removes it
        # from the environment programs see.
        "LD_BIND_NOW": "1",
    }
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS",
                 "BLIS_NUM_THREADS"):  # fmt: skip
        env[name] = "1"
    return env


@dataclass
class _WorkerHandle:
    slot: int
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)
    outbuf: bytearray = field(default_factory=bytearray)
    inbuf: bytearray = field(default_factory=bytearray)
    pending: deque[int] = field(default_factory=deque)

    @property
    def rfd(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    @property
    def wfd(self) -> int:
        assert self.proc.stdin is not None
        return self.proc.stdin.fileno()

    def frames(self) -> list[Any]:
        """Complete frames received so far (removed from the buffer)."""
        buf = self.inbuf
        pos = 0
        out = []
        while len(buf) - pos >= 4:
            (size,) = _HEADER.unpack_from(buf, pos)
            if len(buf) - pos - 4 < size:
                break
            out.append(marshal.loads(bytes(buf[pos + 4 : pos + 4 + size])))
            pos += 4 + size
        del buf[:pos]
        return out


def _frame(obj: Any) -> bytes:
    body = marshal.dumps(obj)
    return _HEADER.pack(len(body)) + body


def _job_tuple(seq: int, job: Job) -> tuple[int, str, str, str, str]:
    """A job as the worker protocol carries it (checked here, in the caller's thread)."""
    if not isinstance(job, Job):
        raise TypeError(f"expected Job, got {type(job).__name__}")
    if job.kind not in KINDS:
        raise ValueError(f"unknown job kind {job.kind!r} (expected one of {KINDS})")
    return (seq, str(job.program), job.kind, str(job.entry_point), str(job.input))


_record_new = object.__new__


def _record(fields: tuple[Any, ...]) -> Record:
    """A Record from a worker's result tuple.

    Why not ``Record(...)``: the frozen dataclass ``__init__`` sets eight fields through
    ``object.__setattr__``, a noticeable share of the engine's per-run time.
    """
    record = _record_new(Record)
    record.__dict__.update(zip(_RECORD_FIELDS, fields, strict=True))
    return record


_RECORD_FIELDS = ("outcome", "error_type", "output", "stdout", "stderr_tail", "wall_time_s",
                  "cpu_time_s", "peak_memory_kb")  # fmt: skip


class Sandbox:
    """Runs jobs in isolated processes; use as a context manager.

    ``run`` streams records in job order while keeping at most a bounded window of jobs
    in flight, so batches of any size run in constant memory.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._workers: dict[int, _WorkerHandle] = {}
        self._base_dir: str | None = None
        self._lock_dir = os.path.join(tempfile.gettempdir(), "conself-sandbox-uids")
        self._selector: selectors.BaseSelector | None = None
        self._running = False
        self._seccomp_bpf = b""
        self.layers: dict[str, bool] = {}
        self.notes: list[str] = []

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._selector is not None:
            return
        cfg = self.config
        if os.geteuid() == 0:
            os.makedirs(self._lock_dir, mode=0o700, exist_ok=True)
            os.chmod(self._lock_dir, 0o700)
        self._seccomp_bpf = b""
        try:  # compiled once here so workers need not load libseccomp
            from conself.sandbox._isolation import build_seccomp_bpf

            self._seccomp_bpf, _ = build_seccomp_bpf()
        except Exception as exc:
            logger.warning("sandbox: cannot compile the seccomp filter: %s", exc)
        self._base_dir = tempfile.mkdtemp(prefix="conself-sandbox-")
        os.chmod(self._base_dir, 0o711)
        self._selector = selectors.DefaultSelector()
        try:
            procs = [self._spawn(slot) for slot in range(cfg.n_workers)]
            for handle in procs:
                self._handshake(handle)
            self._summarise()
        except BaseException:
            self.close()
            raise

    def _spawn(self, slot: int) -> _WorkerHandle:
        cfg = self.config
        proc = subprocess.Popen(
            [cfg.python or sys.executable, "-s", "-m", "conself.sandbox._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env(cfg),
            cwd=self._base_dir, close_fds=True, start_new_session=True,
        )  # fmt: skip
        handle = _WorkerHandle(slot, proc)
        settings = {
            "slot": slot, "parent_pid": os.getpid(), "base_dir": self._base_dir,
            "lock_dir": self._lock_dir, "uid_base": cfg.uid_base, "uid_count": cfg.uid_count,
            "time_limit_s": float(cfg.time_limit_s), "wall_limit_s": float(cfg.wall_limit),
            "memory_limit_mb": int(cfg.memory_limit_mb),
            "output_limit": int(cfg.output_limit_bytes),
            "max_processes": int(cfg.max_processes), "max_open_files": int(cfg.max_open_files),
            "stack_limit_mb": int(cfg.stack_limit_mb),
            "scratch_limit_mb": int(cfg.scratch_limit_mb),
            "stderr_tail_bytes": int(cfg.stderr_tail_bytes), "seed": int(cfg.seed),
            "use_namespaces": bool(cfg.use_namespaces), "preload": list(cfg.preload_modules),
            "extra_read_paths": list(cfg.extra_read_paths), "package_root": _PACKAGE_ROOT,
            "seccomp_bpf": self._seccomp_bpf,
        }  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(_frame(settings))
        proc.stdin.flush()
        return handle

    def _handshake(self, handle: _WorkerHandle) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        os.set_blocking(handle.rfd, False)
        while True:
            for msg in handle.frames():
                if msg[0] == "ready":
                    handle.info = msg[1]
                    os.set_blocking(handle.wfd, False)
                    self._workers[handle.slot] = handle
                    assert self._selector is not None
                    self._selector.register(handle.rfd, selectors.EVENT_READ, handle)
                    return
                raise SandboxUnavailable(f"sandbox worker failed to start: {msg[1]} {msg[2]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxUnavailable("sandbox worker did not start in time")
            sel = selectors.DefaultSelector()
            sel.register(handle.rfd, selectors.EVENT_READ)
            sel.select(remaining)
            sel.close()
            try:
                chunk = os.read(handle.rfd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise SandboxUnavailable("sandbox worker exited during start-up")
            handle.inbuf += chunk

    def _summarise(self) -> None:
        """Layers active on every worker; strict mode refuses a missing required one."""
        infos = [h.info for h in self._workers.values()]
        names = sorted({name for info in infos for name in info["layers"]})
        self.layers = {n: all(info["layers"].get(n, False) for info in infos) for n in names}
        self.notes = sorted({note for info in infos for note in info["notes"]})
        active = [n for n, on in self.layers.items() if on]
        missing = [n for n, on in self.layers.items() if not on]
        logger.info("sandbox: %d workers, active layers: %s", len(infos), ", ".join(active))
        if missing:
            logger.warning("sandbox: layers unavailable on this host: %s (%s)",
                           ", ".join(missing), "; ".join(self.notes))  # fmt: skip
        required_missing = [n for n in self.config.required_layers if not self.layers.get(n)]
        if required_missing:
            message = f"required sandbox layers unavailable: {', '.join(required_missing)}"
            if self.config.strict:
                raise SandboxUnavailable(message)
            logger.warning("sandbox: %s (strict=False, continuing degraded)", message)

    def close(self) -> None:
        """Stop the workers (each kills its slot's processes) and remove the scratch tree."""
        if self._selector is not None and any(h.pending for h in self._workers.values()):
            with contextlib.suppress(Exception):
                self._drain()  # an abandoned run(): let the workers finish their jobs
        workers = list(self._workers.values())
        self._workers.clear()
        for handle in workers:
            with contextlib.suppress(Exception):
                if self._selector is not None:
                    self._selector.unregister(handle.rfd)
        for handle in workers:
            with contextlib.suppress(OSError):
                assert handle.proc.stdin is not None
                handle.proc.stdin.close()
        for handle in workers:
            self._stop(handle)
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._base_dir is not None:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None

    def _stop(self, handle: _WorkerHandle, dead: bool = False) -> None:
        """Wait for a worker to exit (it sweeps its uid on the way); force it if needed."""
        proc = handle.proc
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dead = True
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            assert proc.stdout is not None
            proc.stdout.close()
        uid = handle.info.get("uid")
        if dead and uid is not None and os.geteuid() == 0:
            self._kill_uid(uid)

    def _kill_uid(self, uid: int) -> None:
        """Kill whatever a dead worker's runs left behind under its uid."""
        try:
            subprocess.run(
                [self.config.python or sys.executable, "-S", "-c", _KILL_UID_CODE,
                 self._lock_dir, str(uid)],
                check=False, timeout=30, env={"PATH": "/usr/bin:/bin"},
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            logger.error("sandbox: could not clean up uid %d: %s", uid, exc)

    @property
    def uids(self) -> list[int]:
        """The unprivileged uids the workers run programs as (empty when not root)."""
        return sorted(h.info["uid"] for h in self._workers.values() if h.info.get("uid"))

    @property
    def worker_pids(self) -> list[int]:
        return sorted(h.proc.pid for h in self._workers.values())

    @property
    def scratch_root(self) -> str | None:
        """Directory holding every slot's scratch (removed by :meth:`close`)."""
        return self._base_dir

    # ---------------------------------------------------------------- running

    def run(self, jobs: Iterable[Job]) -> Iterator[Record]:
        """Run every job in its own isolated process; yield records in job order."""
        if self._selector is None:
            raise RuntimeError("Sandbox not started: use it as a context manager")
        if self._running:
            raise RuntimeError("Sandbox.run is already in progress on this sandbox")
        self._running = True
        try:
            yield from self._run(iter(jobs))
        finally:
            self._running = False

    def run_one(self, job: Job) -> Record:
        return next(iter(self.run([job])))

    def _run(self, jobs: Iterator[Job]) -> Iterator[Record]:
        # Jobs in flight or finished out of order. Much wider than the workers' queues, so
        # one slow job at the head does not starve the other workers; memory stays bounded
        # by it and by _HELD_BYTES (a record may carry up to output_limit bytes).
        window = max(1, len(self._workers)) * _WINDOW_PER_WORKER
        held_cap = max(1, _HELD_BYTES // (2 * max(1, self.config.output_limit_bytes)))
        done: dict[int, Record] = {}
        next_seq = next_out = 0
        exhausted = False
        try:
            while True:
                for handle in sorted(self._workers.values(), key=lambda h: len(h.pending)):
                    if exhausted or next_seq - next_out >= window:
                        break
                    if len(done) >= held_cap and _held_bytes(done) > _HELD_BYTES:
                        break
                    if len(handle.pending) > _REFILL_AT:
                        continue
                    batch: list[tuple[int, str, str, str, str]] = []
                    try:
                        while len(handle.pending) < _MAX_QUEUED_PER_WORKER and (
                            next_seq - next_out < window
                        ):
                            try:
                                job = next(jobs)
                            except StopIteration:
                                exhausted = True
                                break
                            batch.append(_job_tuple(next_seq, job))
                            handle.pending.append(next_seq)
                            next_seq += 1
                    finally:  # even when a bad job raises: what is pending must be sent
                        if batch:
                            handle.outbuf += _frame(batch)
                            self._flush(handle, done)
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
                if exhausted and next_out == next_seq:
                    return
                self._pump(done)
        finally:
            if next_out != next_seq:  # consumer stopped early: let the workers drain
                self._drain()

    def _flush(self, handle: _WorkerHandle, done: dict[int, Record]) -> None:
        while handle.outbuf:
            try:
                n = os.write(handle.wfd, handle.outbuf)
            except BlockingIOError:
                break
            except OSError:
                self._worker_died(handle, done)
                return
            del handle.outbuf[:n]
        self._update_events(handle)

    def _update_events(self, handle: _WorkerHandle) -> None:
        """Watch the job pipe for space only while there is something left to send."""
        assert self._selector is not None
        registered = handle.wfd in self._selector.get_map()
        if handle.outbuf and not registered:
            self._selector.register(handle.wfd, selectors.EVENT_WRITE, handle)
        elif not handle.outbuf and registered:
            self._selector.unregister(handle.wfd)

    def _pump(self, done: dict[int, Record]) -> None:
        """Wait for worker output (or pipe space) and turn frames into records."""
        assert self._selector is not None
        for key, mask in self._selector.select(timeout=1.0):
            handle: _WorkerHandle = key.data
            if handle.slot not in self._workers or self._workers[handle.slot] is not handle:
                continue
            if mask & selectors.EVENT_WRITE and key.fd == handle.wfd:
                self._flush(handle, done)
                continue
            try:
                chunk = os.read(handle.rfd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._worker_died(handle, done)
                continue
            handle.inbuf += chunk
            for msg in handle.frames():
                if type(msg) is not list:
                    if msg[0] == "fatal":
                        logger.error("sandbox worker %d failed: %s", handle.slot, msg[1])
                    continue
                pending = handle.pending
                for result in msg:
                    seq = result[0]
                    if pending and pending[0] == seq:  # results come back in job order
                        pending.popleft()
                    else:
                        with contextlib.suppress(ValueError):
                            pending.remove(seq)
                    done[seq] = _record(result[1:])

    def _worker_died(self, handle: _WorkerHandle, done: dict[int, Record]) -> None:
        """A worker vanished: its jobs get NO_RESULT and a fresh worker takes the slot."""
        logger.error("sandbox worker %d (pid %d) died; restarting it", handle.slot,
                     handle.proc.pid)  # fmt: skip
        for seq in handle.pending:
            done[seq] = Record(outcome=Outcome.NO_RESULT.value, error_type="WorkerDied")
        handle.pending.clear()
        assert self._selector is not None
        for fd in (handle.rfd, handle.wfd):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
        del self._workers[handle.slot]
        with contextlib.suppress(OSError):
            assert handle.proc.stdin is not None
            handle.proc.stdin.close()
        self._stop(handle, dead=True)
        fresh = self._spawn(handle.slot)
        self._handshake(fresh)

    def _drain(self) -> None:
        """Wait for in-flight jobs and drop their records (keeps workers in sync)."""
        sink: dict[int, Record] = {}
        while any(h.pending for h in self._workers.values()):
            self._pump(sink)
            sink.clear()
