"""The prepared arrays on disk: their names and how the trainers load them.

Kept apart from :mod:`.prepare` so that a training job imports only this reader,
not the parsers and the downloader (its source hash then covers what it runs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nnflow.files import load_npy, read_json

ARRAYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def load_prepared(directory: str | os.PathLike, mmap: bool = True) -> dict[str, Any]:
    """The six arrays (memory-mapped by default) and ``provenance`` of a prepared dataset."""
    directory = Path(directory)
    out: dict[str, Any] = {name: load_npy(directory / f"{name}.npy", mmap=mmap) for name in ARRAYS}
    out["provenance"] = read_json(directory / "provenance.json")
    return out
