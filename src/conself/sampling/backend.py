"""Batched sampling with transformers, recording token-level confidence on the fly.

Per sample the method records the mean token negative log-likelihood and the
mean top-k token entropy (k=15) under the model's own distribution. They are
taken from the logits that ``generate`` computes anyway (no second forward
pass) by a logits processor that sits before the sampling warpers, so it sees
the untempered model distribution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from conself.sampling.prompts import closes_code_block

logger = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    Without it PyTorch emulates bf16 matmuls: measured about 2x slower than float32
    for sampling and over 10x slower for training on the 2-core AVX2 machines here.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str) -> torch.dtype:
    """``auto``: bfloat16 on GPUs and bf16-capable CPUs, float32 elsewhere."""
    if dtype == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[
            dtype
        ]
    except KeyError as exc:
        raise ValueError(
            f"parameter 'dtype': {dtype!r} is not one of auto, bfloat16, float16, float32"
        ) from exc


def load_model_and_tokenizer(
    model_dir: str | Path, dtype: str = "auto", adapter_dir: str | Path | None = None
) -> tuple[torch.nn.Module, object]:
    """Load a saved checkpoint (and optionally merge a LoRA adapter) for inference."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = resolve_dtype(dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if adapter_dir is None:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype)
    else:
        # A round model is the base plus every earlier round's adapter, in order.
        from conself.condpo.lineage import lineage_adapters, load_lineage_model

        model = load_lineage_model(model_dir, lineage_adapters(adapter_dir), dtype=torch_dtype)
    model.to(device).eval()
    return model, tokenizer


@dataclass(frozen=True)
class Generation:
    """One sampled completion with its token-level confidence."""

    text: str
    n_tokens: int
    finish_reason: str  # "stop" (code block closed), "eos", "length"
    mean_nll: float
    mean_topk_entropy: float


class _ConfidenceRecorder(LogitsProcessor):
    """Accumulates per-sequence NLL of the chosen tokens and top-k entropy, step by step.

    At step t the chosen token of step t-1 is the last column of ``input_ids``,
    so its log-probability is read from the previous step's distribution; the
    last step is settled after ``generate`` returns.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.prev_logp: torch.Tensor | None = None
        self.nll: list[torch.Tensor] = []
        self.entropy: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev_logp is not None:
            self.settle(input_ids[:, -1])
        logp = torch.log_softmax(scores.float(), dim=-1)
        top = torch.topk(logp, k=min(self.k, logp.shape[-1]), dim=-1).values
        top_p = torch.softmax(top, dim=-1)  # renormalised over the top k
        self.entropy.append(-(top_p * torch.log(top_p.clamp_min(1e-30))).sum(-1))
        self.prev_logp = logp
        return scores

    def settle(self, tokens: torch.Tensor) -> None:
        assert self.prev_logp is not None
        self.nll.append(-self.prev_logp.gather(-1, tokens[:, None].to(self.prev_logp.device))[:, 0])
        self.prev_logp = None


class _CodeBlockClosed(StoppingCriteria):
    """Stops each sequence once its completion has closed its first code block."""

    def __init__(self, tokenizer: object, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stopped_at: dict[int, int] = {}  # row -> number of new tokens when the block closed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_: object):
        n_new = input_ids.shape[1] - self.prompt_len
        done = []
        for row, ids in enumerate(input_ids[:, self.prompt_len :]):
            if row in self.stopped_at:
                done.append(True)
                continue
            closed = closes_code_block(self.tokenizer.decode(ids, skip_special_tokens=True))
            if closed:
                self.stopped_at[row] = n_new
            done.append(closed)
        return torch.tensor(done, device=input_ids.device)


class TransformersSampler:
    """Chat-templated batched sampling from a local checkpoint."""

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str = "auto",
        adapter_dir: str | Path | None = None,
        topk_entropy_k: int = 15,
        max_prompt_tokens: int | None = None,
    ) -> None:
        self.model, self.tokenizer = load_model_and_tokenizer(model_dir, dtype, adapter_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.k = topk_entropy_k
        window = getattr(self.model.config, "max_position_embeddings", None)
        self.max_prompt_tokens = max_prompt_tokens or window

    def chat_text(self, user_message: str) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_message}], tokenize=False, add_generation_prompt=True
        )

    def prompt_fits(self, user_message: str, max_new_tokens: int) -> bool:
        """Whether prompt plus budget fits the context window (over-long prompts are skipped)."""
        n = len(self.tokenizer(self.chat_text(user_message), add_special_tokens=False).input_ids)
        return self.max_prompt_tokens is None or n + max_new_tokens <= self.max_prompt_tokens

    @torch.inference_mode()
    def generate(
        self,
        user_messages: Sequence[str],
        *,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        stop_at_code_block: bool = False,
        record_confidence: bool = True,
    ) -> list[Generation]:
        """Sample one completion per message in a single padded batch (greedy when T == 0)."""
        texts = [self.chat_text(m) for m in user_messages]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.model.device)
        prompt_len = enc.input_ids.shape[1]
        recorder = _ConfidenceRecorder(self.k) if record_confidence else None
        closer = _CodeBlockClosed(self.tokenizer, prompt_len) if stop_at_code_block else None
        stops = StoppingCriteriaList([closer] if closer else [])
        torch.manual_seed(seed)
        greedy = temperature <= 0
        out = self.model.generate(
            **enc,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_k=0 if not greedy else None,
            top_p=1.0 if not greedy else None,
            repetition_penalty=1.0,
            max_new_tokens=max_new_tokens,
            logits_processor=LogitsProcessorList([recorder] if recorder else []),
            stopping_criteria=stops,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new_tokens = out[:, prompt_len:]
        if recorder is not None and recorder.prev_logp is not None and new_tokens.shape[1]:
            recorder.settle(new_tokens[:, len(recorder.nll)])
        return self._collect(new_tokens, recorder, closer.stopped_at if closer else {})

    def _collect(
        self,
        new_tokens: torch.Tensor,
        recorder: _ConfidenceRecorder | None,
        stopped_at: dict[int, int],
    ) -> list[Generation]:
        # A finished row is padded (pad may equal eos): its length ends at the first eos/pad.
        end_ids = self._eos_ids()
        nll = torch.stack(recorder.nll, dim=1).cpu() if recorder and recorder.nll else None
        ent = torch.stack(recorder.entropy, dim=1).cpu() if recorder and recorder.entropy else None
        results = []
        for row in range(new_tokens.shape[0]):
            ids = new_tokens[row].tolist()
            if row in stopped_at:
                length, reason = stopped_at[row], "stop"
            else:
                eos_at = next((i for i, tok in enumerate(ids) if tok in end_ids), None)
                length = len(ids) if eos_at is None else eos_at + 1
                reason = "length" if eos_at is None else "eos"
            text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
            mean_nll = mean_ent = math.nan
            if nll is not None and ent is not None and length:
                mean_nll = float(nll[row, :length].mean())
                mean_ent = float(ent[row, :length].mean())
            results.append(Generation(text, length, reason, mean_nll, mean_ent))
        return results

    def _eos_ids(self) -> set[int]:
        ids = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        if self.tokenizer.pad_token_id is not None:
            ids.add(self.tokenizer.pad_token_id)
        return ids
