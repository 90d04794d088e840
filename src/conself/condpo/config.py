"""`CondpoConfig`: Con-DPO hyper-parameters, defaulting to the paper's reference values.

Why our own dataclass rather than `DPOConfig`: Kedro passes a plain dict of
parameters; this keeps the knobs the project exposes small, named as in the
paper, and maps them onto TRL/transformers (whose names move between releases,
e.g. transformers 5 folded ``warmup_ratio`` into ``warmup_steps``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from trl import DPOConfig, SFTConfig

# transformers 5.2x renamed gradient_checkpointing (kept as a deprecated alias).
_CHECKPOINTING_FIELD = (
    "activation_checkpointing"
    if "activation_checkpointing" in DPOConfig.__dataclass_fields__
    else "gradient_checkpointing"
)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str:
    """Accept a torch dtype, a name ("bfloat16", "float32", ...) or "auto"."""
    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)} or 'auto'")
    return _DTYPES[name]


@dataclass
class CondpoConfig:
    """Con-DPO training settings. Defaults are the paper's reference (GPU) hyper-parameters.

    ``use_cpu=None`` means "CPU when no CUDA device is visible". ``weighted=False``
    trains plain DPO on the same pairs (the unweighted baseline). ``model_dtype`` is
    the dtype the base model's weights are loaded in; ``bf16`` is mixed-precision
    autocast, which also speeds up CPUs that support it.
    """

    beta: float = 0.1
    learning_rate: float = 5e-6
    num_train_epochs: float = 3
    max_steps: int = -1
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 8
    max_length: int | None = 2048
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    bf16: bool = True
    use_cpu: bool | None = None
    seed: int = 42
    weighted: bool = True
    logging_steps: int = 1
    gradient_checkpointing: bool = True
    model_dtype: str = "float32"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    save_metadata: bool = True
    # With a checkpoint directory, save a resumable checkpoint every this many optimizer
    # steps (adapter, optimizer, scheduler, RNG); an interrupted run resumes from the last.
    checkpoint_steps: int = 10
    dpo_overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, params: dict[str, Any] | None) -> CondpoConfig:
        """Build from a Kedro parameter dict, naming unknown keys instead of a bare TypeError."""
        params = dict(params or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown Con-DPO parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**params)

    def resolved_use_cpu(self) -> bool:
        return (not torch.cuda.is_available()) if self.use_cpu is None else bool(self.use_cpu)

    def _common_kwargs(self, output_dir: str, checkpoints: bool = False) -> dict[str, Any]:
        """Settings shared by the DPO and the SFT trainers (same schedule, batch, precision).

        ``checkpoints``: save resumable checkpoints in ``output_dir`` every
        ``checkpoint_steps`` steps (the final adapter is saved separately).
        """
        return {
            "output_dir": output_dir,
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.num_train_epochs,
            "max_steps": self.max_steps,
            "lr_scheduler_type": self.lr_scheduler_type,
            "warmup_steps": self.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_length": self.max_length,
            "bf16": self.bf16,
            "use_cpu": self.resolved_use_cpu(),
            "seed": self.seed,
            "data_seed": self.seed,
            "logging_steps": self.logging_steps,
            _CHECKPOINTING_FIELD: self.gradient_checkpointing,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "optim": self.optim,
            "report_to": "none",
            "save_strategy": "steps" if checkpoints else "no",
            "save_steps": self.checkpoint_steps,
            "save_total_limit": 2,
            "disable_tqdm": True,
        }

    def to_dpo_config(self, output_dir: str, checkpoints: bool = False) -> DPOConfig:
        """The TRL config: sigmoid DPO, no reporting (the caller logs to MLflow)."""
        kwargs = {
            **self._common_kwargs(output_dir, checkpoints),
            "beta": self.beta,
            "loss_type": ["sigmoid"],
        }
        kwargs.update(self.dpo_overrides)
        return DPOConfig(**kwargs)

    def to_sft_config(self, output_dir: str, checkpoints: bool = False) -> SFTConfig:
        """The SFT baseline's TRL config: loss on the completion only, no packing.

        ``dpo_overrides`` keys that SFTConfig also has are applied too (e.g. ddp options).
        """
        kwargs = {
            **self._common_kwargs(output_dir, checkpoints),
            "completion_only_loss": True,
            "packing": False,
        }
        sft_fields = SFTConfig.__dataclass_fields__
        kwargs.update({k: v for k, v in self.dpo_overrides.items() if k in sft_fields})
        return SFTConfig(**kwargs)
