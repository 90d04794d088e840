"""Low-level isolation primitives (Linux, x86-64/aarch64) used by the warm worker.

Everything expensive (building the seccomp BPF, the Landlock ruleset) happens once per
worker; the forked child only issues a handful of syscalls, which keeps a run near the
cost of a bare ``fork``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal

_libc = ctypes.CDLL(None, use_errno=True)
_pylibc = ctypes.PyDLL(None, use_errno=True)
_pylibc.fork.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2

_ARCH = os.uname().machine
_SYSCALLS = {
    "x86_64": {"landlock_create_ruleset": 444, "landlock_add_rule": 445,
               "landlock_restrict_self": 446, "capset": 126, "unshare": 272, "mount": 165},
    "aarch64": {"landlock_create_ruleset": 444, "landlock_add_rule": 445,
                "landlock_restrict_self": 446, "capset": 91, "unshare": 97, "mount": 40},
}.get(_ARCH, {})  # fmt: skip

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
MS_PRIVATE = 1 << 18
MS_REC = 16384
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8

CAP_DAC_READ_SEARCH = 2

# Landlock access rights (uapi/linux/landlock.h) and the ABI that introduced them.
LL_EXECUTE = 1 << 0
LL_WRITE_FILE = 1 << 1
LL_READ_FILE = 1 << 2
LL_READ_DIR = 1 << 3
LL_REMOVE_DIR = 1 << 4
LL_REMOVE_FILE = 1 << 5
LL_MAKE_CHAR = 1 << 6
LL_MAKE_DIR = 1 << 7
LL_MAKE_REG = 1 << 8
LL_MAKE_SOCK = 1 << 9
LL_MAKE_FIFO = 1 << 10
LL_MAKE_BLOCK = 1 << 11
LL_MAKE_SYM = 1 << 12
LL_REFER = 1 << 13  # ABI 2
LL_TRUNCATE = 1 << 14  # ABI 3
LL_IOCTL_DEV = 1 << 15  # ABI 5
LL_NET_BIND_TCP = 1 << 0  # ABI 4
LL_NET_CONNECT_TCP = 1 << 1
LL_SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
LL_SCOPE_SIGNAL = 1 << 1
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV


def _syscall(name: str, *args: object) -> int:
    number = _SYSCALLS.get(name)
    if number is None:
        raise OSError(errno.ENOSYS, f"{name} unknown on {_ARCH}")
    res = _libc.syscall(ctypes.c_long(number), *args)
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return int(res)


def raw_fork() -> int:
    """libc fork() with the GIL held, skipping CPython's at-fork hooks.

    Why: in a warm worker those hooks (thread/lock re-initialisation, random reseeding)
    write to ~200 pages, which costs more than the fork itself. This is only sound in a
    single-threaded process, which the worker is; children that fork again use os.fork.
    """
    pid = _pylibc.fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return int(pid)


def release_free_heap() -> None:
    """Return the heap's free pages to the kernel (glibc ``malloc_trim``; no-op elsewhere).

    Why: imports and compiling leave the warm worker's heap fragmented; its free pages
    would otherwise stay mapped, and every fork copies (and every exit tears down) the
    page-table entry of each mapped page. Measured here: about 2 MB of 8.7 MB.
    """
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(ctypes.c_size_t(0))


def prctl(option: int, arg2: int = 0) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0),
                   ctypes.c_ulong(0)) != 0:  # fmt: skip
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    res = _libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None,
        ctypes.c_ulong(flags), data.encode() if data else None,
    )  # fmt: skip
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


# ---------------------------------------------------------------- capabilities


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]  # fmt: skip


class CapabilityKeeper:
    """A capset() call built once in the worker, so the child issues it with no setup.

    Why prebuilt: building ctypes structures in a forked child writes to ~30 shared
    pages (copy-on-write faults) per run; calling a ready function pointer does not.
    """

    def __init__(self, cap: int) -> None:
        if "capset" not in _SYSCALLS:
            raise OSError(errno.ENOSYS, "capset unknown on this architecture")
        self._header = _CapHeader(0x20080522, 0)
        self._data = (_CapData * 2)()
        self._data[cap // 32].effective = self._data[cap // 32].permitted = 1 << (cap % 32)
        self._args = (ctypes.c_long(_SYSCALLS["capset"]), ctypes.byref(self._header),
                      ctypes.byref(self._data))  # fmt: skip
        self._call = _libc.syscall

    def apply(self) -> None:
        """After a setuid with KEEPCAPS: keep exactly this capability (effective+permitted)."""
        if self._call(*self._args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"capset: {os.strerror(err)}")


# ---------------------------------------------------------------- landlock


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """Landlock ABI version of the running kernel, 0 when unavailable."""
    try:
        return _syscall("landlock_create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except OSError:
        return 0


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= LL_REFER
    if abi >= 3:
        rights |= LL_TRUNCATE
    if abi >= 5:
        rights |= LL_IOCTL_DEV
    return rights


def build_landlock_ruleset(
    abi: int, read_paths: list[str], rw_dirs: list[str], rw_files: list[str]
) -> tuple[int, list[str]]:
    """A ruleset fd: read-only beneath ``read_paths``, full access beneath ``rw_dirs``.

    Execution is handled and granted nowhere; TCP bind/connect (ABI >= 4) is handled and
    granted nowhere; abstract unix sockets and signals are scoped to the domain (ABI >= 6).
    Returns the fd and a list of notes (skipped paths).
    """
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL
        size = 24
    fd = _syscall("landlock_create_ruleset", ctypes.byref(attr), ctypes.c_size_t(size),
                  ctypes.c_uint32(0))  # fmt: skip
    notes: list[str] = []
    read = LL_READ_FILE | LL_READ_DIR
    rw = handled & ~(LL_EXECUTE | LL_MAKE_CHAR | LL_MAKE_BLOCK)
    rules = [(p, read) for p in read_paths] + [(p, rw) for p in rw_dirs]
    rules += [(p, (LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE | LL_IOCTL_DEV) & handled)
              for p in rw_files]  # fmt: skip
    for path, access in rules:
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            notes.append(f"skip {path}")
            continue
        try:
            rights = access if os.path.isdir(path) else access & LL_FILE_RIGHTS
            rule = _PathBeneathAttr(rights, pfd)
            _syscall("landlock_add_rule", ctypes.c_int(fd), ctypes.c_int(1), ctypes.byref(rule),
                     ctypes.c_uint32(0))  # fmt: skip
        except OSError as exc:
            notes.append(f"rule {path}: {exc}")
        finally:
            os.close(pfd)
    return fd, notes


def landlock_restrict_self(ruleset_fd: int) -> None:
    _syscall("landlock_restrict_self", ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))


# ---------------------------------------------------------------- seccomp

_DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "unshare", "setns", "mount", "umount2",
    "pivot_root", "chroot", "setsid", "setpgid", "execve", "execveat", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "open_by_handle_at", "name_to_handle_at", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "syslog", "vhangup", "kcmp",
    "pidfd_getfd", "fanotify_init", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "lookup_dcookie", "mknod", "mknodat",
)  # fmt: skip


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram:
    """A pre-compiled BPF program; :meth:`apply` is a single prctl in the child."""

    def __init__(self, bpf: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(bpf, len(bpf))
        self._prog = _SockFprog(len(bpf) // 8, ctypes.addressof(self._buffer))

    def apply(self) -> None:
        res = _libc.prctl(
            PR_SET_SECCOMP,
            ctypes.c_ulong(SECCOMP_MODE_FILTER),
            ctypes.byref(self._prog),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
        if res != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp: {os.strerror(err)}")


def build_seccomp() -> tuple[SeccompProgram, list[str]]:
    """Compile the filter (needs pyseccomp/libseccomp) into a ready program."""
    bpf, notes = build_seccomp_bpf()
    return SeccompProgram(bpf), notes


def build_seccomp_bpf() -> tuple[bytes, list[str]]:
    """Deny-list filter: network sockets, ptrace, namespaces, mounts, setsid/setpgid, exec...

    Denied calls fail with EPERM (the program sees a PermissionError and crashes like any
    other error) instead of killing the process, which keeps outcomes readable.
    """
    import socket

    import pyseccomp as sc

    flt = sc.SyscallFilter(sc.ALLOW)
    eperm = sc.ERRNO(errno.EPERM)
    notes: list[str] = []
    for name in _DENIED_SYSCALLS:
        try:
            flt.add_rule(eperm, name)
        except (OSError, ValueError, RuntimeError) as exc:
            notes.append(f"{name}: {exc}")
    # Only unix-domain sockets (multiprocessing pipes); no inet/netlink/packet/vsock...
    flt.add_rule(eperm, "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    flt.add_rule(eperm, "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    # clone: no new namespaces; clone3 hides flags in memory, so refuse it (glibc falls back).
    for bit in (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME):  # fmt: skip
        flt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, bit, bit))
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    flt.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, 0x5412))  # TIOCSTI
    fd = os.memfd_create("seccomp-bpf")
    try:
        with os.fdopen(os.dup(fd), "wb", closefd=True) as handle:
            flt.export_bpf(handle)
        size = os.fstat(fd).st_size
        bpf = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    return bpf, notes


# ---------------------------------------------------------------- rlimits


def set_static_rlimits(stack: int, processes: int | None) -> None:
    """Limits set once in the worker and inherited by every run (no core, no memlock...)."""
    resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    if processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def set_shared_run_limits(address_space: int, open_files: int) -> None:
    """Run limits the worker can live under itself, so its children inherit them."""
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))


def set_child_limits(cpu_s: int, file_size: int) -> None:
    """Per-run limits. CPU: the soft limit sends SIGXCPU, the hard one (a second later)
    SIGKILL. File size stays per run: the worker must write stdin files of any size and
    cannot raise a hard limit again without CAP_SYS_RESOURCE (often absent in containers)."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))


SIGNAL_NAMES = {int(s): s.name for s in signal.Signals}
