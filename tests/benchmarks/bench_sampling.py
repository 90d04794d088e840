"""Sampling throughput: the project's sampler vs raw batched ``generate`` vs a naive loop.

A script, not a test (timings vary). Workload, the same for every method: the code
prompts of the first ``--problems`` HumanEval problems, ``--samples`` samples per prompt
(duplicates adjacent, as the pipeline sends them), temperature 1.0, at most
``--max-new-tokens`` new tokens, stopping at the closing code fence.

tokens/s = generated tokens, each sequence counted up to its own stop (the token that
closes the fence, the eos, or the budget), summed over sequences, divided by the wall
time of the whole method (tokenisation, prefill, decode; not model loading). Tokens a
batched ``generate`` keeps producing for rows that already stopped are not counted.

Methods:
- sampler: ``TransformersSampler.generate`` on all requests in batches of
  ``--sampler-batch`` (shared prefill, pruning, confidence recorded).
- raw: ``model.generate`` (sampling, top_k=0, top_p=1) on the same requests in batches of
  each size in ``--raw-batches``, with a cheap stopping criterion at the closing fence;
  the best size is the reference ("raw batched").
- naive: ``model.generate`` one request at a time, on the first ``--naive`` requests only.
- baseline (optional, ``--baseline-backend FILE``): a ``TransformersSampler`` from another
  backend file (e.g. the previous version), same workload, for before/after figures.

Each method runs in its own process so its peak RSS (``ru_maxrss``) is its own.

Usage: flock /tmp/conself-bench.lock .venv/bin/python tests/benchmarks/bench_sampling.py
       [--model DIR] [--problems N] [--samples N] [--max-new-tokens N]
       [--sampler-batch N] [--raw-batches 10,20] [--naive N] [--threads N]
       [--baseline-backend FILE] [--ablations] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "data/06_models/base/qwen2.5-coder-0.5b-instruct"
FENCE = "```"


def _messages(n_problems: int, n_samples: int) -> list[str]:
    from conself.problems import load_problems
    from conself.sampling import code_prompt

    table, _ = load_problems("humaneval", limit=n_problems)
    prompts = [code_prompt(p.prompt, p.kind, p.entry_point) for p in table.itertuples()]
    return [m for m in prompts for _ in range(n_samples)]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_sampler(args: argparse.Namespace, messages: list[str], **options: Any) -> dict:
    if args.backend_file:
        spec = importlib.util.spec_from_file_location("baseline_backend", args.backend_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        sampler = module.TransformersSampler(args.model, dtype=args.dtype, **options)
    else:
        from conself.sampling import TransformersSampler

        sampler = TransformersSampler(args.model, dtype=args.dtype, **options)
    kwargs = {"temperature": 1.0, "max_new_tokens": args.max_new_tokens}
    sampler.generate(messages[:2], seed=99, **{**kwargs, "max_new_tokens": 2})  # warm-up
    start = time.perf_counter()
    gens = []
    for b, i in enumerate(range(0, len(messages), args.sampler_batch)):
        batch = messages[i : i + args.sampler_batch]
        gens += sampler.generate(batch, seed=b, stop_at_code_block=True, **kwargs)
    seconds = time.perf_counter() - start
    reasons = {r: sum(g.finish_reason == r for g in gens) for r in ("stop", "eos", "length")}
    return {
        "tokens": sum(g.n_tokens for g in gens),
        "seconds": seconds,
        "finish": reasons,
        "dtype": str(sampler.model.dtype),
    }


class _FenceStop:
    """Stops a row once its completion closed a code block; decodes only on a backtick."""

    def __init__(self, tokenizer: Any, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stopped_at: dict[int, int] = {}

    def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        from conself.sampling import closes_code_block

        n_new = input_ids.shape[1] - self.prompt_len
        done = []
        for row in range(input_ids.shape[0]):
            if row not in self.stopped_at:
                last = self.tokenizer.decode(input_ids[row, -1:])
                if "`" in last and closes_code_block(
                    self.tokenizer.decode(
                        input_ids[row, self.prompt_len :], skip_special_tokens=True
                    )
                ):
                    self.stopped_at[row] = n_new
            done.append(row in self.stopped_at)
        return torch.tensor(done, device=input_ids.device)


def _counted(new_tokens: Any, stopped_at: dict[int, int], end_ids: set[int]) -> int:
    """Tokens of each row up to its own stop: fence, first eos/pad, or the budget."""
    total = 0
    for row, ids in enumerate(new_tokens.tolist()):
        if row in stopped_at:
            total += stopped_at[row]
            continue
        eos_at = next((i for i, tok in enumerate(ids) if tok in end_ids), None)
        total += len(ids) if eos_at is None else eos_at + 1
    return total


def _run_generate(args: argparse.Namespace, messages: list[str], batch_size: int) -> dict:
    import torch
    from transformers import StoppingCriteriaList

    from conself.sampling import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model, args.dtype)
    tokenizer.padding_side = "left"
    end_ids = {tokenizer.pad_token_id, tokenizer.eos_token_id, model.generation_config.eos_token_id}
    end_ids = {i for i in end_ids if isinstance(i, int)}

    def one_batch(batch: list[str], max_new: int, seed: int) -> int:
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": m}], tokenize=False, add_generation_prompt=True
            )
            for m in batch
        ]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        stop = _FenceStop(tokenizer, enc.input_ids.shape[1])
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new,
                stopping_criteria=StoppingCriteriaList([stop]),
                pad_token_id=tokenizer.pad_token_id,
            )
        return _counted(out[:, enc.input_ids.shape[1] :], stop.stopped_at, end_ids)

    one_batch(messages[:2], 2, 99)  # warm-up
    start = time.perf_counter()
    tokens = sum(
        one_batch(messages[i : i + batch_size], args.max_new_tokens, b)
        for b, i in enumerate(range(0, len(messages), batch_size))
    )
    return {"tokens": tokens, "seconds": time.perf_counter() - start}


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    messages = _messages(args.problems, args.samples)
    if args.phase == "sampler":
        result = _run_sampler(args, messages, **json.loads(args.options))
    elif args.phase == "raw":
        result = _run_generate(args, messages, args.batch)
    elif args.phase == "naive":
        # Distinct prompts first: the naive loop samples one request of each.
        firsts = messages[:: args.samples][: args.naive]
        result = _run_generate(args, firsts, 1)
    else:
        raise SystemExit(f"unknown phase {args.phase}")
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(args: argparse.Namespace, phase: str, **extra: Any) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--model", args.model]
    for name in ("problems", "samples", "max_new_tokens", "sampler_batch", "naive", "threads"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    cmd += ["--dtype", args.dtype]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"phase {phase} {extra} failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["tokens_per_s"] = result["tokens"] / result["seconds"]
    return result


def _line(name: str, r: dict) -> str:
    return (
        f"{name:<34} {r['tokens']:>6} tok {r['seconds']:>8.1f} s {r['tokens_per_s']:>7.2f} tok/s"
        f"  peak RSS {r['peak_rss_mb']:>6.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--sampler-batch", type=int, default=20)
    parser.add_argument("--raw-batches", default="10,20")
    parser.add_argument("--naive", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-backend", default=None)
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--json", default=None)
    # Internal: one measured method in a child process.
    parser.add_argument("--phase", default=None)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--backend-file", default=None)
    args = parser.parse_args()
    if args.phase:
        _child(args)
        return

    total_start = time.perf_counter()
    n_requests = args.problems * args.samples
    print(
        f"workload: {args.problems} HumanEval code prompts x {args.samples} samples = "
        f"{n_requests} requests, T=1.0, max_new_tokens={args.max_new_tokens}, stop at the "
        f"closing fence; torch threads={args.threads}, dtype={args.dtype}",
        flush=True,
    )
    results: dict[str, dict] = {}
    results["sampler"] = _spawn(args, "sampler")
    print(_line(f"sampler (batch {args.sampler_batch})", results["sampler"]), flush=True)
    print(f"  sampler finish reasons: {results['sampler']['finish']}", flush=True)
    if args.ablations:
        for name, options in (
            ("sampler, no shared prefill", {"share_prefill": False}),
            ("sampler, no pruning", {"prune_finished": False}),
        ):
            results[name] = _spawn(args, "sampler", options=json.dumps(options))
            print(_line(name, results[name]), flush=True)
    if args.baseline_backend:
        results["baseline"] = _spawn(args, "sampler", backend_file=args.baseline_backend)
        print(_line("baseline sampler", results["baseline"]), flush=True)
    raw: dict[int, dict] = {}
    for size in (int(s) for s in args.raw_batches.split(",")):
        raw[size] = _spawn(args, "raw", batch=size)
        results[f"raw_batch_{size}"] = raw[size]
        print(_line(f"raw generate (batch {size})", raw[size]), flush=True)
    best = max(raw, key=lambda s: raw[s]["tokens_per_s"])
    results["naive"] = _spawn(args, "naive")
    print(_line(f"naive loop ({args.naive} requests)", results["naive"]), flush=True)

    sampler_tps = results["sampler"]["tokens_per_s"]
    vs_raw = sampler_tps / raw[best]["tokens_per_s"]
    vs_naive = sampler_tps / results["naive"]["tokens_per_s"]
    print(f"best raw batch size: {best} ({raw[best]['tokens_per_s']:.2f} tok/s)")
    print(
        f"sampler / raw batched: {vs_raw:.2f}x (goal >= 0.90) {'OK' if vs_raw >= 0.9 else 'MISS'}"
    )
    print(
        f"sampler / naive loop: {vs_naive:.1f}x (goal >= 20) {'OK' if vs_naive >= 20 else 'MISS'}"
    )
    if "baseline" in results:
        print(
            f"sampler / baseline sampler: {sampler_tps / results['baseline']['tokens_per_s']:.2f}x"
        )
    print(f"total benchmark time: {time.perf_counter() - total_start:.0f} s")
    if args.json:
        summary = {"results": results, "best_raw_batch": best, "vs_raw": vs_raw}
        Path(args.json).write_text(json.dumps({**summary, "vs_naive": vs_naive}, indent=2))


if __name__ == "__main__":
    main()
