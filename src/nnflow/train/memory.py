"""The memory a training run needs, estimated from the sizes it will hold.

A training job asks the scheduler for :func:`run_mem_mb` (``resources: mem_mb``)
unless its experiment sets ``resources.mem_mb``. The estimate adds up the arrays
the run keeps -- their shapes follow from the run's parameters and the dataset's
:class:`~nnflow.data.prepare.SplitShapes`, known from the declaration before any
file exists -- as if all of them were alive at once (the training steps and the
end-of-epoch evaluation never quite overlap that much), multiplies the sum by
:data:`SAFETY_FACTOR` and adds :data:`BASELINE_MB` for the interpreter, NumPy,
SciPy and Snakemake's script preamble plus :data:`BLAS_MB_PER_THREAD` per thread, and
:data:`NUMBA_MB` for numba's runtime in a run that starts it (:func:`starts_numba`).

With ``s`` bytes per value, ``D`` inputs, ``K`` classes, ``n`` training rows used
and ``b = min(batch size, n)`` (the trainers never use a larger batch), a run holds

- *training data*: the ``n`` rows' pages of the memory-mapped file (``take_first`` and
  the nets read them in place; resident file pages count in the RSS): ``n D s``;
- *evaluation data*: the mapped pages of the split it evaluates each epoch (network2:
  test; solver: validation, a sampled copy of the training rows, and the test split in
  the random search's final run), one-hot targets and outputs; a network2 run that starts
  numba also keeps the non-zeros of its training and test inputs, which its monitoring and
  its first layer's products read (:func:`nnflow.nn.sparse_input.max_nbytes`);
- *parameters* ``P`` values: network2 keeps a gradient buffer per layer; the solver
  keeps the gradients, the best parameters and the update rule's arrays
  (:func:`update_rule_arrays`: sgd 1, sgd_momentum and rmsprop 2, adam 3);
- *batch*: the batch's inputs and every layer's activations -- network2's preallocated
  buffers (pre-activation, activation, delta, scratch per layer), the solver's caches
  (:data:`SOLVER_ARRAYS_PER_UNIT` per hidden unit and example);
- *evaluation pass*: the activations of one evaluation chunk (network2: 2048 rows,
  solver: the batch size, 1000 rows for the test predictions) and the solver's
  train-mode gradient probe of up to 1000 rows;
- *history*: the solver's per-iteration loss records.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnflow.data.prepare import SplitShapes
from nnflow.nn import kernels, network2_kernel, optim, sparse_input
from nnflow.nn.network2 import _EVAL_CHUNK as NETWORK2_EVAL_CHUNK
from nnflow.nn.network2 import _GATHER_ROWS as NETWORK2_GATHER_ROWS
from nnflow.train.trainers.solver import LAYER_NORM_BATCH, setting

MB = 10**6  # Snakemake's mem_mb is in megabytes
# Peak RSS of a training job with (almost) no data: Python, NumPy, SciPy's special
# functions, nnflow and Snakemake's script preamble measure 60-75 MB.
BASELINE_MB = 100
BLAS_MB_PER_THREAD = 34  # OpenBLAS's work buffer per thread (32 MiB)
SAFETY_FACTOR = 1.5
# numba's runtime in a job that starts it (LLVM, the loaded kernels): a mnist_overfitting
# job's peak RSS went from 149 to 288 MB when its epochs were compiled.
NUMBA_MB = 150
# Arrays of a hidden layer's width per example in the solver's train-mode step: the
# affine output (activated in place), its gradient and the temporaries of the backward
# pass; batchnorm keeps the normalised input and centred values and makes a new output;
# dropout a mask and an output; tanh a new output.
SOLVER_ARRAYS_PER_UNIT = {"base": 3, "batchnorm": 3, "dropout": 2, "tanh": 1}
PREDICT_ROWS = 1000  # FullyConnectedNet.predict's chunk (the final run's test predictions)
ITERATION_RECORD_BYTES = 512  # a loss in the history, its row of iterations.csv and its text


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of the arrays a run holds, by what holds them, and the request they lead to."""

    arrays: dict[str, int]
    threads: int = 1
    numba: bool = False  # the run starts numba (its runtime counts too)

    @property
    def array_bytes(self) -> int:
        return sum(self.arrays.values())

    @property
    def mem_mb(self) -> int:
        """``BASELINE_MB + BLAS_MB_PER_THREAD * threads + SAFETY_FACTOR * arrays / MB``, plus
        ``NUMBA_MB`` when the run starts numba, rounded up."""
        return math.ceil(BASELINE_MB + BLAS_MB_PER_THREAD * self.threads
                         + SAFETY_FACTOR * self.array_bytes / MB + (NUMBA_MB if self.numba else 0))


