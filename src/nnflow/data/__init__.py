"""The data stage: fetch the raw MNIST / CIFAR-10 files, verify, parse, split.

- :mod:`.sources`: the registry (file names, URLs, published checksums)
- :mod:`.fetch`: download cache -> local mirror -> URLs, all verified
- :mod:`.formats`: parsers of IDX, CIFAR-10 binary records and tar.gz (NumPy, no pickle)
- :mod:`.prepare`: the Nielsen / CS231n splits as ``.npy`` + ``provenance.json``
- :mod:`.synthetic`: tiny fake mirrors for tests (never real data)
"""

from nnflow.data.fetch import (
    ChecksumError,
    FetchError,
    FetchOptions,
    MirrorError,
    fetch,
    fetch_dataset,
)
from nnflow.data.formats import (
    DataFormatError,
    read_cifar_records,
    read_idx,
    read_tar_members,
)
from nnflow.data.prepare import (
    ARRAYS,
    SplitSizeError,
    load_prepared,
    prepare_cifar10,
    prepare_dataset,
    prepare_mnist,
)
from nnflow.data.sources import DATASETS, get_source

__all__ = [
    "ARRAYS",
    "DATASETS",
    "ChecksumError",
    "DataFormatError",
    "FetchError",
    "FetchOptions",
    "MirrorError",
    "SplitSizeError",
    "fetch",
    "fetch_dataset",
    "get_source",
    "load_prepared",
    "prepare_cifar10",
    "prepare_dataset",
    "prepare_mnist",
    "read_cifar_records",
    "read_idx",
    "read_tar_members",
]
