"""Batched sampling with transformers, recording token-level confidence on the fly.

The sampler runs its own decode loop over a KV cache instead of ``model.generate``,
because the callers' batches have a shape ``generate`` cannot exploit:

- *Shared prefill.* A batch holds each prompt several times (the samples of one
  observation prompt, adjacent). Each distinct prompt is prefilled once, unpadded,
  and its KV cache is copied into the rows of its duplicates. On a CPU the prefill
  of a few hundred prompt tokens costs as much as dozens of decode steps.
- *Finished rows leave the batch.* A row that closed its code block (or emitted
  eos) is dropped from the cache at once instead of decoding padding until the
  longest row ends.
- *Per-row random streams.* Each row draws from its own generator seeded by
  (seed, row), so a sample does not depend on which other rows are still running:
  the same seed gives the same samples with or without sharing or pruning.

Per sample the method records the mean token negative log-likelihood and the mean
top-k token entropy (k=15) under the model's untempered distribution, from the
logits each decode step computes anyway (no second forward pass).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

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


@dataclass
class _Row:
    """The running state of one requested sample."""

    budget: int  # new tokens allowed (may be cut below max_new_tokens by the context window)
    ids: list[int] = field(default_factory=list)
    nll_sum: float = 0.0
    entropy_sum: float = 0.0
    finish_reason: str | None = None


def topk_entropy(logp: torch.Tensor, k: int) -> torch.Tensor:
    """Entropy of the distribution renormalised over the ``k`` most likely tokens, per row."""
    top = torch.topk(logp, k=min(k, logp.shape[-1]), dim=-1).values
    top_p = torch.softmax(top, dim=-1)
    return -(top_p * torch.log(top_p.clamp_min(1e-30))).sum(-1)


def chat_text(tokenizer: object, user_message: str) -> str:
    """The model's chat template around one user message, ready for the assistant's turn."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message}], tokenize=False, add_generation_prompt=True
    )


def chat_prompt_ids(tokenizer: object, user_message: str) -> list[int]:
    """Token ids of ``chat_text`` (the template already holds the special tokens)."""
    return tokenizer(chat_text(tokenizer, user_message), add_special_tokens=False).input_ids


