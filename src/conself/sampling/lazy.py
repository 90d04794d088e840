"""A sampler that loads its model on first use, and the identity that keys its samples."""

from __future__ import annotations

from typing import Any

from conself.sampling.backend import TransformersSampler
from conself.sampling.vllm_backend import VllmSampler

# Part of every sampling shard's key: raised when a change to the samplers changes what
# the same model, prompts and seed produce, so shards from older code are not reused.
SAMPLER_KEY_VERSION = 2


def model_identity(
    model: dict[str, Any], dtype: str, backend: str = "transformers"
) -> dict[str, Any]:
    """What makes two samplers produce the same tokens: weights (base + adapters), dtype and
    the backend (vLLM and transformers draw different samples for the same seed)."""
    identity = {
        "sampler": SAMPLER_KEY_VERSION,
        "fingerprint": model["fingerprint"],
        "adapters": list(model.get("adapter_fingerprints") or []),
        "dtype": dtype,
    }
    if backend != "transformers":
        identity["backend"] = backend
    return identity


class LazySampler:
    """Loads the model on first use, so a fully resumed stage never loads it at all.

    ``backend`` (transformers or vllm) and ``options`` go to :func:`make_sampler`.
    """

    def __init__(
        self,
        model: dict[str, Any],
        dtype: str,
        adapter_dir: str | None,
        backend: str = "transformers",
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.dtype, self.adapter_dir = model, dtype, adapter_dir
        self.backend, self.options = backend, dict(options or {})
        self._sampler: TransformersSampler | VllmSampler | None = None

    def get(self) -> TransformersSampler | VllmSampler:
        if self._sampler is None:
            from conself.sampling import make_sampler

            self._sampler = make_sampler(
                self.model["path"],
                self.backend,
                dtype=self.dtype,
                adapter_dir=self.adapter_dir,
                **self.options,
            )
        return self._sampler


def lazy_sampler(model: dict[str, Any], params: dict[str, Any]) -> LazySampler:
    """The sampler a stage's parameters ask for (``dtype``, ``backend``, ``backend_options``)."""
    return LazySampler(
        model,
        params.get("dtype", "auto"),
        model.get("adapter_dir"),
        params.get("backend", "transformers"),
        params.get("backend_options"),
    )


def sampler_identity(model: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``model_identity`` for a stage's parameters."""
    return model_identity(model, params.get("dtype", "auto"), params.get("backend", "transformers"))