def update_rule_arrays(name: str) -> int:
    """How many arrays of a parameter's shape the update rule ``name`` keeps per parameter
    (its state and scratch space), counted in its config after one step on a 1x1 parameter:
    a rule added to :data:`nnflow.nn.optim.UPDATE_RULES` is counted like the built-in ones."""
    _, config = optim.get_update_rule(name)(np.zeros((1, 1)), np.zeros((1, 1)), {})
    return sum(isinstance(value, np.ndarray) for value in config.values())


def _training_rows(params: Mapping[str, Any], shapes: SplitShapes) -> int:
    size = params.get("train_size")
    return shapes.n_train if size is None else min(int(size), shapes.n_train)


def _parameter_count(dims: list[int]) -> int:
    return sum((n_in + 1) * n_out for n_in, n_out in zip(dims[:-1], dims[1:], strict=True))


def network2_arrays(params: Mapping[str, Any], shapes: SplitShapes, evaluate_test: bool = True
                    ) -> dict[str, int]:
    """Bytes held by a network2 run (see the module docstring); it evaluates the test split anyway."""
    sizes = [int(v) for v in params["sizes"]]
    s, d, k = shapes.itemsize, sizes[0], sizes[-1]
    n = _training_rows(params, shapes)
    b = max(1, min(int(params["mini_batch_size"]), n))
    # every layer's width, hidden ones with the column of ones that carries the bias
    widths = sum(sizes[1:]) + len(sizes) - 2
    gathered = min(max(b, (NETWORK2_GATHER_ROWS // b) * b), n)
    chunk = min(NETWORK2_EVAL_CHUNK, max(n, shapes.n_test))
    # a run that starts numba trains and monitors through copies of the inputs' non-zeros
    sparse = 0
    if starts_numba("network2", params, shapes):
        sparse = sparse_input.max_nbytes(n, d, s, pointers=2) + sparse_input.max_nbytes(shapes.n_test, d, s)
    return {
        "training data": n * (d + k) * s,  # the inputs' pages and the one-hot targets
        "evaluation data": shapes.n_test * (d + 2 * k) * s + sparse,
        "parameters": 2 * _parameter_count(sizes) * s,
        # the gathered block of shuffled rows; buffers for the batch and for a last, smaller one
        "batch": (gathered * (d + 1 + k) + (b + n % b) * (d + 1 + k + 4 * widths)) * s,
        # one chunk's activations; the outputs of all rows, as chunks and concatenated
        "evaluation pass": chunk * 2 * widths * s + 2 * max(n, shapes.n_test) * k * s,
    }


def solver_arrays(params: Mapping[str, Any], shapes: SplitShapes, evaluate_test: bool = False
                  ) -> dict[str, int]:
    """Bytes held by a solver run (see the module docstring)."""
    s, d, k = shapes.itemsize, shapes.dim, shapes.num_classes
    hidden = [int(h) for h in params["hidden_dims"]]
    n = _training_rows(params, shapes)
    b = max(1, min(int(setting(params, "batch_size")), n))
    sampled = setting(params, "num_train_samples")
    sampled_rows = min(int(sampled), n) if sampled is not None and int(sampled) < n else 0
    batchnorm = setting(params, "normalization") == "batchnorm"
    dropout = setting(params, "dropout_keep_ratio") != 1
    tanh = setting(params, "activation") == "tanh"
    per_unit = sum(SOLVER_ARRAYS_PER_UNIT[key] for key, used in
                   (("base", True), ("batchnorm", batchnorm), ("dropout", dropout), ("tanh", tanh)) if used)
    step_values = d + per_unit * sum(hidden) + 4 * k  # per example of a train-mode step
    eval_values = 2 * sum(hidden) + 3 * k  # per example of a test-mode forward pass (inputs read in place)
    n_params = _parameter_count([d, *hidden, k]) + (2 * sum(hidden) if batchnorm else 0)
    track = bool(setting(params, "track_layer_gradients"))
    # parameters, gradients, best parameters, the update rule's arrays, the gradient probe's
    # copy, the L2 terms' work arrays
    copies = (3 + update_rule_arrays(setting(params, "update_rule")) + (1 if track else 0)
              + (1 if setting(params, "reg") else 0))
    eval_rows = max(b, PREDICT_ROWS if evaluate_test else 0)
    probe_rows = min(LAYER_NORM_BATCH, n) if track else 0
    iterations = int(params["num_epochs"]) * (math.ceil(n / b) + 1)
    return {
        "training data": n * d * s,
        "evaluation data": (shapes.n_val + sampled_rows + (shapes.n_test if evaluate_test else 0)) * d * s,
        "parameters": copies * n_params * s,
        "batch": b * step_values * s,
        "evaluation pass": (eval_rows * eval_values + probe_rows * step_values) * s,
        "history": iterations * ITERATION_RECORD_BYTES,
    }


def starts_numba(trainer: str, params: Mapping[str, Any], shapes: SplitShapes) -> bool:
    """Whether a run may start numba under ``NNFLOW_KERNELS=auto`` when numba is installed:
    a network2 run whose planned work reaches the compiled epoch's threshold
    (:data:`nnflow.nn.network2_kernel.START_AFTER`), a solver run whose update work -- every
    parameter once per step, as the fused step's single update call counts it -- reaches
    :data:`nnflow.nn.kernels.AUTO_START_AFTER`. Errs towards yes (a larger request)."""
    if importlib.util.find_spec("numba") is None:
        return False
    n = _training_rows(params, shapes)
    if trainer == "network2":
        sizes = [int(v) for v in params["sizes"]]
        return network2_kernel.planned_work(sizes, n, int(params["epochs"])) >= network2_kernel.START_AFTER
    if trainer == "solver":
        passes = kernels.NUMPY_PASSES.get(setting(params, "update_rule"))
        if passes is None:  # a rule without a fused kernel
            return False
        dims = [shapes.dim, *(int(h) for h in params["hidden_dims"]), shapes.num_classes]
        steps = int(params["num_epochs"]) * math.ceil(n / max(1, min(int(setting(params, "batch_size")), n)))
        return steps * _parameter_count(dims) * passes >= kernels.AUTO_START_AFTER
    return False


ESTIMATORS: dict[str, Callable[..., dict[str, int]]] = {
    "network2": network2_arrays,
    "solver": solver_arrays,
}


def estimate_run_memory(trainer: str, params: Mapping[str, Any], shapes: SplitShapes, *,
                        threads: int = 1, evaluate_test: bool = False) -> MemoryEstimate:
    """What a run of ``trainer`` with ``params`` on data of ``shapes`` holds at its peak.

    ``evaluate_test``: the run also predicts the test split (the random search's final run).
    """
    if trainer not in ESTIMATORS:
        raise ValueError(f"trainer {trainer!r} has no memory estimate (known: {', '.join(ESTIMATORS)}); "
                         "set resources.mem_mb of its experiments")
    try:
        arrays = ESTIMATORS[trainer](params, shapes, evaluate_test)
        numba = starts_numba(trainer, params, shapes)
    except KeyError as missing:
        raise ValueError(f"params: a {trainer} run needs {missing.args[0]!r} (its memory depends on it); "
                         f"given: {', '.join(sorted(params)) or 'none'}") from None
    return MemoryEstimate(arrays, int(threads), numba)


def run_mem_mb(trainer: str, params: Mapping[str, Any], shapes: SplitShapes, *, threads: int = 1,
               evaluate_test: bool = False) -> int:
    """The ``mem_mb`` a training job of this run asks for (see :class:`MemoryEstimate`)."""
    return estimate_run_memory(trainer, params, shapes, threads=threads, evaluate_test=evaluate_test).mem_mb