def row_seed(seed: int, row: int) -> int:
    """A well-mixed 63-bit seed for row ``row`` of a call made with ``seed``."""
    return int(np.random.SeedSequence([seed, row]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class TransformersSampler:
    """Chat-templated batched sampling from a local checkpoint.

    ``share_prefill`` and ``prune_finished`` exist to measure and test what the two
    optimisations buy; the samples are the same either way (up to float rounding of
    differently shaped batches).
    """

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str = "auto",
        adapter_dir: str | Path | None = None,
        topk_entropy_k: int = 15,
        max_prompt_tokens: int | None = None,
        share_prefill: bool = True,
        prune_finished: bool = True,
    ) -> None:
        self.model, self.tokenizer = load_model_and_tokenizer(model_dir, dtype, adapter_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.k = topk_entropy_k
        window = getattr(self.model.config, "max_position_embeddings", None)
        self.max_prompt_tokens = max_prompt_tokens or window
        self.share_prefill = share_prefill
        self.prune_finished = prune_finished
        self._end_ids = self._eos_ids()
        self._has_backtick: dict[int, bool] = {}

    def chat_text(self, user_message: str) -> str:
        return chat_text(self.tokenizer, user_message)

    def prompt_fits(self, user_message: str, max_new_tokens: int) -> bool:
        """Whether prompt plus budget fits the context window.

        Callers skip prompts that do not fit. ``generate`` itself never fails on one:
        it cuts that row's budget to what the window leaves (finish reason "length";
        an empty completion when the prompt alone fills the window) and logs a warning.
        """
        n = len(chat_prompt_ids(self.tokenizer, user_message))
        return self.max_prompt_tokens is None or n + max_new_tokens <= self.max_prompt_tokens

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
        """Sample one completion per message (greedy when T == 0), in input order."""
        pairs = self.generate_with_ids(
            user_messages,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
            stop_at_code_block=stop_at_code_block,
            record_confidence=record_confidence,
        )
        return [gen for gen, _ in pairs]

    @torch.inference_mode()
    def generate_with_ids(
        self,
        user_messages: Sequence[str],
        *,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        stop_at_code_block: bool = False,
        record_confidence: bool = True,
    ) -> list[tuple[Generation, list[int]]]:
        """``generate``, also returning each completion's counted token ids (for checks)."""
        texts = [self.chat_text(m) for m in user_messages]
        # Distinct prompts in order of first appearance; each row points at its prompt.
        unique: dict[str, int] = {}
        if self.share_prefill:
            owner = [unique.setdefault(t, len(unique)) for t in texts]
            distinct = list(unique)
        else:
            owner, distinct = list(range(len(texts))), texts
        prompt_ids = [self.tokenizer(t, add_special_tokens=False).input_ids for t in distinct]
        rows = [_Row(self._budget(len(prompt_ids[u]), max_new_tokens)) for u in owner]
        cut = sum(row.budget < max_new_tokens for row in rows)
        if cut:
            logger.warning(
                "%d of %d prompts leave fewer than %d new tokens in the context window (%s): "
                "their completions are cut short",
                cut,
                len(rows),
                max_new_tokens,
                self.max_prompt_tokens,
            )
        for row in rows:
            if row.budget <= 0:
                row.finish_reason = "length"
        active = [r for r, row in enumerate(rows) if row.finish_reason is None]
        if active:
            self._decode(
                rows,
                active,
                [owner[r] for r in active],
                prompt_ids,
                temperature=temperature,
                seed=seed,
                stop_at_code_block=stop_at_code_block,
                record_confidence=record_confidence,
            )
        return [(self._to_generation(row, record_confidence), row.ids) for row in rows]

    def _budget(self, prompt_len: int, max_new_tokens: int) -> int:
        if self.max_prompt_tokens is None:
            return max_new_tokens
        return max(0, min(max_new_tokens, self.max_prompt_tokens - prompt_len))

    def _prefill(
        self, prompt_ids: list[list[int]], needed: list[int]
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prefill each needed distinct prompt once, unpadded, and left-pad the results.

        Returns per layer (keys, values) of shape [len(needed), heads, longest, head_dim],
        the attention mask, the next position of each prompt and its last logits. One
        prompt at a time wastes no compute on padding; on a CPU a few hundred tokens
        already fill the matrix units, so batching the prefill would buy nothing.
        """
        device = self.model.device
        longest = max(len(prompt_ids[u]) for u in needed)
        layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        last_logits = []
        for i, u in enumerate(needed):
            ids = torch.tensor([prompt_ids[u]], device=device)
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            last_logits.append(out.logits[0, -1])
            for layer_idx, layer in enumerate(out.cache.layers):
                if i == 0:
                    shape = (len(needed), *layer.keys.shape[1:2], longest, layer.keys.shape[-1])
                    layers.append(
                        (
                            layer.keys.new_zeros(shape),
                            layer.values.new_zeros(shape[:-1] + layer.values.shape[-1:]),
                        )
                    )
                keys, values = layers[layer_idx]
                n = layer.keys.shape[-2]
                keys[i, :, longest - n :] = layer.keys[0]
                values[i, :, longest - n :] = layer.values[0]
        lengths = torch.tensor([len(prompt_ids[u]) for u in needed], device=device)
        mask = (torch.arange(longest, device=device) >= (longest - lengths)[:, None]).long()
        return layers, mask, lengths, torch.stack(last_logits)

    def _decode(
        self,
        rows: list[_Row],
        active: list[int],
        active_owner: list[int],
        prompt_ids: list[list[int]],
        *,
        temperature: float,
        seed: int,
        stop_at_code_block: bool,
        record_confidence: bool,
    ) -> None:
        """Decode the ``active`` rows until each stops, filling in their ``_Row`` state."""
        device = self.model.device
        needed = sorted(set(active_owner))
        slot = {u: i for i, u in enumerate(needed)}
        layers, mask, positions, logits = self._prefill(prompt_ids, needed)
        # Replicate each prefilled prompt into the rows of its duplicates.
        pick = torch.tensor([slot[u] for u in active_owner], device=device)
        cache = DynamicCache(ddp_cache_data=[(k[pick], v[pick]) for k, v in layers])
        del layers
        mask, positions, logits = mask[pick], positions[pick], logits[pick]
        generators = [self._generator(seed, r) for r in active]
        greedy = temperature <= 0
        live = [True] * len(active)  # False: finished but still in the batch (no pruning)
        while True:
            scores = logits.float()
            if greedy:
                chosen = scores.argmax(-1)
            else:
                probs = torch.softmax(scores / temperature, dim=-1)
                cdf = probs.cumsum(-1)
                draws = torch.cat([torch.rand(1, generator=g, device=device) for g in generators])
                # Inverse-CDF sampling with one uniform draw per row from the row's own stream.
                chosen = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True)[:, 0]
                chosen = chosen.clamp_max(scores.shape[-1] - 1)
            tokens = chosen.tolist()
            if record_confidence:
                logp = torch.log_softmax(scores, dim=-1)
                nll = (-logp.gather(-1, chosen[:, None])[:, 0]).tolist()
                entropy = topk_entropy(logp, self.k).tolist()
            for j, r in enumerate(active):
                if not live[j]:
                    continue
                row = rows[r]
                row.ids.append(tokens[j])
                if record_confidence:
                    row.nll_sum += nll[j]
                    row.entropy_sum += entropy[j]
                row.finish_reason = self._finish_reason(row, stop_at_code_block)
                live[j] = row.finish_reason is None
            if not any(live):
                return
            if self.prune_finished and not all(live):
                keep = [j for j, alive in enumerate(live) if alive]
                sel = torch.tensor(keep, device=device)
                for layer in cache.layers:
                    layer.batch_select_indices(sel)
                mask, positions, chosen = mask[sel], positions[sel], chosen[sel]
                active = [active[j] for j in keep]
                generators = [generators[j] for j in keep]
                live = [True] * len(keep)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            out = self.model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=positions[:, None],
                cache=cache,
                use_cache=True,
            )
            positions = positions + 1
            logits = out.logits[:, -1]

    def _generator(self, seed: int, row: int) -> torch.Generator:
        generator = torch.Generator(device=self.model.device)
        generator.manual_seed(row_seed(seed, row))
        return generator

    def _finish_reason(self, row: _Row, stop_at_code_block: bool) -> str | None:
        """Why ``row`` stops after its latest token, or None while it goes on."""
        token = row.ids[-1]
        if token in self._end_ids:
            return "eos"
        # The block can only close on a token that writes a backtick: decode the whole
        # completion (token boundaries may split the fence) only then.
        if (
            stop_at_code_block
            and self._writes_backtick(token)
            and closes_code_block(self.tokenizer.decode(row.ids, skip_special_tokens=True))
        ):
            return "stop"
        if len(row.ids) >= row.budget:
            return "length"
        return None

    def _writes_backtick(self, token: int) -> bool:
        known = self._has_backtick.get(token)
        if known is None:
            known = "`" in self.tokenizer.decode([token], skip_special_tokens=True)
            self._has_backtick[token] = known
        return known

    def _to_generation(self, row: _Row, record_confidence: bool) -> Generation:
        n = len(row.ids)
        mean_nll = mean_entropy = math.nan
        if record_confidence and n:
            mean_nll, mean_entropy = row.nll_sum / n, row.entropy_sum / n
        text = self.tokenizer.decode(row.ids, skip_special_tokens=True)
        return Generation(text, n, row.finish_reason or "length", mean_nll, mean_entropy)

    def _eos_ids(self) -> set[int]:
        """Tokens that end a completion: the model's eos ids and the pad token."""
        ids = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        if self.tokenizer.pad_token_id is not None:
            ids.add(self.tokenizer.pad_token_id)
        return ids
