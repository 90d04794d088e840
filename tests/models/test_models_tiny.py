"""The tiny model must open a ```python block, whichever kernels the CPU gives torch.

A tiny model that does not write code blocks yields no programs, and every test and
``kedro run --env tiny`` round built on it has nothing to execute. Torch picks AVX-512,
AVX2 or plain kernels by CPU, and their float results differ in the last bits: with a
constant learning rate that was enough to end pre-training with P(```) = 0.06 at the
start of a code answer on an AVX-512 host against 0.999 on AVX2 ones.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from conself.models.tiny import build_info

MIN_FENCE_PROBABILITY = 0.9
KERNELS = ["default", *(["avx2"] if platform.machine() in ("x86_64", "AMD64") else [])]
_BUILD = (
    "import sys\nfrom conself.models.tiny import tiny_checkpoint\n"
    "print(tiny_checkpoint(sys.argv[1], sys.argv[2], seed=int(sys.argv[3]), "
    "steps=int(sys.argv[4])))\n"
)


def test_tiny_model_opens_a_code_block_after_every_code_prompt(tiny_checkpoint_dir: Path) -> None:
    info = build_info(tiny_checkpoint_dir)
    assert info["fence_probability_min"] > MIN_FENCE_PROBABILITY, info


@pytest.mark.slow
@pytest.mark.parametrize("kernels", KERNELS)
def test_tiny_model_opens_code_blocks_on_every_kernel_path(
    kernels: str, tmp_path: Path, tiny_model_spec: dict
) -> None:
    """The same build under torch's other CPU kernels (``ATEN_CPU_CAPABILITY``)."""
    spec = tiny_model_spec
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, str(tmp_path), spec["problems_path"], str(spec["seed"]),
         str(spec["steps"])],
        env={**os.environ, "ATEN_CPU_CAPABILITY": kernels},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    info = build_info(done.stdout.strip().splitlines()[-1])
    assert info["fence_probability_min"] > MIN_FENCE_PROBABILITY, (kernels, info)
