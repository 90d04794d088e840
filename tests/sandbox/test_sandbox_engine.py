"""Ordinary behaviour of the engine: job kinds, ordering, streaming, limits, layers,
determinism, recovery."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import logging
import os
import signal
import threading
import time

import pytest
from sandbox_checks import TEST_CONFIG, uid_processes

from conself.sandbox import Job, Record, Sandbox, engine
from conself.sandbox.engine import SandboxUnavailable


def test_call_kind(sandbox: Sandbox) -> None:
    program = (
        "import math\n"
        "def f(xs, s):\n    return sorted(xs), s * 2, math.sqrt(16)\n"
        "class Solution:\n    def twice(self, x):\n        return 2 * x\n"
        "def none():\n    return None\n"
        "def mutate(xs):\n    xs.append(1)\n    return xs\n"
    )
    jobs = [
        Job(program, "call", "f", "[[3, 1.5, 2], 'ab']"),
        Job(program, "call", "Solution().twice", "[21]"),
        Job(program, "call", "none", "[]"),
        Job(program, "call", "mutate", "[[0]]"),
        Job(program, "call", "mutate", "[[0]]"),
        Job(program, "call", "f", "([2, 1], 'x')"),
        Job(program, "call", "f", "[[], '']"),
    ]
    outputs = [r.output for r in sandbox.run(jobs)]
    assert outputs == [
        "([1.5, 2, 3], 'abab', 4)", "42", "None", "[0, 1]", "[0, 1]", "([1, 2], 'xx', 4)",
        "([], '', 4)",
    ]  # fmt: skip


def test_call_prints_are_kept_apart_from_the_return_value(sandbox: Sandbox) -> None:
    record = sandbox.run_one(Job("def f():\n    print('noise')\n    return 5\n", "call", "f"))
    assert (record.output, record.stdout) == ("5", b"noise\n")


def test_call_program_with_main_guard_is_not_run_as_main(sandbox: Sandbox) -> None:
    program = "def f(x):\n    return x + 1\nif __name__ == '__main__':\n    input()\n"
    assert sandbox.run_one(Job(program, "call", "f", "[1]")).output == "2"


def test_stdio_kind(sandbox: Sandbox) -> None:
    program = "n = int(input())\nfor i in range(n):\n    print(i, ' ')\nprint()\n"
    record = sandbox.run_one(Job(program, "stdio", input="3\n"))
    assert record.outcome == "ok"
    assert record.stdout == b"0  \n1  \n2  \n\n"
    assert record.output == "0\n1\n2"


def test_stdio_reads_all_of_stdin(sandbox: Sandbox) -> None:
    program = "import sys\ndata = sys.stdin.read().split()\nprint(sum(map(int, data)))\n"
    big = " ".join(str(i) for i in range(100000))
    assert sandbox.run_one(Job(program, "stdio", input=big)).output == str(sum(range(100000)))


def test_script_kind(sandbox: Sandbox) -> None:
    solution = "def add(a, b):\n    return a + b\n"
    jobs = [
        Job(solution + "assert add(1, 2) == 3\nprint('passed')\n", "script"),
        Job(solution + "assert add(1, 2) == 4\n", "script"),
        Job(solution + "import sys\nsys.exit(0)\n", "script"),
        Job(solution + "import sys\nsys.exit('failed')\n", "script"),
    ]
    records = list(sandbox.run(jobs))
    assert [(r.outcome, r.error_type) for r in records] == [
        ("ok", None), ("runtime_error", "AssertionError"), ("ok", None),
        ("nonzero_exit", "exit 1"),
    ]  # fmt: skip
    assert records[0].output == "passed"
    assert "failed" in records[3].stderr_tail
    assert "assert add(1, 2) == 4" in records[1].stderr_tail


def test_runtime_error_reports_type_and_traceback(sandbox: Sandbox) -> None:
    record = sandbox.run_one(Job("def f(x):\n    return 1 / x\n", "call", "f", "[0]"))
    assert (record.outcome, record.error_type, record.output) == (
        "runtime_error", "ZeroDivisionError", None)  # fmt: skip
    assert 'File "main.py", line 2, in f' in record.stderr_tail
    assert "conself" not in record.stderr_tail  # only the program's own frames


def test_records_come_back_in_job_order(sandbox: Sandbox) -> None:
    program = "import time\ndef f(i, d):\n    time.sleep(d)\n    return i\n"
    delays = [0.05 if i % 3 == 0 else 0.0 for i in range(40)]
    jobs = [Job(program, "call", "f", repr([i, d])) for i, d in enumerate(delays)]
    assert [r.output for r in sandbox.run(jobs)] == [str(i) for i in range(40)]


def test_streaming_is_lazy_and_bounded(sandbox: Sandbox) -> None:
    pulled = itertools.count()
    seen = []

    def jobs():  # an endless batch: only a bounded window may be pulled ahead
        for i in itertools.count():
            next(pulled)
            yield Job("def f(i):\n    return i\n", "call", "f", f"[{i}]")

    for record in sandbox.run(jobs()):
        seen.append(record.output)
        if len(seen) == 30:
            break
    assert seen == [str(i) for i in range(30)]
    assert next(pulled) <= 30 + engine._WINDOW_PER_WORKER * TEST_CONFIG.n_workers + 1
    assert sandbox.run_one(Job("print(7)", "stdio")).output == "7"  # still in sync


def test_output_held_behind_a_slow_job_is_bounded(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records finished after a slow head job wait in memory: their bytes are capped."""
    monkeypatch.setattr(engine, "_HELD_BYTES", 1 << 20)
    pulled = itertools.count()
    big = "print('x' * 60000)\n"

    def jobs():
        next(pulled)
        yield Job("import time\ntime.sleep(1.0)\nprint('head')\n", "stdio")
        for _ in range(200):
            next(pulled)
            yield Job(big, "stdio")

    records = sandbox.run(jobs())
    assert next(records).output == "head"
    # ~17 held records of 60 kB pass 1 MiB, plus what was already queued at the workers.
    assert next(pulled) <= 1 + 18 + engine._MAX_QUEUED_PER_WORKER * TEST_CONFIG.n_workers + 1
    assert sum(1 for _ in records) == 200


