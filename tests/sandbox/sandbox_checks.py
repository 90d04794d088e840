"""Escape checks shared by the sandbox tests (imported by conftest and test modules)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conself.sandbox import Job, Sandbox, SandboxConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
TEST_CONFIG = SandboxConfig(
    time_limit_s=1.0, wall_limit_s=3.0, memory_limit_mb=320, output_limit_bytes=1 << 16,
    workers=2, max_processes=32, stack_limit_mb=16,
)  # fmt: skip
CANARY_FILES = {"keep.txt": "canary\n", "sub/deep.txt": "deep canary\n"}


@dataclass
class Canary:
    """A directory outside every scratch that a program must not be able to touch.

    When Landlock is active it is world-writable, so only the sandbox (not file
    permissions) protects it.
    """

    root: Path
    token: str

    def intact(self) -> bool:
        for name, text in CANARY_FILES.items():
            path = self.root / name
            if not path.is_file() or path.read_text() != text:
                return False
        found = {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}
        return found == set(CANARY_FILES)


def escape_paths(token: str) -> list[Path]:
    """Where hostile programs try to write; none of these may exist afterwards."""
    return [Path(d) / f"conself-escape-{token}" for d in ("/tmp", "/dev/shm", "/var/tmp")] + [
        DATA_DIR / f"conself-escape-{token}"
    ]


def uid_processes(uids: list[int]) -> list[str]:
    """Live (non-zombie) processes owned by any of ``uids``."""
    wanted = {str(u) for u in uids}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        real_uids = set(fields.get("Uid", "").split())
        if real_uids & wanted and not fields.get("State", "").strip().startswith("Z"):
            found.append(f"{entry}:{fields.get('Name', '').strip()}")
    return found


def files_owned_by(uids: list[int], roots: tuple[str, ...], skip: str | None) -> list[str]:
    """Files under ``roots`` (two levels deep) owned by a sandbox uid."""
    owned = []
    wanted = set(uids)
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            if skip and dirpath.startswith(skip):
                dirnames[:] = []
                continue
            if dirpath.count(os.sep) - root.count(os.sep) >= 2:
                dirnames[:] = []
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_uid in wanted:
                        owned.append(path)
                except OSError:
                    pass
    return owned


def assert_contained(sandbox: Sandbox, canary: Canary) -> None:
    """The checks every hostile test ends with."""
    assert canary.intact(), "canary directory was modified"
    for path in escape_paths(canary.token):
        assert not path.exists(), f"{path} was written outside the scratch"
    uids = sandbox.uids
    if uids:
        assert uid_processes(uids) == [], "a process of a sandbox uid survived"
        skip = sandbox.scratch_root
        assert files_owned_by(uids, ("/tmp", "/dev/shm", "/var/tmp"), skip) == []
    record = sandbox.run_one(Job("def f(x):\n    return x * 2\n", "call", "f", "[21]"))
    assert (record.outcome, record.output) == ("ok", "42"), "engine broken after the run"
