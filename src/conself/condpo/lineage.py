"""Round lineage: a round model is a base checkpoint plus an ordered list of LoRA adapters.

Why: round N starts from round N-1's model, but storing a full 7B checkpoint per
round is wasteful. Each round stores only its adapter and a small metadata file
(base fingerprint, parent adapters, round index, config); the round model is
rebuilt by merging the adapters into the base, in order, with the same arithmetic
training used, so the rebuild is exact.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from conself.condpo.config import resolve_dtype
from conself.models import checkpoint_fingerprint

LINEAGE_FILE = "lineage.json"
LINEAGE_VERSION = 1


class LineageError(ValueError):
    """A stored lineage does not fit the base checkpoint or the adapters it is given with."""


def adapter_fingerprint(adapter_dir: str | Path) -> str:
    """Content hash of an adapter's weights (adapter files are small: MBs, not GBs)."""
    path = Path(adapter_dir)
    weights = sorted(path.glob("adapter_model.*"))
    if not (path / "adapter_config.json").is_file() or not weights:
        raise FileNotFoundError(
            f"{adapter_dir} is not a LoRA adapter directory (need adapter_config.json and "
            "adapter_model.safetensors)"
        )
    digest = hashlib.sha256()
    for item in [path / "adapter_config.json", *weights]:
        digest.update(item.name.encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()[:16]


def read_lineage(adapter_dir: str | Path) -> dict[str, Any]:
    """The lineage record stored next to an adapter."""
    path = Path(adapter_dir) / LINEAGE_FILE
    if not path.is_file():
        raise LineageError(f"no {LINEAGE_FILE} in {adapter_dir}: not an adapter of a round lineage")
    return json.loads(path.read_text())


def lineage_adapters(adapter_dir: str | Path) -> list[str]:
    """The full ordered adapter list of a round model: recorded parents, then `adapter_dir`.

    Why: callers that hold only the last round's adapter (e.g. an evaluation step) can
    rebuild the round model with `load_lineage_model(base, lineage_adapters(adapter))`.
    An adapter without a lineage record is a lineage of one.
    """
    path = Path(adapter_dir)
    if not (path / LINEAGE_FILE).is_file():
        return [str(path)]
    return [p["adapter_dir"] for p in read_lineage(path).get("parents", [])] + [str(path)]


def write_lineage(
    adapter_dir: str | Path,
    *,
    base_dir: str | Path,
    base_fingerprint: str,
    parent_adapters: Sequence[str | Path],
    round_index: int,
    method: str,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record what this adapter was trained on top of; returns the record."""
    record = {
        "version": LINEAGE_VERSION,
        "round_index": int(round_index),
        "method": method,
        "base_model_dir": str(base_dir),
        "base_fingerprint": base_fingerprint,
        "parents": [
            {"adapter_dir": str(p), "fingerprint": adapter_fingerprint(p)} for p in parent_adapters
        ],
        "config": config,
        **(extra or {}),
    }
    (Path(adapter_dir) / LINEAGE_FILE).write_text(json.dumps(record, indent=2, default=str))
    return record


def verify_lineage(
    base_dir: str | Path, adapter_dirs: Sequence[str | Path], base_fp: str | None = None
) -> str:
    """Check that every adapter was trained on this base, on top of exactly the adapters before it.

    Returns the base fingerprint. Adapters are matched to their recorded parents by
    content hash, so a lineage survives being moved but not being reordered or edited.
    """
    base_fp = base_fp or checkpoint_fingerprint(base_dir)
    fingerprints: list[str] = []
    for i, adapter in enumerate(adapter_dirs):
        record = read_lineage(adapter)
        recorded = record.get("base_fingerprint")
        if recorded != base_fp:
            raise LineageError(
                f"adapter {adapter} was trained on base fingerprint {recorded}, but the base "
                f"{base_dir} has fingerprint {base_fp}: this lineage does not belong to this base"
            )
        parents = [p["fingerprint"] for p in record.get("parents", [])]
        if parents != fingerprints:
            raise LineageError(
                f"adapter {adapter} (position {i}) was trained on top of {len(parents)} parent "
                f"adapter(s) {parents}, but is given after {len(fingerprints)} adapter(s) "
                f"{fingerprints}: adapters must be applied in their training order"
            )
        fingerprints.append(adapter_fingerprint(adapter))
    return base_fp


def load_base_model(base_dir: str | Path, dtype: str | torch.dtype | None) -> PreTrainedModel:
    """`from_pretrained`, dropping a stale GGUF quantization flag from a de-quantised checkpoint.

    Why: the embedded model is converted from a GGUF file into plain safetensors, but
    its config keeps ``quantization_config: {quant_method: gguf}``; transformers then
    marks the (plain float) model as GGUF-quantised and the Trainer refuses to train it.
    """
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=resolve_dtype(dtype))
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if str(getattr(method, "value", method)).lower() == "gguf" and all(
        p.is_floating_point() for p in model.parameters()
    ):
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model


def merge_adapters(model: PreTrainedModel, adapter_dirs: Sequence[str | Path]) -> PreTrainedModel:
    """Merge adapters into `model` in order (the same arithmetic as training's starting model)."""
    for adapter in adapter_dirs:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model


def load_lineage_model(
    base_dir: str | Path,
    adapter_dirs: Sequence[str | Path] = (),
    dtype: str | torch.dtype | None = torch.float32,
    *,
    verify: bool = True,
    with_tokenizer: bool = False,
) -> PreTrainedModel | tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Rebuild a round model: the base checkpoint with every adapter merged in, in order.

    A lineage whose recorded base fingerprint differs from `base_dir`'s is a
    `LineageError` naming both fingerprints and the adapter. The model is returned
    in eval mode; `dtype` must be the dtype training loaded the base in
    (``model_dtype``, float32 by default) for a bitwise-exact rebuild.
    """
    adapter_dirs = [str(a) for a in adapter_dirs]
    if verify and adapter_dirs:
        verify_lineage(base_dir, adapter_dirs)
    model = merge_adapters(load_base_model(base_dir, dtype), adapter_dirs)
    model.eval()
    if not with_tokenizer:
        return model
    tokenizer_dir = str(base_dir)
    if adapter_dirs and (Path(adapter_dirs[-1]) / "tokenizer_config.json").is_file():
        tokenizer_dir = adapter_dirs[-1]
    return model, AutoTokenizer.from_pretrained(tokenizer_dir)
