"""Problem sets straight from the Hugging Face hub, read through the local-file readers.

A path ``hf://datasets/<owner>/<name>[@<revision>]`` is downloaded once into the
hub cache (``HF_HOME``) and then read exactly like a local directory, so the hub
and local files share every parser and every error message.
"""

from __future__ import annotations

import logging
from pathlib import Path

from conself.problems.schema import ProblemSourceError

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf://datasets/"
_DATA_PATTERNS = [
    "*.jsonl",
    "*.jsonl.gz",
    "*.json",
    "*.parquet",
    "*.arrow",
    "**/*.jsonl",
    "**/*.parquet",
    "**/*.arrow",
    "**/*.json",
]


def is_hub_path(path: object) -> bool:
    return isinstance(path, str) and path.startswith(HUB_PREFIX)


def hub_snapshot(path: str, source: str) -> Path:
    """Download (or reuse) the dataset repository named by an ``hf://datasets/`` path."""
    spec = path[len(HUB_PREFIX) :]
    repo_id, _, revision = spec.partition("@")
    if repo_id.count("/") != 1:
        raise ProblemSourceError(
            f"{source}: {path}: expected hf://datasets/<owner>/<name>[@<revision>]"
        )
    from huggingface_hub import snapshot_download

    logger.info("%s: fetching %s from the hub", source, repo_id)
    try:
        local = snapshot_download(
            repo_id, repo_type="dataset", revision=revision or None, allow_patterns=_DATA_PATTERNS
        )
    except Exception as exc:  # connection, auth and not-found errors all stop here alike
        raise ProblemSourceError(
            f"{source}: {path}: could not download from the hub: {exc}"
        ) from exc
    return Path(local)
