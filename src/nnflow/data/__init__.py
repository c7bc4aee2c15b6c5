"""The data stage: fetch the raw MNIST / CIFAR-10 files, verify, parse, split.

- :mod:`.sources`: the registry (file names, URLs, published checksums)
- :mod:`.fetch`: download cache -> local mirror -> URLs, all verified
- :mod:`.download`: one file over HTTP(S): timeout, retries, a deadline per file
- :mod:`.cache`: reading the download cache, every byte checked against the fetch record
- :mod:`.formats`: parsers of IDX, CIFAR-10 binary records and tar.gz (NumPy, no pickle)
- :mod:`.prepare`: the Nielsen / CS231n splits as ``.npy`` + ``provenance.json``
- :mod:`.prepared`: the prepared arrays' names and their loader (what training reads)
- :mod:`.synthetic`: tiny fake mirrors for tests (never real data)

Import from the sub-modules: this package file imports nothing, so that a job's
source hash (:mod:`nnflow.workflow.sourcehash`) holds only the modules it runs.
"""
