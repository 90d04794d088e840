"""Con-DPO vs TRL's plain DPOTrainer on the same pairs (a script, not a test: timings vary).

Reports, in one run: optimizer-step time and tokens/s of `ConDPOTrainer` (weighted)
and of TRL's own `DPOTrainer`, on the same pairs, model, LoRA and `DPOConfig`, and
the peak RSS (CPU) or peak CUDA memory of each. Goal: Con-DPO overhead <= 5%.

Each (method, repeat) runs in its own process, so the peak memory is that run's
alone; methods alternate (trl, condpo, trl, condpo, ...) so a drift in machine
load hits both. The first `--warmup` steps of each run are not timed.

Usage: python tests/benchmarks/bench_condpo.py [--model DIR] [--pairs N] [--steps N]
       [--warmup N] [--repeats N] [--threads N] [--json OUT]
On a shared CPU use --threads 1: with more threads than free cores, torch's
parallel regions wait for descheduled threads and step times blow up.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "data/06_models/base/qwen2.5-coder-0.5b-instruct"

_PROMPT = (
    "You are given an array of integers nums and an integer k. Return the number of "
    "contiguous subarrays whose sum is divisible by k. The input is read from standard "
    "input: the first line holds n and k, the second line holds n integers. Constraints: "
    "1 <= n <= 2 * 10^5, -10^4 <= nums[i] <= 10^4, 2 <= k <= 10^4. Print one integer. "
    "Example: for nums = [4, 5, 0, -2, -3, 1] and k = 5 the answer is 7, because seven "
    "subarrays have a sum divisible by 5. Write an efficient Python program. Variant {i}."
)
_CHOSEN = '''```python
import sys
from collections import defaultdict


def count_divisible_subarrays(nums, k):
    """Prefix sums modulo k: two equal residues bound a subarray divisible by k."""
    seen = defaultdict(int)
    seen[0] = 1
    prefix = 0
    total = 0
    for value in nums:
        prefix = (prefix + value) % k
        total += seen[prefix]
        seen[prefix] += 1
    return total


def main():
    data = sys.stdin.read().split()
    n, k = int(data[0]), int(data[1])
    nums = [int(x) for x in data[2 : 2 + n]]
    print(count_divisible_subarrays(nums, k))


if __name__ == "__main__":
    main()
```
This runs in O(n) time and O(k) memory; variant {i}.'''
_REJECTED = """```python
import sys


def count_divisible_subarrays(nums, k):
    total = 0
    for start in range(len(nums)):
        running = 0
        for end in range(start, len(nums)):
            running += nums[end]
            if running % k == 0:
                total += 1
    return total


def main():
    data = sys.stdin.read().split()
    n = int(data[0])
    k = int(data[1])
    nums = []
    for x in data[2 : 2 + n]:
        nums.append(int(x))
    result = count_divisible_subarrays(nums, k)
    print(result)


main()
```
This checks every subarray; it is quadratic in n, variant {i}."""


def make_pairs(n: int) -> Any:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "prompt": _PROMPT.format(i=i),
                "chosen": _CHOSEN.format(i=i),
                "rejected": _REJECTED.format(i=i),
                "weight": [1.0, 0.8, 0.6, 0.4][i % 4],
            }
            for i in range(n)
        ]
    )


def worker(
    method: str, model_dir: str, n_pairs: int, steps: int, warmup: int, bf16: bool = True
) -> dict[str, Any]:
    """One training run of `steps` optimizer steps; returns timings and peak memory."""
    import torch
    from transformers import AutoTokenizer, TrainerCallback
    from trl import DPOTrainer

    from conself.condpo import CondpoConfig, ConDPOTrainer, build_preference_dataset
    from conself.condpo.lineage import load_base_model
    from conself.condpo.train import _lora_config

    cuda = torch.cuda.is_available()
    cfg = CondpoConfig(
        max_steps=steps,
        gradient_accumulation_steps=1,
        per_device_train_batch_size=1,
        warmup_ratio=0.0,
        use_cpu=not cuda,
        bf16=bf16,
        model_dtype="bfloat16" if cuda else "float32",
    )
    args = cfg.to_dpo_config(f"/tmp/bench_condpo_{method}")
    pairs = make_pairs(n_pairs)
    dataset = build_preference_dataset(pairs)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_base_model(model_dir, cfg.model_dtype)  # drops the stale GGUF flag
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)

    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "processing_class": tokenizer,
        "peft_config": _lora_config(cfg),
        "callbacks": [StepTimer()],
    }
    if method == "condpo":
        trainer: Any = ConDPOTrainer(train_dataset=dataset, weighted=True, **kwargs)
    else:
        trainer = DPOTrainer(train_dataset=dataset.remove_columns("weight"), **kwargs)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    per_step_tokens = [b - a for a, b in zip([0.0, *tokens[:-1]], tokens, strict=True)]
    return {
        "method": method,
        "step_times_s": times,
        "step_tokens": per_step_tokens,
        "timed_steps": list(range(warmup, len(times))),
        "loss": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 1024**3 if cuda else None,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in ("trl", "condpo"):
        mine = [r for r in runs if r["method"] == method]
        times = [r["step_times_s"][i] for r in mine for i in r["timed_steps"]]
        tokens = [r["step_tokens"][i] for r in mine for i in r["timed_steps"]]
        out[method] = {
            "timed_steps": len(times),
            "step_time_s_mean": statistics.fmean(times),
            "step_time_s_median": statistics.median(times),
            "step_time_s_min": min(times),
            "tokens_per_step_mean": statistics.fmean(tokens),
            "tokens_per_s": sum(tokens) / sum(times),
            "peak_rss_gb_max": max(r["peak_rss_gb"] for r in mine),
            "peak_cuda_gb_max": max((r["peak_cuda_gb"] or 0) for r in mine) or None,
        }
    trl, con = out["trl"], out["condpo"]
    out["overhead_pct_mean_step_time"] = 100 * (
        con["step_time_s_mean"] / trl["step_time_s_mean"] - 1
    )
    out["overhead_pct_median_step_time"] = 100 * (
        con["step_time_s_median"] / trl["step_time_s_median"] - 1
    )
    out["overhead_pct_tokens_per_s"] = 100 * (trl["tokens_per_s"] / con["tokens_per_s"] - 1)
    out["goal_met_5pct"] = out["overhead_pct_median_step_time"] <= 5.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per method, alternating")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads per run (0: torch default)"
    )
    parser.add_argument("--no-bf16", action="store_true", help="float32 compute (no bf16 autocast)")
    parser.add_argument("--json", help="also write the full results here")
    parser.add_argument("--worker", choices=["trl", "condpo"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        run = worker(args.worker, args.model, args.pairs, args.steps, args.warmup, not args.no_bf16)
        print(json.dumps(run))
        return 0
    if not (Path(args.model) / "config.json").is_file():
        print(f"no checkpoint at {args.model} (run a round once to convert the embedded model)")
        return 2
    runs = []
    start = time.perf_counter()
    for rep in range(args.repeats):
        for method in ("trl", "condpo"):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                method,
                "--model",
                args.model,
                "--pairs",
                str(args.pairs),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--threads",
                str(args.threads),
                *(["--no-bf16"] if args.no_bf16 else []),
            ]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
            if proc.returncode != 0:
                return 1
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            run["repeat"] = rep
            runs.append(run)
            print(
                f"[{rep}] {method:6s} step times "
                + ", ".join(f"{t:.2f}s" for t in run["step_times_s"])
                + f"  tokens/step {run['step_tokens']}  peak RSS {run['peak_rss_gb']:.2f} GB",
                flush=True,
            )
    summary = summarize(runs)
    summary["wall_s"] = time.perf_counter() - start
    summary["settings"] = {k: v for k, v in vars(args).items() if k != "worker"}
    summary["device"] = runs[0]["device"]
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
