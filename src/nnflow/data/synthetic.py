"""Tiny, format-exact fake datasets for tests and the workflow smoke test.

Real data NEVER come from here: these files only mimic the layout and the
binary formats of the MNIST and CIFAR-10 downloads (gzipped IDX files; a
``cifar-10-binary.tar.gz`` with the canonical member names; a ``SHA256SUMS``).
They cannot match the published checksums, so a pipeline using them must
accept the mirror's SHA256SUMS (``data.accept_mirror_checksums``) and records
them as non-canonical.

The images have learnable structure: each class has its own mean pattern, and
every image is that pattern plus noise, so a small network beats chance.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from nnflow.data.sources import CIFAR_DIR, CIFAR_META_MEMBER, CIFAR_TEST_MEMBER, CIFAR_TRAIN_MEMBERS

CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX encoding of a uint8 array with 1 or 3 dimensions."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: 0x00000801, 3: 0x00000803}[a.ndim]
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + a.tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0, no file name)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def class_images(rng: np.random.Generator, labels: np.ndarray, dim: int, noise: float = 40.0,
                 patterns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images: a per-class pattern in [30, 225] plus Gaussian noise."""
    if patterns is None:
        patterns = rng.uniform(30, 225, size=(10, dim))
    x = patterns[labels] + rng.normal(0, noise, size=(labels.size, dim))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), patterns


def cifar_tar_bytes(members: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz holding the directory and the given regular files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        d = tarfile.TarInfo(CIFAR_DIR)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(d)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(raw.getvalue())


def write_mirror(
    root: str | os.PathLike,
    rng: np.random.Generator,
    n_train: int = 600,
    n_test: int = 100,
    datasets: Iterable[str] = ("mnist", "cifar10"),
) -> Path:
    """Write a mirror (``mnist/``, ``cifar-10/``, ``SHA256SUMS``) under ``root``.

    MNIST: ``n_train`` training and ``n_test`` test images of 28x28.
    CIFAR-10: ``n_train`` training records spread over data_batch_1..5 (as
    evenly as possible) and ``n_test`` in test_batch.
    """
    root = Path(root)
    files: dict[str, bytes] = {}
    datasets = tuple(datasets)
    for ds in datasets:
        if ds not in ("mnist", "cifar10"):
            raise ValueError(f"unknown dataset {ds!r}; allowed: cifar10, mnist")
    if "mnist" in datasets:
        y_tr = rng.integers(0, 10, n_train).astype(np.uint8)
        y_te = rng.integers(0, 10, n_test).astype(np.uint8)
        x_tr, pat = class_images(rng, y_tr, 784)
        x_te, _ = class_images(rng, y_te, 784, patterns=pat)
        files["mnist/train-images-idx3-ubyte.gz"] = gzip_bytes(idx_bytes(x_tr.reshape(-1, 28, 28)))
        files["mnist/train-labels-idx1-ubyte.gz"] = gzip_bytes(idx_bytes(y_tr))
        files["mnist/t10k-images-idx3-ubyte.gz"] = gzip_bytes(idx_bytes(x_te.reshape(-1, 28, 28)))
        files["mnist/t10k-labels-idx1-ubyte.gz"] = gzip_bytes(idx_bytes(y_te))
    if "cifar10" in datasets:
        y_tr = rng.integers(0, 10, n_train).astype(np.uint8)
        y_te = rng.integers(0, 10, n_test).astype(np.uint8)
        x_tr, pat = class_images(rng, y_tr, 3072)
        x_te, _ = class_images(rng, y_te, 3072, patterns=pat)
        rec_tr = np.concatenate([y_tr[:, None], x_tr], axis=1)
        members = {CIFAR_META_MEMBER: ("\n".join(CIFAR_CLASSES) + "\n\n").encode()}
        for name, chunk in zip(CIFAR_TRAIN_MEMBERS, np.array_split(rec_tr, 5), strict=True):
            members[name] = chunk.tobytes()
        members[CIFAR_TEST_MEMBER] = np.concatenate([y_te[:, None], x_te], axis=1).tobytes()
        files["cifar-10/cifar-10-binary.tar.gz"] = cifar_tar_bytes(members)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n" for rel, d in sorted(files.items()))
    (root / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return root
