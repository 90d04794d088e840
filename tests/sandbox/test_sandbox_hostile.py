"""Hostile and broken programs: each must end in the expected outcome class, leave the
canary and every path outside its scratch untouched, leave no process of a sandbox uid
behind, and leave the engine working (checked by ``assert_contained``)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sandbox_checks import DATA_DIR, Canary, assert_contained

from conself.sandbox import Job, Record, Sandbox


@dataclass(frozen=True)
class Case:
    name: str
    program: str
    expected: frozenset[str]
    kind: str = "stdio"
    entry_point: str = ""
    input: str = ""
    check: Callable[[Record], bool] | None = field(default=None, compare=False)
    slow: bool = False


def case(name: str, program: str, *expected: str, **kw: object) -> Case:
    return Case(name, program, frozenset(expected), **kw)  # type: ignore[arg-type]


CASES = [
    # ---- time
    case("infinite_loop", "while True:\n    pass\n", "time_limit", slow=True),
    case(
        "sigterm_sigxcpu_ignored",
        "import signal\nfor s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n",
        "time_limit",
        slow=True,
    ),
    case("long_sleep", "import time\ntime.sleep(1000)\n", "time_limit", slow=True),
    case(
        "sigstop_self",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n",
        "time_limit",
        slow=True,
    ),
    case(
        "non_daemon_thread_spins",
        "import threading\nthreading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\n"
        "print('main done')\n",
        "time_limit",
        slow=True,
    ),
    # ---- processes
    case(
        "fork_bomb",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "time_limit",
        "runtime_error",
        slow=True,
    ),
    case(
        "children_outlive_program",
        "import os, time\nif os.fork() == 0:\n    time.sleep(100)\n    os._exit(0)\n"
        "print('parent done')\n",
        "ok",
        check=lambda r: r.output == "parent done",
    ),
    case(
        "setsid_double_fork",
        "import os, time\nif os.fork() == 0:\n    try:\n        os.setsid()\n"
        "    except OSError:\n        pass\n    if os.fork() == 0:\n        time.sleep(100)\n"
        "    os._exit(0)\nprint('escaped?')\n",
        "ok",
    ),
    case(
        "daemon_via_ctypes_setsid",
        "import ctypes, os, time\nif os.fork() == 0:\n    ctypes.CDLL(None).setsid()\n"
        "    time.sleep(100)\n    os._exit(0)\nprint(1)\n",
        "ok",
    ),
    case(
        "kill_parent", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", "runtime_error"
    ),
    case(
        "kill_minus_one",
        "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('alive')\n",
        "ok",
        "runtime_error",
    ),
    case(
        "killpg_zero",
        "import os, signal\nos.killpg(0, signal.SIGKILL)\n",
        "signal",
        "runtime_error",
    ),
    case(
        "kill_self",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
        "signal",
        check=lambda r: r.error_type == "SIGKILL",
    ),
    case(
        "sigterm_self",
        "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
        "signal",
        check=lambda r: r.error_type == "SIGTERM",
    ),
    case(
        "multiprocessing_process",
        "from multiprocessing import Process\n\ndef work():\n    print('child')\n\n"
        "if __name__ == '__main__':\n    p = Process(target=work)\n    p.start()\n"
        "    p.join()\n    print('exit', p.exitcode)\n",
        "ok",
        check=lambda r: r.output == "child\nexit 0",
    ),
    case(
        "multiprocessing_pool",
        "from multiprocessing import Pool\nif __name__ == '__main__':\n"
        "    with Pool(2) as pool:\n        print(pool.map(abs, [-1, -2]))\n",
        "ok",
        "runtime_error",
    ),
    # ---- memory, output, files
    case("sudden_memory_bomb", "x = bytearray(10**10)\n", "memory_limit"),
    case("gradual_memory_bomb", "x = []\nwhile True:\n    x.append('a' * 10**6)\n", "memory_limit"),
    case("endless_stdout", "while True:\n    print('x' * 1000)\n", "output_limit"),
    case(
        "endless_stderr",
        "import sys\nwhile True:\n    sys.stderr.write('y' * 1000)\n",
        "output_limit",
    ),
    case(
        "endless_unbuffered_stdout",
        "import os\nwhile True:\n    os.write(1, b'z' * 4096)\n",
        "output_limit",
    ),
    case(
        "huge_file",
        "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 65536)\n",
        "output_limit",
    ),
    case(
        "many_files_fill_scratch",
        "for i in range(100000):\n    open(f'f{{i}}', 'w').write('x' * 60000)\n",
        "output_limit",
        "runtime_error",
        "time_limit",
    ),
    case(
        "fd_exhaustion",
        "fs = []\nwhile True:\n    fs.append(open('/dev/null'))\n",
        "runtime_error",
        check=lambda r: r.error_type == "OSError",
    ),
    # ---- filesystem escapes
    case(
        "rm_rf_canary_os_system",
        "import os\nprint(os.system('rm -rf {canary}'))\n",
        "ok",
        "runtime_error",
    ),
    case("rmtree_canary", "import shutil\nshutil.rmtree('{canary}')\n", "runtime_error"),
    case("overwrite_canary", "open('{canary}/keep.txt', 'w').write('pwned')\n", "runtime_error"),
    case(
        "symlink_to_canary",
        "import os\nos.symlink('{canary}', 'link')\nopen('link/evil.txt', 'w').write('x')\n",
        "runtime_error",
    ),
    case(
        "hardlink_canary",
        "import os\nos.link('{canary}/keep.txt', 'mine')\nopen('mine', 'w').write('pwned')\n",
        "runtime_error",
    ),
    case(
        "rename_canary_in", "import os\nos.rename('{canary}/keep.txt', 'stolen')\n", "runtime_error"
    ),
    case("write_tmp", "open('/tmp/conself-escape-{token}', 'w').write('x')\n", "runtime_error"),
    case(
        "write_dev_shm",
        "open('/dev/shm/conself-escape-{token}', 'w').write('x')\n",
        "runtime_error",
        "ok",
    ),
    case(
        "write_var_tmp",
        "open('/var/tmp/conself-escape-{token}', 'w').write('x')\n",
        "runtime_error",
    ),
    case(
        "write_data_folder",
        "open('{data}/conself-escape-{token}', 'w').write('x')\n",
        "runtime_error",
    ),
    case("list_data_folder", "import os\nprint(os.listdir('{data}'))\n", "runtime_error"),
    case(
        "chdir_and_delete",
        "import os\nos.chdir('/')\nos.remove('{canary}/keep.txt')\n",
        "runtime_error",
    ),
    case("read_etc_shadow", "print(open('/etc/shadow').read())\n", "runtime_error"),
    case("read_proc_1_environ", "print(open('/proc/1/environ').read())\n", "runtime_error"),
    case("lock_scratch", "import os\nos.chmod('.', 0)\nprint('locked')\n", "ok"),
    # ---- exec, privileges, syscalls
    case(
        "exec_shell",
        "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned'])\n",
        "runtime_error",
    ),
    case(
        "subprocess_shell",
        "import subprocess\nsubprocess.run(['sh', '-c', 'touch {canary}/pwned'])\n",
        "runtime_error",
    ),
    case(
        "posix_spawn_shell",
        "import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'rm -rf {canary}'], {{}})\n",
        "runtime_error",
    ),
    case("setuid_root", "import os\nos.setuid(0)\n", "runtime_error"),
    case(
        "raise_rlimits",
        "import resource\nfor r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC,"
        " resource.RLIMIT_FSIZE):\n    resource.setrlimit(r, (-1, -1))\n",
        "runtime_error",
        check=lambda r: r.error_type == "ValueError",
    ),
    case(
        "network_tcp",
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\n",
        "runtime_error",
    ),
    case(
        "network_udp",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'x', ('8.8.8.8', 53))\n",
        "runtime_error",
    ),
    case(
        "raw_socket_via_ctypes",
        "import ctypes\nprint(ctypes.CDLL(None).socket(2, 1, 0))\n",
        "ok",
        check=lambda r: r.output == "-1",
    ),
    case(
        "ptrace_via_ctypes",
        "import ctypes, os\nprint(ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0))\n",
        "ok",
        check=lambda r: r.output == "-1",
    ),
    case(
        "unshare_user_ns",
        "import ctypes\nprint(ctypes.CDLL(None).unshare(0x10000000))\n",
        "ok",
        check=lambda r: r.output == "-1",
    ),
    case(
        "mount_tmpfs",
        "import ctypes\nprint(ctypes.CDLL(None).mount(b'x', b'.', b'tmpfs', 0, None))\n",
        "ok",
        check=lambda r: r.output == "-1",
    ),
    # ---- crashes
    case(
        "segfault",
        "import ctypes\nctypes.string_at(0)\n",
        "signal",
        check=lambda r: r.error_type == "SIGSEGV",
    ),
    case("abort", "import os\nos.abort()\n", "signal", check=lambda r: r.error_type == "SIGABRT"),
    case(
        "deep_recursion_python",
        "def f(n):\n    return f(n + 1)\nf(0)\n",
        "runtime_error",
        check=lambda r: r.error_type == "RecursionError",
    ),
    case(
        "deep_recursion_python_unbounded",
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        "memory_limit",
        "signal",
        "time_limit",
        slow=True,
    ),
    case(
        "deep_recursion_through_c",
        "import pickle, sys\nsys.setrecursionlimit(10**8)\nx = []\nfor _ in range(300000):\n"
        "    x = [x]\nprint(len(pickle.dumps(x)))\n",
        "signal",
        check=lambda r: r.error_type == "SIGSEGV",
    ),
    case(
        "sys_exit_n",
        "import sys\nsys.exit(3)\n",
        "nonzero_exit",
        check=lambda r: r.error_type == "exit 3",
    ),
    case(
        "os_exit",
        "import os\nprint('bye', flush=True)\nos._exit(7)\n",
        "nonzero_exit",
        check=lambda r: r.stdout == b"bye\n",
    ),
    case("keyboard_interrupt", "raise KeyboardInterrupt\n", "runtime_error"),
    # ---- stdin / stdout encodings
    case(
        "stdin_past_eof",
        "print(input())\nprint(input())\n",
        "runtime_error",
        input="one\n",
        check=lambda r: r.error_type == "EOFError",
    ),
    case(
        "non_utf8_stdin",
        "import sys\nprint(sys.stdin.buffer.read().hex())\n",
        "ok",
        input="\udcff\udcfeA",
        check=lambda r: r.output == "fffe41",
    ),
    case(
        "non_utf8_stdin_echo",
        "print(input())\n",
        "ok",
        input="\udcff\udcfe\n",
        check=lambda r: r.stdout == b"\xff\xfe\n" and r.output == "\\xff\\xfe",
    ),
    case(
        "non_utf8_stdout",
        "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')\n",
        "ok",
        check=lambda r: r.stdout == b"\xff\xfe ok\n" and r.output == "\\xff\\xfe ok",
    ),
    case(
        "threads_left_running",
        "import threading, time\nthreading.Thread(target=time.sleep, args=(100,), "
        "daemon=True).start()\nprint('done')\n",
        "ok",
        check=lambda r: r.output == "done",
    ),
    case(
        "numpy_import",
        "import numpy as np\nprint(int(np.arange(5).sum()))\n",
        "ok",
        check=lambda r: r.output == "10",
    ),
    case(
        "write_result_fd",
        "import os\nos.write(1023, b'CSR1\\xff\\xff garbage')\nprint(5)\n",
        "ok",
        check=lambda r: r.output == "5",
    ),
    case(
        "close_stdout",
        "import os\nos.close(1)\nprint('x')\n",
        "ok",
        "runtime_error",
        "nonzero_exit",
    ),
    # ---- call-kind specials
    case(
        "endless_repr",
        "class X:\n    def __repr__(self):\n        while True:\n            pass\n"
        "def f():\n    return X()\n",
        "time_limit",
        kind="call",
        entry_point="f",
        slow=True,
    ),
    case(
        "huge_repr",
        "class X:\n    def __repr__(self):\n        return 'y' * 10**9\ndef f():\n    return X()\n",
        "memory_limit",
        kind="call",
        entry_point="f",
    ),
    case(
        "huge_return_value",
        "def f():\n    return list(range(10**7))\n",
        "output_limit",
        "memory_limit",
        kind="call",
        entry_point="f",
    ),
    case(
        "self_referencing_return",
        "def f():\n    x = [1]\n    x.append(x)\n    return x\n",
        "ok",
        kind="call",
        entry_point="f",
        check=lambda r: r.output == "[1, [...]]",
    ),
    case(
        "missing_entry_point",
        "def g():\n    return 1\n",
        "runtime_error",
        kind="call",
        entry_point="f",
        check=lambda r: r.error_type == "MissingEntryPoint",
    ),
    case(
        "sys_exit_zero_in_call",
        "import sys\ndef f():\n    sys.exit(0)\n",
        "no_result",
        kind="call",
        entry_point="f",
    ),
    case(
        "bad_input_literal",
        "def f(x):\n    return x\n",
        "no_result",
        kind="call",
        entry_point="f",
        input="[__import__('os')]",
    ),
    case(
        "compile_error",
        "def f(:\n    pass\n",
        "compile_error",
        kind="call",
        entry_point="f",
        check=lambda r: r.error_type == "SyntaxError",
    ),
    case("null_bytes_in_source", "print(1)\x00\n", "compile_error"),
]


def _render(c: Case, canary: Canary) -> Job:
    program = c.program.format(canary=canary.root, token=canary.token, data=DATA_DIR)
    return Job(program, c.kind, c.entry_point, c.input)


def test_at_least_forty_hostile_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "c", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]
)
def test_hostile_program(c: Case, sandbox: Sandbox, canary: Canary) -> None:
    workers_before = sandbox.worker_pids
    record = sandbox.run_one(_render(c, canary))
    assert record.outcome in c.expected, (record.outcome, record.error_type, record.stderr_tail)
    if c.check is not None:
        assert c.check(record), record
    if record.outcome != "ok":
        assert record.output is None
    assert sandbox.worker_pids == workers_before, "a worker died"
    assert_contained(sandbox, canary)


def test_builtins_and_modules_monkeypatched_do_not_leak(sandbox: Sandbox, canary: Canary) -> None:
    patch = Job("import builtins, math\nbuiltins.len = lambda x: 42\nmath.sqrt = lambda x: -1\n"
                "builtins.print = None\n", "stdio")  # fmt: skip
    check = Job("import math\nprint(len([1, 2]), math.sqrt(16))\n", "stdio")
    records = list(sandbox.run([patch, patch, *[check] * 8]))
    assert [r.output for r in records[2:]] == ["2 4.0"] * 8
    assert_contained(sandbox, canary)


def test_kill_everything_spares_outside_processes(
    sandbox: Sandbox, canary: Canary, root_sleeper: subprocess.Popen[bytes]
) -> None:
    jobs = [
        Job("import os, signal\nos.kill(-1, signal.SIGKILL)\n", "stdio"),
        Job("import os, signal\nos.killpg(0, signal.SIGKILL)\n", "stdio"),
        Job(f"import os, signal\nos.kill({root_sleeper.pid}, signal.SIGKILL)\n", "stdio"),
        Job(f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)\n", "stdio"),
    ]
    records = list(sandbox.run(jobs))
    assert records[2].outcome == "runtime_error"
    assert records[3].outcome == "runtime_error"
    assert root_sleeper.poll() is None, "a program killed a process outside the sandbox"
    os.kill(os.getpid(), 0)
    assert_contained(sandbox, canary)


def test_scratch_is_fresh_for_every_run(sandbox: Sandbox, canary: Canary) -> None:
    write = Job("open('left_behind.txt', 'w').write('x')\nimport os\nos.mkdir('d')\n"
                "os.chmod('d', 0)\nprint(sorted(os.listdir('.')))\n", "stdio")  # fmt: skip
    look = Job("import os\nprint(sorted(os.listdir('.')))\n", "stdio")
    records = list(sandbox.run([write, write, look, look, look, look]))
    assert records[0].output == "['d', 'left_behind.txt']"
    assert [r.output for r in records[2:]] == ["[]"] * 4
    assert_contained(sandbox, canary)


def test_signal_names_are_reported(sandbox: Sandbox) -> None:
    record = sandbox.run_one(Job(f"import os\nos.kill(os.getpid(), {int(signal.SIGUSR1)})\n",
                                 "stdio"))  # fmt: skip
    assert (record.outcome, record.error_type) == ("signal", "SIGUSR1")
