"""Per-epoch checkpoints of a run, outside Snakemake's outputs.

Snakemake deletes the outputs of a killed job; the checkpoint directory survives,
and the rerun resumes from it with exactly the state of an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from nnflow.files import load_npz, read_json, save_npz, write_json

log = logging.getLogger(__name__)


class Checkpoint:
    """Per-epoch state of a run in a directory that Snakemake does not manage.

    Each save writes the epoch's arrays to ``state-<epoch>.npz`` (and the caller
    may have written more files of that epoch, e.g. a Solver checkpoint), then
    ``state.json`` — the commit point, naming those files — and only then
    deletes the previous epoch's files. A kill at any moment therefore leaves a
    ``state.json`` whose files are complete and of one and the same epoch. The
    JSON also holds the spec: a checkpoint of another spec (a changed
    parameter) is never resumed from.
    """

    def __init__(self, directory: str | os.PathLike | None, spec: dict[str, Any]):
        self.directory = Path(directory) if directory else None
        self.spec_json = json.dumps(spec, sort_keys=True)

    def path(self, name: str) -> Path | None:
        """Where a file of this checkpoint goes (None when checkpointing is off)."""
        return self.directory / name if self.directory is not None else None

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        if self.directory is None or not (self.directory / "state.json").exists():
            return None
        meta = read_json(self.directory / "state.json")
        if meta.get("spec") != self.spec_json:
            log.info("checkpoint in %s belongs to another spec; starting afresh", self.directory)
            return None
        arrays = load_npz(self.directory / meta["arrays"])
        log.info("resuming from checkpoint after epoch %s", meta["epoch"])
        return arrays, meta

    def save(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], files: tuple[str, ...] = ()) -> None:
        """Commit the state after ``meta["epoch"]``; ``files`` (already written) belong to it."""
        if self.directory is None:
            return
        name = f"state-{int(meta['epoch']):06d}.npz"
        save_npz(self.directory / name, **arrays)
        write_json(self.directory / "state.json",
                   {**meta, "arrays": name, "files": list(files), "spec": self.spec_json})
        keep = {"state.json", name, *files}
        for old in self.directory.iterdir():
            if old.name not in keep and not old.name.startswith("."):
                old.unlink(missing_ok=True)

    def remove(self) -> None:
        if self.directory is not None and self.directory.exists():
            shutil.rmtree(self.directory)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as JSON-able data (stored in a checkpoint)."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
