"""A copy of the project set up for the tiny model, and ``kedro run`` on it as a real process.

The copy holds conf, the tiny problems, pyproject.toml and empty data layers; the
package itself is the installed one. The session's tiny checkpoint is placed in the
copy's model cache, and ``model.tiny.steps`` points the run at it, so no second
model is pre-trained.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


def copy_project(root: Path, dest: Path, tiny_checkpoint_dir: Path | None = None) -> Path:
    shutil.copytree(root / "conf", dest / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir()
    shutil.copytree(root / "data" / "01_raw" / "tiny", dest / "data" / "01_raw" / "tiny")
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")
    (dest / "src").mkdir()  # Kedro wants the source folder; the package is installed
    for layer in LAYERS:
        (dest / "data" / layer).mkdir(parents=True, exist_ok=True)
    if tiny_checkpoint_dir is not None:
        cache = dest / "data" / "06_models" / "base"
        cache.mkdir(exist_ok=True)
        shutil.copytree(tiny_checkpoint_dir, cache / tiny_checkpoint_dir.name)
    return dest


def kedro_command(params: str, *extra: str) -> list[str]:
    """``kedro run --env tiny --params ...`` with the interpreter running the tests."""
    kedro = Path(sys.executable).with_name("kedro")
    return [str(kedro), "run", "--env", "tiny", "--params", params, *extra]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    return env


def kedro_run(project: Path, params: str, *extra: str, timeout: float = 900) -> str:
    """Run to completion; returns the log. A failure shows the log's tail."""
    log = project / f"run-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.run(
            kedro_command(params, *extra),
            cwd=project,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    text = log.read_text()
    assert proc.returncode == 0, f"kedro run failed ({proc.returncode}):\n{text[-6000:]}"
    return text


def kedro_run_killed_when(
    project: Path, params: str, condition: Callable[[], bool], *, timeout: float = 600
) -> str:
    """Start ``kedro run`` and SIGKILL its whole process group once ``condition()`` holds."""
    log = project / f"killed-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            kedro_command(params),
            cwd=project,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while not condition():
                if proc.poll() is not None:
                    raise AssertionError(
                        "the run ended before the kill point:\n" + log.read_text()[-4000:]
                    )
                if time.monotonic() > deadline:
                    raise AssertionError("kill point not reached in time")
                time.sleep(0.01)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return log.read_text()


def resume_params(tiny_steps: int) -> str:
    """Tiny-round parameters with several shards per stage and several training steps,
    so that a run can be killed in the middle of each long stage."""
    return ",".join(
        [
            f"model.tiny.steps={tiny_steps}",
            "generation.shard_size=4",
            "execution.shard_size=1",
            "training.condpo.per_device_train_batch_size=1",
            "training.condpo.gradient_accumulation_steps=1",
            "training.condpo.num_train_epochs=3",
        ]
    )


def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned catalog file (``<file>/<version>/<file>``)."""
    versions = sorted((project / relative).glob("*/" + Path(relative).name))
    assert versions, f"no saved version of {relative}"
    return versions[-1]
