"""Registry of the datasets: canonical file names, download URLs, published checksums.

MNIST is verified by the md5 of the *decompressed* IDX files (the published
reference values), so a recompressed but content-identical ``.gz`` passes.
CIFAR-10 (binary version) is verified by the md5 of the archive itself.
"""

from __future__ import annotations

from dataclasses import dataclass

CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_RECORD_BYTES = 1 + 3072
CIFAR_BATCH_RECORDS = 10_000
CIFAR_BATCH_BYTES = CIFAR_RECORD_BYTES * CIFAR_BATCH_RECORDS  # 30,730,000
CIFAR_TRAIN_MEMBERS = tuple(f"{CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_MEMBER = f"{CIFAR_DIR}/test_batch.bin"
CIFAR_META_MEMBER = f"{CIFAR_DIR}/batches.meta.txt"
CIFAR_META_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset as it is downloaded."""

    name: str  # canonical file name
    md5: str  # published md5
    md5_of: str  # "decompressed" (md5 of the gunzipped content) or "file"


@dataclass(frozen=True)
class DatasetSource:
    name: str  # nnflow's dataset name ("mnist", "cifar10")
    label: str  # how figures and captions name it ("MNIST", "CIFAR-10")
    mirror_subdir: str  # folder of the files inside a mirror
    base_urls: tuple[str, ...]  # tried in order; a file's URL is base + name
    files: tuple[SourceFile, ...]

    def urls(self, filename: str) -> list[str]:
        return [base + filename for base in self.base_urls]

    def file(self, filename: str) -> SourceFile:
        for f in self.files:
            if f.name == filename:
                return f
        raise KeyError(f"{self.name} has no file {filename!r}")

    @property
    def filenames(self) -> list[str]:
        return [f.name for f in self.files]


MNIST = DatasetSource(
    name="mnist",
    label="MNIST",
    mirror_subdir="mnist",
    base_urls=(
        "http://yann.lecun.com/exdb/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    files=(
        SourceFile("train-images-idx3-ubyte.gz", "6bbc9ace898e44ae57da46a324031adb", "decompressed"),
        SourceFile("train-labels-idx1-ubyte.gz", "a25bea736e30d166cdddb491f175f624", "decompressed"),
        SourceFile("t10k-images-idx3-ubyte.gz", "2646ac647ad5339dbf082846283269ea", "decompressed"),
        SourceFile("t10k-labels-idx1-ubyte.gz", "27ae3e4e09519cfbb04c329615203637", "decompressed"),
    ),
)

CIFAR10 = DatasetSource(
    name="cifar10",
    label="CIFAR-10",
    mirror_subdir="cifar-10",
    base_urls=("https://www.cs.toronto.edu/~kriz/",),
    files=(SourceFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", "file"),),
)

DATASETS: dict[str, DatasetSource] = {"mnist": MNIST, "cifar10": CIFAR10}


def get_source(dataset: str) -> DatasetSource:
    """The registry entry of ``dataset``; ValueError naming the allowed names otherwise."""
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        allowed = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {allowed}") from None


def check_dataset(dataset: str) -> str:
    get_source(dataset)
    return dataset
