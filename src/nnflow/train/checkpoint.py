"""Per-epoch checkpoints of a run, outside Snakemake's outputs.

Snakemake deletes the outputs of a killed job; the checkpoint directory survives,
and the rerun resumes from it with exactly the state of an uninterrupted run —
but only if it is the *same* run: a checkpoint is bound to its **identity**, the
resolved run spec, the identity of the prepared data it trained on and the hash
of the code that trained it. A checkpoint of another identity, or one that
cannot be read back exactly as written, is never resumed from: the run restarts
from epoch 0 and :attr:`Checkpoint.record` (written to ``run.json``) says why.

One process at a time trains a run: :meth:`Checkpoint.hold` takes an exclusive
lock (``.lock`` in the directory, holding the owner's PID and host); a second
process — an orphaned job of a killed workflow and its rerun, say — fails naming
the holder instead of writing into the same directory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nnflow.files import file_sha256, load_npz, read_json, save_npz, write_json

log = logging.getLogger(__name__)

STATE = "state.json"
LOCK = ".lock"
# The workflow's jobs checkpoint at most this often (seconds of training; the last epoch
# always): a 400-epoch run of 0.05 s epochs spent a quarter of its time writing and
# fsyncing 400 checkpoints, each holding every row so far. A kill loses at most this much.
INTERVAL_VARIABLE = "NNFLOW_CHECKPOINT_INTERVAL"
WORKFLOW_INTERVAL_S = 10.0


def checkpoint_interval(environ: Mapping[str, str] | None = None) -> float:
    """The workflow jobs' checkpoint interval: ``$NNFLOW_CHECKPOINT_INTERVAL`` seconds
    (0: after every epoch), else :data:`WORKFLOW_INTERVAL_S`; a bad value is a ValueError
    naming the variable."""
    text = (os.environ if environ is None else environ).get(INTERVAL_VARIABLE)
    if text is None or text == "":
        return WORKFLOW_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{INTERVAL_VARIABLE} must be a number of seconds >= 0, got {text!r}")
    return value


class CheckpointBusyError(RuntimeError):
    """Another live process holds the run's checkpoint lock (the message names it)."""


class DamagedCheckpointError(ValueError):
    """A checkpoint that cannot be read back exactly as it was written."""


