"""Con-DPO: sigmoid DPO with a per-pair weight, LoRA through peft, on TRL's DPOTrainer.

Plain Python (no Kedro): the training node and the benchmarks call `train_condpo`.
"""

from conself.condpo.config import CondpoConfig
from conself.condpo.loss import condpo_loss, dpo_sigmoid_losses
from conself.condpo.train import build_preference_dataset, load_policy, train_condpo, validate_pairs
from conself.condpo.trainer import ConDPOTrainer, WeightedPreferenceCollator

__all__ = [
    "ConDPOTrainer",
    "CondpoConfig",
    "WeightedPreferenceCollator",
    "build_preference_dataset",
    "condpo_loss",
    "dpo_sigmoid_losses",
    "load_policy",
    "train_condpo",
    "validate_pairs",
]
