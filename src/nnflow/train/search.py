"""The random search's choice: the candidate with the best validation accuracy."""

from __future__ import annotations

import logging
import os
from typing import Any

from nnflow.files import read_json, write_json

log = logging.getLogger(__name__)


def select_candidate(run_infos: list[str], out_path: str | os.PathLike) -> dict[str, Any]:
    """Choose the random-search candidate with the best validation accuracy.

    Only validation accuracy decides (never the test set); ties go to the
    candidate listed first. Diverged candidates are never chosen.
    """
    candidates = []
    for path in run_infos:
        info = read_json(path)
        candidates.append({
            "run_id": info["spec"]["run_id"],
            "status": info["status"],
            "val_accuracy": info.get("best_val_accuracy"),
            "params": info["spec"]["params"],
            "spec": info["spec"],
        })
    usable = [c for c in candidates if c["status"] == "completed" and c["val_accuracy"] is not None]
    if not usable:
        raise ValueError(f"no completed candidate among {len(candidates)} runs: {run_infos}")
    best = max(usable, key=lambda c: c["val_accuracy"])  # max keeps the first of equals
    chosen = {
        "run_id": best["run_id"],
        "params": best["params"],
        "spec": best["spec"],
        "val_accuracy": best["val_accuracy"],
        "candidates": [{k: c[k] for k in ("run_id", "status", "val_accuracy", "params")}
                       for c in candidates],
    }
    write_json(out_path, chosen)
    log.info("chose %s (validation accuracy %.4f) among %d candidates (%d completed)",
             best["run_id"], best["val_accuracy"], len(candidates), len(usable))
    return chosen
