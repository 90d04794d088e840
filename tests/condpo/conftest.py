"""Offline builders for a tiny tokenizer and a tiny randomly initialised Qwen2 model.

Why: there is no hub access and only two shared CPU cores, so the Con-DPO tests
need a model that is built locally in well under a second and still goes
through the real transformers / peft / TRL code paths (chat template, fused LM
head, LoRA on all linear layers).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>"]

# The prompt rendered with add_generation_prompt is a prefix of prompt + answer,
# which is what TRL needs to find where the completion starts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def sub(a, b):\n    return a - b\n",
    "Write a function that adds two numbers.",
    "Write a function that reverses a string.",
    "def rev(s):\n    return s[::-1]\n",
    "for i in range(10):\n    print(i)\n",
]

PAIRS = [
    {
        "prompt": "Write a function that adds two numbers.",
        "chosen": "def add(a, b):\n    return a + b\n",
        "rejected": "def add(a, b):\n    return a - b\n",
        "weight": 1.0,
    },
    {
        "prompt": "Write a function that reverses a string.",
        "chosen": "def rev(s):\n    return s[::-1]\n",
        "rejected": "def rev(s):\n    return s\n",
        "weight": 0.5,
    },
    {
        "prompt": "Write a function that subtracts b from a.",
        "chosen": "def sub(a, b):\n    return a - b\n",
        "rejected": "def sub(a, b):\n    return b - a + 1\n",
        "weight": 0.75,
    },
    {
        "prompt": "Print the numbers below ten.",
        "chosen": "for i in range(10):\n    print(i)\n",
        "rejected": "print(10)\n",
        "weight": 0.25,
    },
]


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on a few strings; every byte stays representable."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(vocab_size: int, seed: int = 0) -> Qwen2ForCausalLM:
    """A 2-layer, 32-wide Qwen2 with random weights, reproducible from `seed`."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
    )
    return Qwen2ForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return build_tiny_tokenizer()


@pytest.fixture()
def make_model(tiny_tokenizer: PreTrainedTokenizerFast) -> Callable[[int], Qwen2ForCausalLM]:
    """Factory: each call returns a fresh model, so trainers never share one."""

    def _make(seed: int = 0) -> Qwen2ForCausalLM:
        return build_tiny_model(len(tiny_tokenizer), seed=seed)

    return _make


@pytest.fixture(scope="session")
def tiny_model_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: PreTrainedTokenizerFast
) -> Path:
    """A saved checkpoint (model + tokenizer), as train_condpo receives it."""
    path = tmp_path_factory.mktemp("tiny_model")
    build_tiny_model(len(tiny_tokenizer)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def pairs_df() -> pd.DataFrame:
    return pd.DataFrame(PAIRS)
