"""Saving and loading :class:`nnflow.nn.network2.Network` (nnflow's files and Nielsen's JSON),
and network2's per-epoch report on stdout (``SGD(..., verbose=True)``).

:func:`nnflow.nn.network2.load` and :meth:`~nnflow.nn.network2.Network.save` are
the public names; this module holds their code.

Two formats are read:

- nnflow's ``<stem>.npz`` + ``<stem>.json`` (:mod:`nnflow.nn.model_io`), written by
  ``Network.save`` and by the workflow's network2 runs (``results/runs/.../model``):
  arrays ``w{i}`` of shape ``(n_out, n_in)`` and ``b{i}`` of shape ``(n_out, 1)``,
  metadata ``kind``, ``sizes``, ``cost`` and ``dtype``. Files written before the
  dtype was recorded load with the dtype of their arrays.
- Nielsen's ``network2.py`` ``save``: one JSON file with ``sizes``, ``weights`` and
  ``biases`` (nested lists of shapes ``(n_out, n_in)`` and ``(n_out, 1)``) and
  ``cost`` (the class name, ``"CrossEntropyCost"`` or ``"QuadraticCost"``); it
  loads as a float64 Network whose ``feedforward`` is Nielsen's
  ``a <- sigmoid(w a + b)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnflow.files import read_json
from nnflow.nn.costs import COSTS, cost_name
from nnflow.nn.model_io import FORMAT, inferred_dtype, load_model, required, save_model

__all__ = ["KIND", "metadata", "save", "load", "load_nielsen_json"]

KIND = "nnflow.network2.Network"
NIELSEN_COSTS = {cls.__name__: cls for cls in COSTS.values()}  # "CrossEntropyCost" -> class


def metadata(net) -> dict:
    """What a saved Network's JSON records: kind, layer sizes, cost name and dtype."""
    return {"kind": KIND, "sizes": list(net.sizes), "cost": cost_name(net.cost),
            "dtype": str(net.dtype)}


def params(net) -> dict[str, np.ndarray]:
    """The arrays of a saved Network: ``w{i}`` (n_out, n_in) and ``b{i}`` (n_out, 1)."""
    arrays = {}
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        arrays[f"w{i}"] = np.ascontiguousarray(w)
        arrays[f"b{i}"] = np.ascontiguousarray(b)
    return arrays


def save(net, filename):
    """Write ``net`` to ``<stem>.npz`` + ``<stem>.json``; returns the two paths."""
    return save_model(filename, params(net), metadata(net))


def _is_nielsen_file(path: Path) -> bool:
    """True when ``path`` names one existing file that is not nnflow's pair (Nielsen's JSON)."""
    if not path.is_file() or path.suffix == ".npz":
        return False
    record = read_json(path)
    return not (isinstance(record, dict) and record.get("format") == FORMAT)


def load(filename: str | os.PathLike, seed=None, rng=None):
    """A :class:`~nnflow.nn.network2.Network` from nnflow's files or from Nielsen's JSON.

    ``filename`` is nnflow's stem (or its ``.npz``/``.json``) or the path of a JSON file
    written by Nielsen's ``network2.save``. ``seed``/``rng`` seed the loaded network's
    generator (used by further training). Missing files raise FileNotFoundError; a file
    that is neither format, or lacks a key, raises ValueError naming the file and the key.
    """
    path = Path(filename)
    if _is_nielsen_file(path):
        return load_nielsen_json(path, seed=seed, rng=rng)
    from nnflow.nn.network2 import Network

    arrays, meta = load_model(path)
    if meta.get("kind") != KIND:
        raise ValueError(f"{filename}: not a saved network2.Network (kind={meta.get('kind')!r}, "
                         f"{KIND!r} expected)")
    sizes = [int(s) for s in required(meta, "sizes", path)]
    names = [f"{p}{i}" for i in range(len(sizes) - 1) for p in ("w", "b")]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"{filename}: arrays {missing} missing from the npz (sizes {sizes})")
    dtype = inferred_dtype(meta, arrays, names, path)
    net = Network(sizes, cost=required(meta, "cost", path), seed=seed, rng=rng, dtype=dtype)
    net.weights = [arrays[f"w{i}"] for i in range(len(sizes) - 1)]
    net.biases = [arrays[f"b{i}"] for i in range(len(sizes) - 1)]
    return net


def load_nielsen_json(path: str | os.PathLike, seed=None, rng=None):
    """A float64 Network from the JSON file written by Nielsen's ``network2.Network.save``.

    Checks the file's keys and the shapes its layer sizes imply, naming the file, the key
    and the layer in the error.
    """
    from nnflow.nn.network2 import Network

    path = Path(path)
    record = read_json(path)
    if not isinstance(record, dict):
        raise ValueError(f"{path}: neither an nnflow model nor Nielsen's network2 JSON (a JSON "
                         f"object with sizes, weights, biases, cost expected, got "
                         f"{type(record).__name__})")
    missing = [k for k in ("sizes", "weights", "biases", "cost") if k not in record]
    if missing:
        raise ValueError(f"{path}: Nielsen's network2 JSON needs the keys sizes, weights, biases, "
                         f"cost; missing {missing}")
    if record["cost"] not in NIELSEN_COSTS:
        raise ValueError(f"{path}: cost {record['cost']!r} unknown (allowed: {sorted(NIELSEN_COSTS)})")
    try:
        net = Network(record["sizes"], cost=NIELSEN_COSTS[record["cost"]], seed=seed, rng=rng,
                      dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: sizes {record['sizes']!r} unusable ({exc})") from exc
    layers = len(net.sizes) - 1
    for key in ("weights", "biases"):
        if not isinstance(record[key], list) or len(record[key]) != layers:
            raise ValueError(f"{path}: {key} must list {layers} arrays (sizes {net.sizes}), got "
                             f"{len(record[key]) if isinstance(record[key], list) else record[key]!r}")
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True)):
        w, b = _array(path, "weights", i, record), _array(path, "biases", i, record)
        if w.shape != (n_out, n_in):
            raise ValueError(f"{path}: weights[{i}] must have shape {(n_out, n_in)}, got {w.shape}")
        if b.shape not in ((n_out, 1), (n_out,)):
            raise ValueError(f"{path}: biases[{i}] must have shape {(n_out, 1)}, got {b.shape}")
        weights.append(w)
        biases.append(b.reshape(n_out, 1))
    net.weights, net.biases = weights, biases
    return net


def _array(path: Path, key: str, i: int, record: dict) -> np.ndarray:
    try:
        return np.asarray(record[key][i], dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged nested lists, strings
        raise ValueError(f"{path}: {key}[{i}] is not a numeric array ({exc})") from exc


def print_epoch(record, n_train, n_eval):
    """network2's per-epoch report: the epoch (from 0), then the monitored values."""
    print(f"Epoch {record['epoch']} training complete")
    for key, text, total in (("training_cost", "Cost on training data", None),
                             ("training_accuracy", "Accuracy on training data", n_train),
                             ("evaluation_cost", "Cost on evaluation data", None),
                             ("evaluation_accuracy", "Accuracy on evaluation data", n_eval)):
        if key in record:
            print(f"{text}: {record[key]}" + ("" if total is None else f" / {total}"))
    print(flush=True)
