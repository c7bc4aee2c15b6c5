"""Shared fixtures (keep them small and generic)."""

from __future__ import annotations

import dataclasses
import hashlib

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


@pytest.fixture
def canonical_mnist(monkeypatch, rng):
    """Four small MNIST-format files (gzipped, by name), and a registry whose 'published'
    md5s match them: what fetching and preparing canonical files does, on tiny data."""
    from nnflow.data import sources
    from nnflow.data.synthetic import gzip_bytes, idx_bytes

    contents = {
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (20, 28, 28), np.uint8)),
        "train-labels-idx1-ubyte.gz": idx_bytes(rng.integers(0, 10, 20, np.uint8)),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (5, 28, 28), np.uint8)),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(rng.integers(0, 10, 5, np.uint8)),
    }
    mnist = sources.DATASETS["mnist"]
    files = tuple(
        sources.SourceFile(name, hashlib.md5(raw).hexdigest(), "decompressed", mnist.file(name).role)
        for name, raw in contents.items()
    )
    monkeypatch.setitem(sources.DATASETS, "mnist", dataclasses.replace(mnist, files=files))
    return {name: gzip_bytes(raw) for name, raw in contents.items()}