def test_invalid_jobs_are_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown job kind"):
        list(sandbox.run([Job("print(1)", "shell")]))
    with pytest.raises(TypeError):
        list(sandbox.run(["print(1)"]))  # type: ignore[list-item]
    assert sandbox.run_one(Job("print(8)", "stdio")).output == "8"


def test_limits_are_configurable() -> None:
    config = dataclasses.replace(TEST_CONFIG, workers=1, time_limit_s=0.3, memory_limit_mb=200,
                                 output_limit_bytes=100)  # fmt: skip
    jobs = [
        Job("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6:\n"
            "    pass\n", "stdio"),
        Job("x = bytearray(300 * 2**20)\n", "stdio"),
        Job("x = bytearray(50 * 2**20)\nprint('fits')\n", "stdio"),
        Job("print('x' * 150)\n", "stdio"),
        Job("print('x' * 50)\n", "stdio"),
        Job("def f():\n    return 'y' * 150\n", "call", "f"),
    ]  # fmt: skip
    with Sandbox(config) as sb:
        outcomes = [r.outcome for r in sb.run(jobs)]
    assert outcomes == ["time_limit", "memory_limit", "ok", "output_limit", "ok", "output_limit"]


def test_measurements_are_filled(sandbox: Sandbox) -> None:
    record = sandbox.run_one(Job("x = bytearray(64 * 2**20)\nsum(range(10**6))\n", "stdio"))
    assert record.wall_time_s > 0
    assert record.cpu_time_s > 0
    assert record.peak_memory_kb > 64 * 1024


def test_programs_see_the_documented_environment_only(sandbox: Sandbox) -> None:
    """The worker's own settings (module path, eager symbol binding) stay out of it."""
    record = sandbox.run_one(Job("import os\nprint(sorted(os.environ))\n", "stdio"))
    assert record.outcome == "ok", record
    names = ast.literal_eval(record.output)
    assert "PYTHONPATH" not in names and "LD_BIND_NOW" not in names
    assert {"PYTHONHASHSEED", "TZ", "LC_ALL", "HOME", "TMPDIR", "OMP_NUM_THREADS"} <= set(names)


MIXED_BATCH = [
    Job("import random\nprint(random.random(), random.randint(1, 10**9))\n", "stdio"),
    Job("print({'apple', 'banana', 'cherry', 'date', 'elder'})\n", "stdio"),
    Job("print(hash('conself'))\n", "stdio"),
    Job("class A:\n    pass\nprint(A(), object())\n", "stdio"),
    Job("def f():\n    return [object(), {1: object()}]\n", "call", "f"),
    Job(
        "import os, tempfile\nprint(os.getcwd(), os.environ['HOME'], tempfile.gettempdir())\n",
        "stdio",
    ),
    Job("open('x', 'w').write('1')\nimport os\nprint(os.path.abspath('x'))\n", "stdio"),
    Job("import time\nprint(time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(86400)))\n", "stdio"),
    Job("import locale\nprint(locale.getpreferredencoding(), f'{1234567.891:n}')\n", "stdio"),
    Job("import numpy as np\nprint(np.random.rand(3).round(6).tolist())\n", "stdio"),
    Job("def f(x):\n    return 1 / x\n", "call", "f", "[0]"),
    Job("raise ValueError(object())\n", "stdio"),
    Job("def f(:\n", "stdio"),
    Job("while True:\n    pass\n", "stdio"),
    Job("import os\nos.abort()\n", "stdio"),
    Job("def f(x):\n    return {x, 2.5, (1, 'a')}\n", "call", "f", "['k']"),
    Job("import sys\nprint(sys.argv, __name__)\n", "stdio"),
    Job("x = 1\nprint(x is 1, '\\d')\n", "stdio"),  # compile-time SyntaxWarning
]


