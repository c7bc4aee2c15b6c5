"""Save and load models as ``<stem>.npz`` (arrays) + ``<stem>.json`` (metadata).

No pickle: arrays are loaded with ``allow_pickle=False`` and metadata is
plain JSON. Both files are written atomically (temporary file + rename);
the npz is written first and the JSON records its SHA-256, so a JSON file
always describes a complete npz and a torn pair (crash between the two
renames) is detected on load.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnflow.files import file_sha256, load_npz, read_json, save_npz, write_json

__all__ = ["save_model", "load_model", "model_paths", "required", "inferred_dtype"]

FORMAT = "nnflow.model/1"


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(npz, json)`` paths for a stem, an ``.npz`` or a ``.json`` path."""
    path = Path(path)
    if path.suffix in (".npz", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def save_model(path, params, metadata=None):
    """Write ``params`` (name -> array) and JSON-serialisable ``metadata``.

    ``path`` is a stem or a path ending in ``.npz``/``.json``. Returns the
    ``(npz_path, json_path)`` written. Array names must be valid identifiers
    of an npz member (no ``/``).
    """
    npz_path, json_path = model_paths(path)
    arrays = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"parameter names must be non-empty strings without '/', got {name!r}")
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ValueError(f"parameter {name!r} is an object array; only numeric arrays are saved")
        arrays[name] = arr
    save_npz(npz_path, **arrays)
    record = {
        "format": FORMAT,
        "npz": npz_path.name,
        "npz_sha256": file_sha256(npz_path),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "metadata": dict(metadata or {}),
    }
    write_json(json_path, record)
    return npz_path, json_path


def load_model(path):
    """Read a model written by :func:`save_model`: returns ``(params, metadata)``.

    Raises ``FileNotFoundError`` if a file is missing and ``ValueError`` if
    the JSON is not an nnflow model or the npz does not match its checksum.
    """
    npz_path, json_path = model_paths(path)
    record = read_json(json_path)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{json_path}: not an nnflow model file (format {FORMAT!r} expected)")
    if file_sha256(npz_path) != record.get("npz_sha256"):
        raise ValueError(f"{npz_path} does not match the checksum recorded in {json_path}")
    params = load_npz(npz_path)
    return params, record["metadata"]


def required(metadata, key, path):
    """``metadata[key]``, or a ValueError naming the key and the model's JSON file."""
    if key not in metadata:
        raise ValueError(f"{model_paths(path)[1]}: the model metadata has no {key!r} "
                         f"(keys present: {sorted(metadata)})")
    return metadata[key]


def inferred_dtype(metadata, params, names, path):
    """The model's float dtype: ``metadata["dtype"]``, or the one dtype of the arrays ``names``.

    Files written before the dtype was recorded lack the key; their arrays say it
    unambiguously when they all share one float dtype. Otherwise a ValueError names
    the file, the key and the dtypes found.
    """
    if "dtype" in metadata:
        return np.dtype(metadata["dtype"])
    found = sorted({str(params[n].dtype) for n in names})
    if len(found) == 1 and found[0] in ("float32", "float64"):
        return np.dtype(found[0])
    raise ValueError(f"{model_paths(path)[1]}: the model metadata has no 'dtype' and the arrays "
                     f"do not determine it (dtypes {found}; one of float32, float64 expected)")
