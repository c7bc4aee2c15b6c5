"""In-memory 'prepared' data and run output paths for tests that train tiny runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEST_PROVENANCE = {"canonical": False, "note": "test data", "files": []}


def learnable_data(rng, n_train=80, n_eval=30, dim=20, provenance=None):
    """Learnable arrays as ``load_dataset`` returns them: ten class patterns in [0, 1]^dim plus
    noise; ``n_train`` training and ``n_eval`` validation and test examples."""
    patterns = rng.random((10, dim))

    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        return np.clip(patterns[y] + 0.3 * rng.standard_normal((n, dim)), 0, 1), y

    (Xtr, ytr), (Xv, yv), (Xte, yte) = make(n_train), make(n_eval), make(n_eval)
    return {"X_train": Xtr, "y_train": ytr, "X_val": Xv, "y_val": yv, "X_test": Xte, "y_test": yte,
            "provenance": dict(TEST_PROVENANCE if provenance is None else provenance)}


def run_outputs(directory: Path) -> dict[str, str]:
    """The output paths of one run in ``directory``, as the train rule names them."""
    names = {"metrics": "metrics.csv", "model": "model.npz", "model_meta": "model.json",
             "run_info": "run.json"}
    return {k: str(directory / v) for k, v in names.items()}