@pytest.mark.slow
def test_same_batch_twice_gives_identical_records(sandbox: Sandbox) -> None:
    first = list(sandbox.run(MIXED_BATCH))
    second = list(sandbox.run(MIXED_BATCH))
    with Sandbox(dataclasses.replace(TEST_CONFIG, workers=1)) as other:
        third = list(other.run(MIXED_BATCH))
    rows = [[r.to_row(timings=False) for r in batch] for batch in (first, second, third)]
    assert rows[0] == rows[1] == rows[2]
    assert first == second == third
    assert first[0].outcome == "ok"
    assert "<scratch>" in (first[5].output or "")
    assert "0x?" in (first[3].output or "")
    expected = ["runtime_error", "runtime_error", "compile_error", "time_limit", "signal"]
    assert [r.outcome for r in first[-8:]] == [*expected, "ok", "ok", "ok"]


def test_layers_are_probed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="conself.sandbox")
    with Sandbox(dataclasses.replace(TEST_CONFIG, workers=1)) as sb:
        assert sb.layers["rlimits"] and sb.layers["cleanup"]
        assert sb.run_one(Job("print(1)", "stdio")).output == "1"
    assert any("active layers" in r.getMessage() for r in caplog.records)
    if os.geteuid() == 0:
        assert sb.layers["uid"]


def test_strict_mode_refuses_a_missing_layer() -> None:
    config = dataclasses.replace(TEST_CONFIG, workers=1, strict=True,
                                 required_layers=("rlimits", "teleportation"))  # fmt: skip
    with pytest.raises(SandboxUnavailable, match="teleportation"), Sandbox(config):
        pass


def test_without_namespaces_the_engine_degrades_but_works() -> None:
    with Sandbox(dataclasses.replace(TEST_CONFIG, workers=1, use_namespaces=False)) as sb:
        assert not sb.layers["netns"] and not sb.layers["mntns"]
        record = sb.run_one(Job("open('/tmp/conself-escape-degraded', 'w')\n", "stdio"))
        assert record.outcome == "runtime_error"
        assert not os.path.exists("/tmp/conself-escape-degraded")


@pytest.mark.skipif(os.geteuid() != 0, reason="private uids need root")
def test_concurrent_sandboxes_never_share_a_uid(sandbox: Sandbox) -> None:
    with Sandbox(dataclasses.replace(TEST_CONFIG, workers=2)) as other:
        assert not set(other.uids) & set(sandbox.uids)
        assert len(set(other.uids)) == 2
        assert other.run_one(Job("print(2)", "stdio")).output == "2"


def test_close_leaves_nothing_behind() -> None:
    sb = Sandbox(dataclasses.replace(TEST_CONFIG, workers=2))
    sb.start()
    uids, pids, root = sb.uids, sb.worker_pids, sb.scratch_root
    records = list(sb.run([Job("import os, time\nif os.fork() == 0:\n    time.sleep(60)\n",
                               "stdio")] * 2))  # fmt: skip
    assert [r.outcome for r in records] == ["ok", "ok"]
    sb.close()
    assert root is not None and not os.path.exists(root)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read()
    assert uid_processes(uids) == []


@pytest.mark.slow
def test_a_dying_worker_is_replaced() -> None:
    with Sandbox(dataclasses.replace(TEST_CONFIG, workers=1)) as sb:
        victim = sb.worker_pids[0]
        old_uids = sb.uids
        timer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        timer.start()
        jobs = [Job("import time\ntime.sleep(2)\n", "stdio"), Job("print(3)", "stdio")]
        records = list(sb.run(jobs))
        timer.join()
        assert records[0] == Record("no_result", "WorkerDied")
        assert records[1].output == "3" or records[1] == records[0]  # it may have been queued
        assert sb.run_one(Job("print(4)", "stdio")).output == "4"
        assert sb.worker_pids != [victim]
        time.sleep(0.2)  # the orphaned run child dies of its parent-death signal
        assert uid_processes(old_uids) == []


def test_rebinding_sys_stdout_does_not_lose_output(sandbox: Sandbox) -> None:
    program = "import io, sys\nprint('kept')\nsys.stdout = io.StringIO()\nprint('swallowed')\n"
    record = sandbox.run_one(Job(program, "stdio"))
    assert (record.outcome, record.output) == ("ok", "kept")


def test_close_after_an_abandoned_run() -> None:
    sb = Sandbox(dataclasses.replace(TEST_CONFIG, workers=2))
    sb.start()
    uids = sb.uids
    stream = sb.run(Job("import time\ntime.sleep(0.2)\nprint(1)\n", "stdio") for _ in range(10))
    assert next(stream).output == "1"
    sb.close()  # the generator is neither exhausted nor closed
    assert uid_processes(uids) == []


def test_posix_semaphores_work_where_a_private_dev_shm_exists(sandbox: Sandbox) -> None:
    program = ("from multiprocessing import Queue, Process\n\ndef work(q):\n    q.put(42)\n\n"
               "if __name__ == '__main__':\n    q = Queue()\n    p = Process(target=work, "
               "args=(q,))\n    p.start()\n    print(q.get())\n    p.join()\n")  # fmt: skip
    record = sandbox.run_one(Job(program, "stdio"))
    if sandbox.layers.get("mntns"):
        assert record.output == "42"
    else:
        assert record.outcome == "runtime_error"
