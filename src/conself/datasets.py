"""Catalog datasets that never leave a half-written file behind.

Kedro's parquet and JSON datasets write straight into the target path, so a run
killed mid-save leaves a truncated file that the next stage would load as the
latest version. These subclasses serialise fully in memory, write a temporary
sibling and rename it into place (atomic on a local filesystem).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from conself.shards import write_atomically


class AtomicParquetDataset(ParquetDataset):
    """``pandas.ParquetDataset`` with an all-or-nothing save on local paths."""

    def save(self, data: pd.DataFrame) -> None:
        if self._protocol != "file":
            return super().save(data)
        buffer = io.BytesIO()
        data.to_parquet(buffer, **self._save_args)
        write_atomically(get_filepath_str(self._get_save_path(), self._protocol), buffer.getvalue())
        self._invalidate_cache()
        return None


class AtomicJSONDataset(JSONDataset):
    """``json.JSONDataset`` with an all-or-nothing save on local paths."""

    def save(self, data: Any) -> None:
        if self._protocol != "file":
            return super().save(data)
        payload = json.dumps(data, **self._save_args).encode()
        write_atomically(get_filepath_str(self._get_save_path(), self._protocol), payload)
        self._invalidate_cache()
        return None
