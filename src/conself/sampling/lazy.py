"""A sampler that loads its model on first use, and the identity that keys its samples."""

from __future__ import annotations

from typing import Any

from conself.sampling.backend import TransformersSampler


def model_identity(model: dict[str, Any], dtype: str) -> dict[str, Any]:
    """What makes two samplers produce the same tokens: weights (base + adapters) and dtype."""
    return {
        "fingerprint": model["fingerprint"],
        "adapters": list(model.get("adapter_fingerprints") or []),
        "dtype": dtype,
    }


class LazySampler:
    """Loads the model on first use, so a fully resumed stage never loads it at all."""

    def __init__(self, model: dict[str, Any], dtype: str, adapter_dir: str | None) -> None:
        self.model, self.dtype, self.adapter_dir = model, dtype, adapter_dir
        self._sampler: TransformersSampler | None = None

    def get(self) -> TransformersSampler:
        if self._sampler is None:
            self._sampler = TransformersSampler(
                self.model["path"], dtype=self.dtype, adapter_dir=self.adapter_dir
            )
        return self._sampler
