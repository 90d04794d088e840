"""Con-DPO: sigmoid DPO with a per-pair weight, LoRA through peft, on TRL's DPOTrainer.

Plain Python (no Kedro): the training node and the benchmarks call `train_condpo`.
Baselines on the same pairs (``method="dpo"`` unweighted, ``method="sft"`` on the
chosen programs) and round lineages (base + ordered adapters) live here too.
"""

from conself.condpo.config import CondpoConfig
from conself.condpo.lineage import (
    LineageError,
    adapter_fingerprint,
    lineage_adapters,
    load_lineage_model,
    read_lineage,
    verify_lineage,
)
from conself.condpo.loss import condpo_loss, dpo_sigmoid_losses
from conself.condpo.train import (
    METHODS,
    build_preference_dataset,
    build_sft_dataset,
    load_policy,
    train_adapter,
    train_condpo,
    validate_pairs,
)
from conself.condpo.trainer import ConDPOTrainer, WeightedPreferenceCollator

__all__ = [
    "METHODS",
    "ConDPOTrainer",
    "CondpoConfig",
    "LineageError",
    "WeightedPreferenceCollator",
    "adapter_fingerprint",
    "build_preference_dataset",
    "build_sft_dataset",
    "condpo_loss",
    "dpo_sigmoid_losses",
    "lineage_adapters",
    "load_lineage_model",
    "load_policy",
    "read_lineage",
    "train_adapter",
    "train_condpo",
    "validate_pairs",
    "verify_lineage",
]
