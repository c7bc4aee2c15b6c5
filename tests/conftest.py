"""Shared fixtures (keep them small and generic)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator: tests are deterministic."""
    return np.random.default_rng(12345)


@pytest.fixture
def synthetic_mirror(tmp_path, rng):
    """A tiny format-exact data mirror (MNIST 600/100, CIFAR-10 600/100): never real data."""
    from nnflow.data.synthetic import write_mirror

    return write_mirror(tmp_path / "mirror", rng, n_train=600, n_test=100)
