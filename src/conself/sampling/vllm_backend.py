"""vLLM sampling backend for GPUs: same interface and ``Generation`` records as transformers.

vllm is an optional extra (``pip install "conself[vllm]"``): it is imported inside
``VllmSampler`` only, so the package, its pipelines and CI work without it.

The confidence signals come from the logprobs vLLM returns per generated token
(``SamplingParams(logprobs=k)``: the top k tokens plus the sampled one). With
``logprobs_mode="raw_logprobs"`` (the v1 engine's default, passed explicitly) they are
the model's untempered distribution, as in the transformers backend. The conversion
from vLLM's output to a ``Generation`` is done by the plain functions below, which take
plain Python data shaped like vLLM's (lists of ``{token_id: Logprob}`` dicts) so they
can be tested without vLLM.

Stopping at the closing code fence: vLLM stop strings match anywhere, so ``"```"``
would stop at the *opening* fence. The request stops at ``"\\n```\\n"`` (a closing fence
on its own line; eos covers a fence right before the end), keeps the stop string in the
output, and the completion is then cut at the first token after which
``closes_code_block`` holds: the same cut as the transformers backend.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conself.sampling.backend import Generation, chat_prompt_ids, chat_text, row_seed
from conself.sampling.prompts import closes_code_block

logger = logging.getLogger(__name__)

# A closing fence on its own line. The opening fence is "```python": it never matches.
CLOSING_FENCE_STOP = "\n```\n"
INSTALL_HINT = 'the vLLM backend needs vllm: pip install "conself[vllm]" (GPU machines)'


def _logprob_value(entry: Any) -> float:
    """A vLLM ``Logprob`` (``.logprob``) or a plain float."""
    return float(getattr(entry, "logprob", entry))


def token_nll(position: Mapping[int, Any], token_id: int) -> float:
    """Negative log-likelihood of the sampled ``token_id`` at one position.

    vLLM always includes the sampled token in the position's dict, even when it is
    outside the top k.
    """
    if token_id not in position:
        raise ValueError(f"sampled token {token_id} missing from the returned logprobs")
    return -_logprob_value(position[token_id])


def position_topk_entropy(position: Mapping[int, Any], k: int) -> float:
    """Entropy of the distribution renormalised over the ``k`` most likely tokens.

    The dict holds the top k plus, when it ranks lower, the sampled token: taking the k
    largest log-probabilities drops that extra entry. Matches ``backend.topk_entropy``.
    """
    top = sorted((_logprob_value(v) for v in position.values()), reverse=True)[:k]
    if not top:
        return math.nan
    finite = [v for v in top if v != -math.inf]
    peak = max(finite)
    log_z = peak + math.log(sum(math.exp(v - peak) for v in finite))
    return -sum(math.exp(v - log_z) * (v - log_z) for v in finite)


def closing_cut(token_ids: Sequence[int], decode: Any) -> int | None:
    """Number of tokens up to and including the one that closes the first code block.

    ``decode(ids) -> str`` decodes without special tokens. Only tokens that write a
    backtick can close the block, so the prefix is decoded only at those.
    """
    for n in range(1, len(token_ids) + 1):
        if "`" in decode(token_ids[n - 1 : n]) and closes_code_block(decode(token_ids[:n])):
            return n
    return None


def finish_reason(
    vllm_reason: str | None,
    stop_reason: int | str | None,
    token_ids: Sequence[int],
    end_ids: set[int],
    closed_at: int | None,
) -> tuple[str, int]:
    """This project's finish reason and the number of counted tokens.

    "stop": the completion closed its code block (cut right after the fence, tokens vLLM
    produced past it are dropped); "eos": an end token (counted, as in the transformers
    backend); "length": the budget. vLLM reports "stop" both for eos (``stop_reason``
    None or an eos id) and for a stop string.
    """
    if closed_at is not None:
        return "stop", closed_at
    eos_at = next((i for i, tok in enumerate(token_ids) if tok in end_ids), None)
    if eos_at is not None:
        return "eos", eos_at + 1
    if vllm_reason == "stop" and stop_reason is not None:
        # A stop string matched without a closed block (e.g. a bare opening fence after
        # prose): nothing more will come; the caller drops it as fenceless.
        return "stop", len(token_ids)
    return "length", len(token_ids)


def generation_from_output(
    token_ids: Sequence[int],
    logprobs: Sequence[Mapping[int, Any]] | None,
    vllm_reason: str | None,
    stop_reason: int | str | None,
    *,
    decode: Any,
    end_ids: set[int],
    k: int,
    stop_at_code_block: bool,
) -> Generation:
    """One vLLM ``CompletionOutput`` (its fields, as plain data) -> ``Generation``."""
    token_ids = list(token_ids)
    closed_at = closing_cut(token_ids, decode) if stop_at_code_block else None
    reason, n = finish_reason(vllm_reason, stop_reason, token_ids, end_ids, closed_at)
    mean_nll = mean_entropy = math.nan
    if logprobs is not None and n:
        if len(logprobs) < n:
            raise ValueError(f"{len(logprobs)} logprob positions for {n} counted tokens")
        mean_nll = sum(token_nll(logprobs[i], token_ids[i]) for i in range(n)) / n
        mean_entropy = sum(position_topk_entropy(logprobs[i], k) for i in range(n)) / n
    return Generation(decode(token_ids[:n]), n, reason, mean_nll, mean_entropy)


def merged_checkpoint(model_dir: str | Path, adapter_dir: str | Path, out_dir: Path) -> Path:
    """Write the base plus its adapter lineage, merged, as a plain checkpoint vLLM can load."""
    from conself.condpo.lineage import lineage_adapters, load_lineage_model

    model, tokenizer = load_lineage_model(
        model_dir, lineage_adapters(adapter_dir), with_tokenizer=True
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


class VllmSampler:
    """Chat-templated sampling with vLLM, returning the transformers backend's records.

    ``enable_prefix_caching`` lets the samples of one prompt (and prompts sharing the
    problem text) reuse its KV blocks: the shared prefill of the transformers backend.
    """

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str = "auto",
        adapter_dir: str | Path | None = None,
        topk_entropy_k: int = 15,
        max_prompt_tokens: int | None = None,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        logprobs_mode: str | None = "raw_logprobs",
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self._sampling_params = SamplingParams
        if adapter_dir is not None:
            # vLLM's LoRA support takes one adapter; a round model is a lineage of them.
            self._merged = tempfile.TemporaryDirectory(prefix="conself-vllm-")
            model_dir = merged_checkpoint(model_dir, adapter_dir, Path(self._merged.name))
        options: dict[str, Any] = {
            "model": str(model_dir),
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enable_prefix_caching": enable_prefix_caching,
            "seed": seed,
            # Room for the top k plus the sampled token.
            "max_logprobs": max(20, topk_entropy_k + 1),
        }
        if max_prompt_tokens is not None:
            options["max_model_len"] = max_prompt_tokens
        if logprobs_mode is not None:
            options["logprobs_mode"] = logprobs_mode
        options.update(engine_options or {})
        self.llm = LLM(**options)
        self.tokenizer = self.llm.get_tokenizer()
        self.k = topk_entropy_k
        self.max_prompt_tokens = self.llm.llm_engine.model_config.max_model_len
        self._end_ids = self._eos_ids()

    def chat_text(self, user_message: str) -> str:
        return chat_text(self.tokenizer, user_message)

    def _prompt_ids(self, user_message: str) -> list[int]:
        return chat_prompt_ids(self.tokenizer, user_message)

    def prompt_fits(self, user_message: str, max_new_tokens: int) -> bool:
        """Whether prompt plus budget fits the context window (as the transformers backend)."""
        return len(self._prompt_ids(user_message)) + max_new_tokens <= self.max_prompt_tokens

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
        """One completion per message, in input order (greedy when T == 0).

        Row r draws with seed ``row_seed(seed, r)``, so the same seed gives the same
        samples. A prompt that leaves less than the budget in the window is cut short;
        one that fills it gets an empty completion: never an engine error mid-batch.
        """
        prompts, params, rows = [], [], []
        results: list[Generation | None] = [None] * len(user_messages)
        cut = 0
        for r, message in enumerate(user_messages):
            ids = self._prompt_ids(message)
            budget = max(0, min(max_new_tokens, self.max_prompt_tokens - len(ids)))
            cut += budget < max_new_tokens
            if budget == 0:
                results[r] = Generation("", 0, "length", math.nan, math.nan)
                continue
            prompts.append({"prompt_token_ids": ids})
            params.append(
                self._sampling_params(
                    n=1,
                    temperature=max(temperature, 0.0),
                    top_p=1.0,
                    top_k=-1,
                    max_tokens=budget,
                    seed=row_seed(seed, r) % 2**31,
                    stop=[CLOSING_FENCE_STOP] if stop_at_code_block else None,
                    stop_token_ids=sorted(self._end_ids),
                    include_stop_str_in_output=True,
                    logprobs=self.k if record_confidence else None,
                    skip_special_tokens=True,
                )
            )
            rows.append(r)
        if cut:
            logger.warning(
                "%d of %d prompts leave fewer than %d new tokens in the context window (%d): "
                "their completions are cut short",
                cut,
                len(user_messages),
                max_new_tokens,
                self.max_prompt_tokens,
            )
        outputs = (
            self.llm.generate(prompts, sampling_params=params, use_tqdm=False) if prompts else []
        )
        for r, request in zip(rows, outputs, strict=True):
            out = request.outputs[0]
            results[r] = generation_from_output(
                out.token_ids,
                out.logprobs if record_confidence else None,
                out.finish_reason,
                out.stop_reason,
                decode=self._decode,
                end_ids=self._end_ids,
                k=self.k,
                stop_at_code_block=stop_at_code_block,
            )
        return [g for g in results if g is not None]

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        generation_config = self.llm.llm_engine.model_config.try_get_generation_config()
        eos = generation_config.get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [eos])
        return {i for i in ids if isinstance(i, int)}
