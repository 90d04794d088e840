"""A tiny, locally built Qwen2-architecture model for fast rounds and tests.

A randomly initialised transformer emits noise: no ```python fence, no
program, no round. So the tiny model is a real (small) Qwen2 network with a
byte-level BPE tokenizer trained here, briefly pre-trained on a small corpus
of observation lists and fenced solutions drawn from the ``solutions`` field of
a TACO-format problem file: the same way a real code model has seen code
before it self-improves. Everything is seeded, so the same corpus gives the
same checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from pathlib import Path

import torch

from conself.models.publish import publish_directory

logger = logging.getLogger(__name__)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_OBSERVATION_LINES = [
    "read the whole input before computing the answer",
    "the input may contain negative numbers",
    "print exactly one line with the result",
    "convert the text to integers first",
    "keep the solution simple and direct",
    "watch for an empty line at the end of the input",
]
_DONE = "conself_tiny.json"
# Raised whenever pre-training changes, so a cached checkpoint of an older recipe is rebuilt.
_RECIPE = "r2"


def _corpus(problems_path: str | Path, seed: int) -> list[list[dict[str, str]]]:
    """Chat conversations: observation answers and fenced programs, skewed per problem.

    Each problem's own solutions get a problem-dependent share of the code answers
    (the rest are other problems' programs), so the tiny model agrees with itself
    on some problems and guesses on others: the spread of semantic entropy that a
    round needs.
    """
    from conself.problems import load_problems
    from conself.sampling.prompts import code_prompt, observation_prompt

    problems, _ = load_problems("taco", str(problems_path))
    solutions = _solutions_by_line(problems_path)
    all_programs = [s for sols in solutions for s in sols]
    rng = random.Random(seed)
    conversations = []
    for i, problem in enumerate(problems.itertuples(index=False)):
        own = solutions[i] if i < len(solutions) else []
        share = (0.9, 0.75, 0.6, 0.45)[i % 4]
        for _ in range(24):
            lines = rng.sample(_OBSERVATION_LINES, 3)
            answer = "\n".join(f"Observation {j + 1}: {t}." for j, t in enumerate(lines))
            conversations.append(
                [
                    {"role": "user", "content": observation_prompt(problem.prompt)},
                    {"role": "assistant", "content": answer},
                ]
            )
            hint = rng.choice([None, *lines])
            program = rng.choice(own) if own and rng.random() < share else rng.choice(all_programs)
            conversations.append(
                [
                    {
                        "role": "user",
                        "content": code_prompt(
                            problem.prompt, problem.kind, problem.entry_point, hint
                        ),
                    },
                    {"role": "assistant", "content": f"```python\n{program}\n```"},
                ]
            )
    return conversations


def _solutions_by_line(path: str | Path) -> list[list[str]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                sols = json.loads(line).get("solutions") or []
                out.append(json.loads(sols) if isinstance(sols, str) else list(sols))
    return out


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_checkpoint(
    cache_dir: str | Path, problems_path: str | Path, seed: int = 0, steps: int = 300
) -> Path:
    """Build (once per corpus and seed) and return the tiny model checkpoint directory."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    corpus_hash = hashlib.sha256(Path(problems_path).read_bytes()).hexdigest()[:12]
    final = Path(cache_dir) / f"tiny-{_RECIPE}-{corpus_hash}-s{seed}-n{steps}"
    if (final / _DONE).is_file():
        return final
    torch.manual_seed(seed)
    conversations = _corpus(problems_path, seed)
    tokenizer = _train_tokenizer(
        [tokenizer_text for c in conversations for tokenizer_text in (m["content"] for m in c)]
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=96,
        intermediate_size=192,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    _pretrain(model, tokenizer, conversations, steps, seed)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    fence = fence_probabilities(model, tokenizer, conversations)
    info = {
        "corpus": str(problems_path), "seed": seed, "steps": steps, "recipe": _RECIPE,
        "fence_probability_min": min(fence), "fence_probability_mean": sum(fence) / len(fence),
    }  # fmt: skip

    def build(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _DONE).write_text(json.dumps(info))

    publish_directory(final, build)
    logger.info(
        "tiny model (%d parameters) built at %s; P(answer opens a ```python block) over the "
        "code prompts: min %.3f, mean %.3f", model.num_parameters(), final,
        info["fence_probability_min"], info["fence_probability_mean"],
    )  # fmt: skip
    return final


def build_info(checkpoint: str | Path) -> dict:
    """What :func:`tiny_checkpoint` recorded about a checkpoint it built."""
    return json.loads((Path(checkpoint) / _DONE).read_text())


def fence_probabilities(model, tokenizer, conversations: list[list[dict[str, str]]]) -> list[float]:
    """For each distinct code prompt of the corpus: P(the answer's first token is ```).

    Why: a tiny model that does not open a code block writes no programs, and a round
    then has nothing to execute; the figure is logged and recorded with the checkpoint
    so that a build gone wrong shows (tests check it on every kernel path of the CPU).
    """
    from conself.sampling.backend import chat_prompt_ids

    fence = tokenizer.convert_tokens_to_ids("```")
    prompts = sorted({c[0]["content"] for c in conversations if c[1]["content"].startswith("```")})
    probabilities = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([chat_prompt_ids(tokenizer, prompt)])
            probabilities.append(model(input_ids=ids).logits[0, -1].softmax(-1)[fence].item())
    return probabilities


def _pretrain(model, tokenizer, conversations, steps: int, seed: int) -> None:
    """Plain next-token training on the assistant turns of the corpus."""
    rng = random.Random(seed)
    encoded = []
    for conv in conversations:
        prompt = tokenizer.apply_chat_template(conv[:1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(conv, tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        f_ids = tokenizer(full, add_special_tokens=False).input_ids
        labels = [-100] * len(p_ids) + f_ids[len(p_ids) :]
        encoded.append((f_ids, labels))
    # Warm-up, cosine decay to a tenth and clipping: with a constant 3e-3 the run's end
    # state depended on the CPU's kernels (AVX-512 builds ended with P(```) = 0.06 at
    # the start of a code answer where AVX2 ones had 0.999); this schedule gives > 0.99
    # on AVX-512, AVX2 and the plain kernels alike.
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    warmup = max(1, steps // 10)

    def lr_factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * (0.55 + 0.45 * math.cos(math.pi * step / steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    model.train()
    for step in range(steps):
        batch = rng.sample(encoded, min(16, len(encoded)))
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            logger.info(
                "tiny model pre-training step %d/%d loss %.3f", step + 1, steps, loss.item()
            )
    model.eval()
