"""Keep the results of a finished reproduction as a small, named snapshot.

A snapshot mirrors the results tree but keeps only what a comparison reads and
what is cheap: every ``.json`` and ``.csv`` file of the runs, experiments, theory
and PageRank directories and the study's tables (``summary.csv``, ``metrics.csv``,
``environment.csv``). Weights are not copied: each ``.npz`` is recorded by its
SHA-256 and size in the manifest ``snapshot.json``, so "the weights changed" stays
detectable. Prepared data, downloads, checkpoints, logs, figures and the Solver's
per-mini-batch losses (``iterations.csv``) are left out. The manifest also records
when the snapshot was taken, from which directory, the git commit of the nnflow
checkout (as run.json's environment records it) and the SHA-256 of the config file,
of which a copy is kept as ``config.yaml``.

A snapshot is built in a temporary directory beside its destination and renamed
into place when complete; an existing snapshot is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nnflow
from nnflow.compare.results import SNAPSHOT_MANIFEST, ResultsError
from nnflow.files import file_sha256, write_json
from nnflow.runtime import git_commit
from nnflow.workflow.layout import SOLVER_OUTPUTS, TABLES, ResultTree

KEPT_SUFFIXES = (".json", ".csv")
HASHED_SUFFIXES = (".npz",)
SNAPSHOT_CONFIG = "config.yaml"


def snapshot_files(results: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(kept, hashed)``: the paths below ``results`` (relative, POSIX) a snapshot copies
    and those it records by hash only."""
    root = Path(results)
    tree = ResultTree(str(root))
    kept = [name for name in TABLES if (root / name).is_file()]
    hashed = []
    skipped_names = set(SOLVER_OUTPUTS.values())
    for top in (tree.runs, tree.experiments, tree.theory, tree.pagerank):
        for path in sorted(Path(top).rglob("*")):
            if not path.is_file() or path.name.startswith("."):  # a writer's temporary file
                continue
            rel = path.relative_to(root).as_posix()
            if path.suffix in HASHED_SUFFIXES:
                hashed.append(rel)
            elif path.suffix in KEPT_SUFFIXES and path.name not in skipped_names:
                kept.append(rel)
    return kept, hashed


def snapshot_target(name_or_path: str, results: str | os.PathLike) -> Path:
    """A bare name is a snapshot in ``<results>/snapshots/``; anything with a slash is a path."""
    if not name_or_path or name_or_path.strip() != name_or_path or name_or_path in (".", ".."):
        raise ResultsError(f"snapshot name {name_or_path!r}: expected a non-empty name without spaces "
                           "around it, or a path")
    if "/" in name_or_path or os.sep in name_or_path:
        return Path(name_or_path)
    if name_or_path.startswith("."):
        raise ResultsError(f"snapshot name {name_or_path!r}: must not start with '.' (hidden names are "
                           "the temporary files of unfinished snapshots)")
    return Path(ResultTree(str(results)).snapshots) / name_or_path


def _config_record(config: str | os.PathLike | None) -> tuple[dict[str, Any] | None, Path | None]:
    if config is None:
        return None, None
    path = Path(config)
    if not path.is_file():
        raise ResultsError(f"config file {path}: not found (give --config the file the results were "
                           "made with)")
    return {"path": str(path), "sha256": file_sha256(path)}, path


def make_snapshot(name_or_path: str, results: str | os.PathLike = "results",
                  config: str | os.PathLike | None = None) -> dict[str, Any]:
    """Keep the results below ``results`` as a snapshot; return its manifest (with ``path``).

    ``config`` is the config file the results were made with (hashed and copied).
    """
    root = Path(results)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such directory (expected the results of a reproduction)")
    target = snapshot_target(name_or_path, results)
    if target.exists():
        raise ResultsError(f"{target}: already exists; choose another name or remove it first")
    kept, hashed = snapshot_files(root)
    if not any(rel.endswith(".json") for rel in kept):
        tree = ResultTree(str(root))
        raise ResultsError(f"{root}: no results to keep (no JSON results below {tree.runs}/, "
                           f"{tree.experiments}/, {tree.theory}/ or {tree.pagerank}/)")
    config_record, config_path = _config_record(config)
    manifest = {
        "format": 1,
        "name": target.name,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": str(root.resolve()),
        "git_commit": git_commit(Path(nnflow.__file__).resolve().parent),
        "config": config_record,
        "files": len(kept),
        "bytes": sum((root / rel).stat().st_size for rel in kept),
        "models": {rel: {"sha256": file_sha256(root / rel), "bytes": (root / rel).stat().st_size}
                   for rel in hashed},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for rel in kept:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, staging / rel)
        if config_path is not None:
            shutil.copy2(config_path, staging / SNAPSHOT_CONFIG)
        write_json(staging / SNAPSHOT_MANIFEST, manifest)
        staging.chmod(0o777 & ~_umask())
        os.rename(staging, target)  # refuses to replace a non-empty directory created meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {**manifest, "path": str(target)}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
