"""Dataset declarations: where the files come from, how they are verified and split.

A dataset is declared by a plain mapping (the shape of ``config.yaml``'s
``data.datasets.<name>``): its ``format`` (a key of
:data:`nnflow.data.prepare.FORMATS`), a ``label`` for figures, the ``urls`` and
``mirror_subdir`` it is fetched from, its ``files`` by role with their published
checksums, whether a mirror copy may be accepted by the mirror's SHA256SUMS
(``accept_mirror_checksums``), an optional ``mirror_note`` for non-canonical
copies, and the format's split settings (e.g. ``validation_size``, ``dtype``).

MNIST and CIFAR-10 are built in (:data:`BUILTIN_DECLARATIONS`); ``config.yaml``
may override their settings and declares any further dataset in full
(:func:`declared_datasets` merges the two). MNIST is verified by the md5 of the
*decompressed* IDX files (the published reference values), so a recompressed but
content-identical ``.gz`` passes; CIFAR-10 by the md5 of the archive itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_RECORD_BYTES = 1 + 3072
CIFAR_BATCH_RECORDS = 10_000
CIFAR_BATCH_BYTES = CIFAR_RECORD_BYTES * CIFAR_BATCH_RECORDS  # 30,730,000
CIFAR_TRAIN_MEMBERS = tuple(f"{CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_MEMBER = f"{CIFAR_DIR}/test_batch.bin"
CIFAR_META_MEMBER = f"{CIFAR_DIR}/batches.meta.txt"
CIFAR_META_MAX_BYTES = 64 * 1024

# Keys of a declaration that say where and how to fetch; the others are the
# format's settings, which change the prepared arrays.
SOURCE_KEYS = ("format", "label", "urls", "mirror_subdir", "files", "accept_mirror_checksums", "mirror_note",
               "features")

BUILTIN_DECLARATIONS: dict[str, dict[str, Any]] = {
    "mnist": {
        "format": "idx",
        "label": "MNIST",
        "mirror_subdir": "mnist",
        "urls": [
            "http://yann.lecun.com/exdb/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "files": {
            "train_images": {"name": "train-images-idx3-ubyte.gz",
                             "md5": "6bbc9ace898e44ae57da46a324031adb", "md5_of": "decompressed"},
            "train_labels": {"name": "train-labels-idx1-ubyte.gz",
                             "md5": "a25bea736e30d166cdddb491f175f624", "md5_of": "decompressed"},
            "test_images": {"name": "t10k-images-idx3-ubyte.gz",
                            "md5": "2646ac647ad5339dbf082846283269ea", "md5_of": "decompressed"},
            "test_labels": {"name": "t10k-labels-idx1-ubyte.gz",
                            "md5": "27ae3e4e09519cfbb04c329615203637", "md5_of": "decompressed"},
        },
        "accept_mirror_checksums": False,
        "features": 28 * 28,
        "validation_size": 10000,  # Nielsen's mnist_loader
    },
    "cifar10": {
        "format": "cifar10_binary",
        "label": "CIFAR-10",
        "mirror_subdir": "cifar-10",
        "urls": ["https://www.cs.toronto.edu/~kriz/"],
        "files": {
            "archive": {"name": "cifar-10-binary.tar.gz",
                        "md5": "c32a1d4ab5d03f1284b67883e8d87530", "md5_of": "file"},
        },
        "accept_mirror_checksums": True,
        "mirror_note": (
            "JPEG-recompressed mirror: accuracies are close to, not equal to, those on the original data"
        ),
        "num_training": 49000,  # CS231n's get_CIFAR10_data
        "num_validation": 1000,
        "num_test": 10000,
    },
}


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset as it is downloaded."""

    name: str  # canonical file name
    md5: str  # published md5
    md5_of: str  # "decompressed" (md5 of the gunzipped content) or "file"
    role: str = ""  # what the file holds for its format, e.g. "train_images"


@dataclass(frozen=True)
class DatasetSource:
    name: str  # nnflow's dataset name ("mnist", "cifar10", or a config key)
    label: str  # how figures and captions name it ("MNIST", "CIFAR-10")
    format: str  # a key of nnflow.data.prepare.FORMATS
    mirror_subdir: str  # folder of the files inside a mirror
    base_urls: tuple[str, ...]  # tried in order; a file's URL is base + name
    files: tuple[SourceFile, ...]
    accept_mirror_checksums: bool = False
    mirror_note: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)  # the format's split settings
    features: int | None = None  # input features per example (D), when declared; checked when prepared

    @classmethod
    def from_declaration(cls, name: str, declaration: Mapping[str, Any]) -> DatasetSource:
        d = declaration
        where = f"data.datasets.{name}"
        missing = [k for k in ("format", "files") if k not in d]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        files = tuple(
            SourceFile(f["name"], str(f["md5"]).lower(), f.get("md5_of", "file"), role)
            for role, f in d["files"].items()
        )
        return cls(
            name=name,
            label=d.get("label", name),
            format=d["format"],
            mirror_subdir=d.get("mirror_subdir", name),
            base_urls=tuple(d.get("urls", ())),
            files=files,
            accept_mirror_checksums=bool(d.get("accept_mirror_checksums", False)),
            mirror_note=d.get("mirror_note", ""),
            features=d.get("features"),
            settings={k: v for k, v in d.items() if k not in SOURCE_KEYS},
        )

    def urls(self, filename: str) -> list[str]:
        return [base + filename for base in self.base_urls]

    def file(self, filename: str) -> SourceFile:
        for f in self.files:
            if f.name == filename:
                return f
        raise KeyError(f"{self.name} has no file {filename!r}")

    def role(self, role: str) -> SourceFile:
        for f in self.files:
            if f.role == role:
                return f
        raise KeyError(f"data.datasets.{self.name}.files has no {role!r}")

    @property
    def filenames(self) -> list[str]:
        return [f.name for f in self.files]


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(
            out.get(key), Mapping) else copy.deepcopy(value)
    return out


def declared_datasets(config_datasets: Mapping[str, Any] | None = None) -> dict[str, DatasetSource]:
    """The built-in datasets with ``config.yaml``'s overrides, plus those it declares."""
    config_datasets = dict(config_datasets or {})
    merged = {
        name: _merge(decl, config_datasets.pop(name, {})) for name, decl in BUILTIN_DECLARATIONS.items()
    }
    merged.update(config_datasets)
    return {name: DatasetSource.from_declaration(name, decl) for name, decl in merged.items()}


DATASETS: dict[str, DatasetSource] = declared_datasets()


def get_source(dataset: str | DatasetSource) -> DatasetSource:
    """``dataset`` itself, or the built-in ``dataset``; ValueError naming the allowed names otherwise."""
    if isinstance(dataset, DatasetSource):
        return dataset
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        allowed = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {allowed}") from None
