"""Multi-process training entry: ``accelerate launch -m conself.condpo.launch ARGS``.

Why a module: `accelerate launch` starts one Python process per device; each
must run the same training call. ``ARGS`` is a JSON file written by the caller
(see `write_launch_args`); the main process writes the result metrics to
``result_path`` when training is done.

ARGS keys: ``model_dir``, ``pairs_path`` (JSON records: prompt, chosen,
rejected, weight), ``output_dir``, ``config`` (a `CondpoConfig` dict),
``method``, ``parent_adapters``, ``round_index``, ``result_path``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from conself.condpo.train import train_condpo


def write_launch_args(
    workdir: str | Path,
    model_dir: str,
    pairs: pd.DataFrame,
    output_dir: str,
    config: dict[str, Any],
    method: str = "condpo",
    parent_adapters: list[str] | None = None,
    round_index: int | None = None,
    checkpoint_dir: str | None = None,
) -> tuple[Path, Path]:
    """Write the pairs and the arguments file; returns (args_path, result_path)."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    pairs_path = work / "pairs.json"
    pairs.to_json(pairs_path, orient="records")
    result_path = work / "result.json"
    args = {
        "model_dir": str(model_dir),
        "pairs_path": str(pairs_path),
        "output_dir": str(output_dir),
        "config": dict(config),
        "method": method,
        "parent_adapters": [str(p) for p in parent_adapters or []],
        "round_index": round_index,
        "checkpoint_dir": checkpoint_dir,
        "result_path": str(result_path),
    }
    args_path = work / "launch_args.json"
    args_path.write_text(json.dumps(args, indent=2, default=str))
    return args_path, result_path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: accelerate launch -m conself.condpo.launch ARGS.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = json.loads(Path(argv[0]).read_text())
    pairs = pd.read_json(args["pairs_path"], orient="records", dtype=False)
    metrics = train_condpo(
        args["model_dir"],
        pairs,
        args["output_dir"],
        args.get("config") or {},
        method=args.get("method", "condpo"),
        parent_adapters=args.get("parent_adapters") or [],
        round_index=args.get("round_index"),
        checkpoint_dir=args.get("checkpoint_dir"),
    )
    from accelerate import PartialState

    if PartialState().is_main_process:
        Path(args["result_path"]).write_text(json.dumps(_jsonable(metrics), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