def data_identity(directory: str | os.PathLike) -> str:
    """A fingerprint of a prepared dataset: its ``provenance.json`` (raw files' checksums,
    settings, shapes) and the size and modification time of every file in it.

    A re-prepared dataset (other bytes, or the same bytes written again) has another
    fingerprint, so a checkpoint trained on it is not resumed: restarting is always
    correct, resuming on changed data never is. Cheaper than hashing the arrays
    (hundreds of MB) at every run start.
    """
    directory = Path(directory)
    digest = hashlib.sha256()
    digest.update((directory / "provenance.json").read_bytes())
    for path in sorted(directory.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def source_identity() -> str:
    """The sha256 of every module of the installed nnflow package: the code identity of a
    checkpoint when the caller (e.g. the workflow, with its per-job source hash) gives none."""
    import nnflow

    root = Path(nnflow.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


IDENTITY_PARTS = {"spec": "the run spec", "data": "the prepared data", "code": "the code"}


class Checkpoint:
    """Per-epoch state of a run in a directory that Snakemake does not manage.

    Each save writes the epoch's arrays to ``state-<epoch>.npz`` (and the caller
    may have written more files of that epoch, e.g. a Solver checkpoint), then
    ``state.json`` — the commit point, naming those files with their sha256 and
    holding the identity — and only then deletes the previous epoch's files. A
    kill at any moment therefore leaves a ``state.json`` whose files are complete
    and of one and the same epoch; a file damaged afterwards fails its checksum.

    ``data`` and ``code`` identify the prepared data (:func:`data_identity`) and
    the code (default: :func:`source_identity`); ``directory=None`` turns
    checkpointing off. ``interval`` (seconds, default 0: every epoch) spaces the
    checkpoints out: the trainers save an epoch only when :meth:`due` says so —
    ``interval`` seconds after the previous save (or the start), and after the last
    epoch. A resumed run retrains the epochs since the last save; training is
    deterministic, so it ends with the same numbers either way.
    """

    def __init__(self, directory: str | os.PathLike | None, spec: dict[str, Any],
                 data: str | None = None, code: str | None = None, interval: float = 0.0):
        if not interval >= 0:
            raise ValueError(f"Checkpoint: interval must be a number of seconds >= 0, got {interval!r}")
        self.interval = float(interval)
        self._saved_at = time.monotonic()
        self.directory = Path(directory) if directory else None
        self.identity = {
            "spec": json.dumps(spec, sort_keys=True),
            "data": data,
            "code": code if code is not None else (source_identity() if directory else None),
        }
        self.record: dict[str, Any] = {"resumed_from_epoch": None}
        self._lock_fd: int | None = None

    def path(self, name: str) -> Path | None:
        """Where a file of this checkpoint goes (None when checkpointing is off)."""
        return self.directory / name if self.directory is not None else None

    # ------------------------------------------------------------------ single writer

    @contextmanager
    def hold(self) -> Iterator[Checkpoint]:
        """Hold the run's lock for the block; :class:`CheckpointBusyError` if a live process has it.

        The kernel releases the lock when its holder dies, so a killed job never blocks a rerun.
        """
        if self.directory is None:
            yield self
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory / LOCK
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise CheckpointBusyError(
                f"{self.directory}: this run is being trained by another process ({holder}); "
                "two writers would corrupt its checkpoint. Wait for it to finish or stop it "
                f"(its lock: {lock_path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd
        try:
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)  # releases the lock

    # ------------------------------------------------------------------ resume

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The last committed state if it belongs to this identity and reads back intact, else None.

        A checkpoint of another identity is ignored (and overwritten by the next save); a
        damaged one is moved aside to ``<directory>.damaged-<time>`` (kept for inspection).
        Either way :attr:`record` says why the run starts afresh.
        """
        if self.directory is None or not (self.directory / STATE).exists():
            return None
        try:
            meta = read_json(self.directory / STATE)
            if not isinstance(meta, dict) or "epoch" not in meta or "arrays" not in meta:
                raise DamagedCheckpointError(f"{self.directory / STATE}: not a checkpoint state")
            changed = [part for part in IDENTITY_PARTS
                       if (meta.get("identity") or {}).get(part) != self.identity[part]]
            if changed:
                reason = "written for another " + " and ".join(IDENTITY_PARTS[p] for p in changed)
                self._discard(f"checkpoint after epoch {meta['epoch']} was {reason}")
                return None
            self._verify_files(meta)
            arrays = load_npz(self.directory / meta["arrays"])
        except Exception as exc:  # noqa: BLE001 - any unreadable state means: do not resume
            self._move_aside(exc)
            return None
        log.info("resuming from checkpoint after epoch %s (%s)", meta["epoch"], self.directory)
        self.record = {"resumed_from_epoch": int(meta["epoch"])}
        return arrays, meta

    def _verify_files(self, meta: dict[str, Any]) -> None:
        for name in [meta["arrays"], *meta.get("files", [])]:
            expected = (meta.get("sha256") or {}).get(name)
            path = self.directory / name
            if not path.is_file():
                raise DamagedCheckpointError(f"{path} is missing")
            actual = file_sha256(path)
            if actual != expected:
                raise DamagedCheckpointError(f"{path}: sha256 {actual}, recorded {expected}")

    def _discard(self, reason: str) -> None:
        log.warning("%s: %s; restarting from epoch 0", self.directory, reason)
        self.record = {"resumed_from_epoch": None, "restarted": reason}

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.directory.with_name(f"{self.directory.name}.damaged-{stamp}-{os.getpid()}")
        aside.mkdir(parents=True)
        for item in self.directory.iterdir():
            if item.name != LOCK:
                item.rename(aside / item.name)
        reason = f"checkpoint could not be read ({type(exc).__name__}: {exc}); moved aside to {aside}"
        log.warning("%s: %s; restarting from epoch 0", self.directory, reason)
        self.record = {"resumed_from_epoch": None, "restarted": reason}

    # ------------------------------------------------------------------ save

    def due(self, last: bool = False) -> bool:
        """Whether the epoch just trained should be saved: checkpointing is on and it is the
        ``last`` epoch or ``interval`` seconds passed since the previous save."""
        return self.directory is not None and (
            last or time.monotonic() - self._saved_at >= self.interval)

    def save(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], files: tuple[str, ...] = ()) -> None:
        """Commit the state after ``meta["epoch"]``; ``files`` (already written) belong to it."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"state-{int(meta['epoch']):06d}.npz"
        save_npz(self.directory / name, **arrays)
        digests = {f: file_sha256(self.directory / f) for f in (name, *files)}
        write_json(self.directory / STATE, {**meta, "arrays": name, "files": list(files),
                                            "sha256": digests, "identity": self.identity})
        keep = {STATE, name, *files}
        for old in self.directory.iterdir():
            if old.name not in keep and not old.name.startswith("."):
                old.unlink(missing_ok=True)
        self._saved_at = time.monotonic()

    def remove(self) -> None:
        if self.directory is not None and self.directory.exists():
            shutil.rmtree(self.directory)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as JSON-able data (stored in a checkpoint)."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
