"""Publishing a model directory all at once, so a half-built one is never read as done."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def publish_directory(final: Path, build: Callable[[Path], None]) -> Path:
    """Run ``build`` into a hidden staging folder beside ``final``, then rename it into place.

    An interruption or an error leaves at most a ``.building-*`` folder that no
    reader looks at, never a partial ``final``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
    try:
        build(staging)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
