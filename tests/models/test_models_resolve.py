"""``resolve_model``: one parameter names the model; bad names are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conself.models import ModelSpecError, checkpoint_fingerprint, resolve_model


def test_local_directory_without_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSpecError, match=r"config\.json"):
        resolve_model({"name": str(tmp_path)})


@pytest.mark.parametrize("name", ["./no/such/model", "../missing-dir", "~/conself-nope-xyz"])
def test_nonexistent_path_is_an_error_not_a_download(name: str) -> None:
    with pytest.raises(ModelSpecError, match="no such directory"):
        resolve_model({"name": name})


def test_name_neither_path_nor_hub_id_is_an_error() -> None:
    with pytest.raises(ModelSpecError, match="not a hub id"):
        resolve_model({"name": "a/b/c"})


@pytest.mark.parametrize("spec", [{"name": ""}, {"name": "   "}, {}])
def test_empty_name_is_an_error(spec: dict) -> None:
    with pytest.raises(ModelSpecError, match="empty"):
        resolve_model(spec)


def test_tiny_without_problems_path_is_an_error() -> None:
    with pytest.raises(ModelSpecError, match="problems_path"):
        resolve_model({"name": "tiny", "tiny": {}})


def test_local_checkpoint_is_returned_as_is(tiny_checkpoint_dir: Path) -> None:
    assert resolve_model({"name": str(tiny_checkpoint_dir)}) == tiny_checkpoint_dir
    fingerprint = checkpoint_fingerprint(tiny_checkpoint_dir)
    assert fingerprint == checkpoint_fingerprint(tiny_checkpoint_dir)
    assert len(fingerprint) == 16


def test_tiny_spec_finds_the_cached_checkpoint(
    tiny_checkpoint_dir: Path, tiny_model_spec: dict
) -> None:
    """``name: tiny`` with the same corpus, seed and steps reuses the built checkpoint."""
    spec = {"name": "tiny", "cache_dir": str(tiny_checkpoint_dir.parent), "tiny": tiny_model_spec}
    assert resolve_model(spec) == tiny_checkpoint_dir
