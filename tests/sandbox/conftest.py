"""Session fixtures for the sandbox tests.

One sandbox serves the whole session (workers start in ~0.3 s, but the suite must stay
short on two shared cores); its limits are small so hostile programs end quickly.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_checks import CANARY_FILES, TEST_CONFIG, Canary

from conself.sandbox import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(TEST_CONFIG) as sb:
        yield sb


@pytest.fixture(scope="session")
def canary(sandbox: Sandbox) -> Iterator[Canary]:
    root = Path(tempfile.mkdtemp(prefix="conself-canary-"))
    for name, text in CANARY_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if sandbox.layers.get("landlock"):
        for path in [root, *root.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
    yield Canary(root, secrets.token_hex(6))
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def root_sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A root-owned process that kill(-1)/killpg from a program must not reach."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()
