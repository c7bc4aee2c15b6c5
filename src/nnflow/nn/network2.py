"""Nielsen's ``network2.py`` (the MNIST sheet), vectorised over the mini-batch.

Same public names and mathematics as network2: sigmoid neurons, quadratic or
cross-entropy cost, L2 weight decay ``w <- (1 - eta*lmbda/n) w - (eta/m) sum grad``,
mini-batch SGD with a fresh shuffle each epoch, monitoring lists per epoch.

Differences, all deliberate:

- Each mini-batch is ONE matrix computation (``X`` of shape (m, D)); the
  result equals network2's per-example loop up to floating-point rounding.
- Randomness comes only from a ``numpy.random.Generator`` (``seed=``/``rng=``).
  Each epoch draws exactly one ``rng.permutation(n)`` and walks it in
  consecutive slices of ``mini_batch_size`` (the last may be smaller): this
  is network2's ``random.shuffle`` + slicing with an explicit generator.
- Data: network2's lists of ``(x, y)`` tuples of column vectors (one-hot
  ``y`` for training, integer ``y`` for evaluation) OR a tuple of arrays
  ``(X, y)`` with ``X`` (N, D) and ``y`` (N,) integer labels or (N, K)
  targets. The ``convert`` flags of ``accuracy``/``total_cost`` are accepted
  for compatibility, but the label format is detected from the data.
- ``save`` writes ``<stem>.npz`` + ``<stem>.json`` (no pickle); ``load`` reads those and
  Nielsen's JSON files.
- ``SGD`` detects divergence (non-finite weights or monitored cost) and
  stops; see :attr:`Network.status`.

Internally weights are stored as ``(n_in, n_out)`` C-contiguous arrays
(``a @ W``, the layout BLAS prefers for row batches); :attr:`Network.weights`
and :attr:`Network.biases` present network2's ``(n_out, n_in)`` and
``(n_out, 1)`` shapes as VIEWS of that storage, so reading, in-place editing,
item assignment (``net.weights[0] = w``) and assignment of whole lists all
work as in network2.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from nnflow.nn import checks, kernels, network2_io, network2_kernel
from nnflow.nn import initializers as _init
from nnflow.nn.costs import CrossEntropyCost, QuadraticCost, get_cost
from nnflow.nn.layers import sigmoid as _stable_sigmoid

__all__ = [
    "QuadraticCost",
    "CrossEntropyCost",
    "Network",
    "load",
    "sigmoid",
    "sigmoid_prime",
    "vectorized_result",
]

log = logging.getLogger(__name__)

_EVAL_CHUNK = 2048
_GATHER_ROWS = 2000  # examples gathered at a time by SGD (multiple of the batch)


def sigmoid(z):
    """The sigmoid function (numerically stable; no overflow warning)."""
    return _stable_sigmoid(z)


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    s = _stable_sigmoid(z)
    return s * (1.0 - s)


def vectorized_result(j, num_classes=10):
    """A (num_classes, 1) one-hot column vector with 1.0 at index j (network2's helper)."""
    e = np.zeros((num_classes, 1))
    e[j] = 1.0
    return e


_EXPIT = None


def _expit():
    """``scipy.special.expit`` (the logistic function in ONE ufunc call, a quarter of the
    four NumPy calls of ``1/(1 + exp(-z))`` at mini-batch 10), or None without SciPy."""
    global _EXPIT
    if _EXPIT is None:
        try:
            from scipy.special import expit
        except ImportError:  # pragma: no cover - scipy is a workflow dependency
            expit = False
        _EXPIT = expit
    return _EXPIT or None


class _ParamList(list):
    """List of views into a Network's storage; item assignment copies into it."""

    def __init__(self, views, kind):
        super().__init__(views)
        self._kind = kind

    def __setitem__(self, index, value):
        if not isinstance(index, int):
            raise TypeError(f"{self._kind}: assign one layer at a time (int index)")
        target = list.__getitem__(self, index)
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(
                f"{self._kind}[{index}] must have shape {target.shape}, got {value.shape}"
            )
        target[...] = value


class _Buffers:
    """Preallocated work arrays for one mini-batch size.

    Inputs and hidden activations carry an extra column of ones (``xa``,
    ``acts[l]`` for hidden layers): with the bias stored as the last row of
    the augmented weight matrix, ``[a, 1] @ [[W], [b]]`` adds the bias inside
    the matrix product and ``[a, 1]^T @ delta`` yields the weight AND bias
    gradients in one call.
    """

    def __init__(self, m, sizes, dtype):
        self.xa = np.empty((m, sizes[0] + 1), dtype=dtype)
        self.xa[:, -1] = 1.0
        self.x = self.xa[:, :-1]
        self.t = np.empty((m, sizes[-1]), dtype=dtype)
        self.z = [np.empty((m, s), dtype=dtype) for s in sizes[1:]]
        self.acts = []
        for i, s in enumerate(sizes[1:]):
            if i < len(sizes) - 2:
                a = np.empty((m, s + 1), dtype=dtype)
                a[:, -1] = 1.0
            else:
                a = np.empty((m, s), dtype=dtype)
            self.acts.append(a)
        self.deltas = [np.empty((m, s), dtype=dtype) for s in sizes[1:]]
        self.tmp = [np.empty((m, s), dtype=dtype) for s in sizes[1:]]
        self.gwb = [np.empty((d + 1, s), dtype=dtype)
                    for d, s in zip(sizes[:-1], sizes[1:], strict=True)]


class Network:
    """A sigmoid network trained by mini-batch SGD (network2's ``Network``).

    Parameters
    ----------
    sizes : list of int
        Layer widths, e.g. ``[784, 30, 10]``.
    cost : cost class or name
        ``CrossEntropyCost`` (default) / ``QuadraticCost`` or
        ``"cross_entropy"`` / ``"quadratic"``.
    seed, rng : int or ``numpy.random.Generator`` (at most one)
        Source of all randomness (initial weights, shuffling).
    dtype : float dtype, default float64.
    """

    def __init__(self, sizes, cost=CrossEntropyCost, seed=None, rng=None, dtype=np.float64):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s <= 0 for s in sizes):
            raise ValueError(f"sizes must list >= 2 positive layer widths, got {sizes}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.sizes = sizes
        self.num_layers = len(sizes)
        self.cost = get_cost(cost)
        self.dtype = dtype
        self.rng = _init.as_rng(rng, seed)
        # Storage: one (n_in + 1, n_out) C-contiguous matrix per layer, weights in the
        # first n_in rows, the bias in the last; _W and _b are views of it.
        self._Wb = [np.zeros((d + 1, m), dtype=dtype)
                    for d, m in zip(sizes[:-1], sizes[1:], strict=True)]
        self._W = [wb[:-1] for wb in self._Wb]
        self._b = [wb[-1] for wb in self._Wb]
        self._buffers = {}
        self.status = {"status": "not_trained", "diverged_epoch": None, "epochs_completed": 0}
        self.default_weight_initializer()

    # ------------------------------------------------------------------ parameters

    @property
    def weights(self):
        """Per layer ``(n_out, n_in)`` weight matrices (views into the network)."""
        return _ParamList([w.T for w in self._W], "weights")

    @weights.setter
    def weights(self, values):
        values = list(values)
        if len(values) != len(self._W):
            raise ValueError(f"weights must list {len(self._W)} arrays, got {len(values)}")
        target = self.weights
        for i, v in enumerate(values):
            target[i] = v

    @property
    def biases(self):
        """Per layer ``(n_out, 1)`` bias columns (views into the network)."""
        return _ParamList([b[:, None] for b in self._b], "biases")

    @biases.setter
    def biases(self, values):
        values = list(values)
        if len(values) != len(self._b):
            raise ValueError(f"biases must list {len(self._b)} arrays, got {len(values)}")
        target = self.biases
        for i, v in enumerate(values):
            target[i] = np.reshape(v, target[i].shape) if np.size(v) == target[i].size else v

    def _set_params(self, weights, biases):
        for dst, src in zip(self._W, weights, strict=True):
            dst[...] = src
        for dst, src in zip(self._b, biases, strict=True):
            dst[...] = src

    def default_weight_initializer(self):
        """Weights ~ N(0, 1)/sqrt(n_in), biases ~ N(0, 1), drawn from ``self.rng``."""
        self._set_params(*_init.network2_default(self.rng, self.sizes, dtype=self.dtype))

    def large_weight_initializer(self):
        """Weights ~ N(0, 1), biases ~ N(0, 1), drawn from ``self.rng``."""
        self._set_params(*_init.large(self.rng, self.sizes, dtype=self.dtype))

    # ------------------------------------------------------------------ data handling

    def _features(self, x):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating) or x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x

    def _arrays(self, data, name, where):
        """``(X (N, D), labels (N,) or None, targets (N, K) or None)`` from either format.

        Refused with an error naming ``where`` and ``name``: no examples, inputs not of
        width D, labels not integers in [0, K), targets not (N, K), NaN or inf anywhere.
        """
        d, k = self.sizes[0], self.sizes[-1]
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
            X, y = self._features(data[0]), np.asarray(data[1])
            if X.ndim == 1:
                X = X[None, :]
        else:
            X, y = checks.stack_pairs(where, name, data, d, k)
            X = self._features(X)
        checks.examples(where, f"{name} inputs", X, d, flat=True)
        checks.finite(where, f"{name} inputs", X)
        if y.ndim == 1:
            return X, checks.labels(where, f"{name} labels", y, X.shape[0], k), None
        if y.ndim == 2 and y.shape == (X.shape[0], k):
            return X, None, checks.finite(where, f"{name} targets", y.astype(self.dtype, copy=False))
        raise ValueError(f"{where}: {name} labels must have shape ({X.shape[0]},) (integers) or "
                         f"({X.shape[0]}, {k}) (one-hot), got {y.shape}")

    def _one_hot(self, labels):
        t = np.zeros((labels.shape[0], self.sizes[-1]), dtype=self.dtype)
        t[np.arange(labels.shape[0]), labels] = 1.0
        return t

    def _training_arrays(self, data, name, where):
        X, labels, targets = self._arrays(data, name, where)
        if targets is None:
            targets = self._one_hot(labels)
        return X, targets

    # ------------------------------------------------------------------ forward

    def _forward(self, X, first=None):
        """Outputs for ``X`` (N, D); ``first``: the first layer's product ``X @ W``, if computed."""
        a = X
        for layer, (W, b) in enumerate(zip(self._W, self._b, strict=True)):
            z = a @ W if layer or first is None else first
            z += b
            a = _stable_sigmoid(z, out=z)
        return a

    def _outputs(self, X, sparse=None):
        """Outputs for ``X`` (N, D), :data:`_EVAL_CHUNK` rows at a time; ``sparse``: ``X`` as
        :class:`~nnflow.nn.sparse_input.SparseRows`, whose first-layer product has NumPy's bits."""
        def chunk(start, stop):
            first = None if sparse is None else sparse.matmul(self._W[0], start, stop)
            return self._forward(X[start:stop], first)

        n = X.shape[0]
        if n <= _EVAL_CHUNK:
            return chunk(0, n)
        return np.concatenate([chunk(i, min(i + _EVAL_CHUNK, n)) for i in range(0, n, _EVAL_CHUNK)])

    def feedforward(self, a):
        """Network output for input ``a``.

        ``a`` may be a ``(D, 1)`` column (returns ``(K, 1)``, as network2),
        a ``(D,)`` vector (returns ``(K,)``) or a batch ``(N, D)`` (returns ``(N, K)``).
        """
        a = self._features(a)
        d = self.sizes[0]
        if a.ndim == 2 and a.shape == (d, 1) and d != 1:
            return self._forward(a.T).T
        if a.ndim == 1 and a.shape[0] == d:
            return self._forward(a[None, :])[0]
        if a.ndim == 2 and a.shape[1] == d:
            return self._outputs(a)
        raise ValueError(f"a must have shape ({d}, 1), ({d},) or (N, {d}), got {a.shape}")

    # ------------------------------------------------------------------ gradients

    def backprop(self, x, y):
        """Gradient of the cost for one example, or summed over a batch.

        ``x``: ``(D, 1)`` column with ``y`` a ``(K, 1)`` column (network2), or
        ``x`` of shape (N, D) with ``y`` (N, K) targets or (N,) labels.
        Returns ``(nabla_b, nabla_w)`` in network2's layout: lists of
        ``(n_out, 1)`` and ``(n_out, n_in)`` arrays. No regularisation term.
        """
        x = self._features(x)
        y = np.asarray(y)
        d = self.sizes[0]
        if x.ndim == 2 and x.shape == (d, 1) and d != 1:
            X, T = x.T, np.asarray(y, dtype=self.dtype).reshape(1, -1)
            if T.shape[1] != self.sizes[-1]:
                raise ValueError(f"y must have shape ({self.sizes[-1]}, 1), got {y.shape}")
        else:
            X, T = self._training_arrays((x, y), "(x, y)", "Network.backprop")
        zs, acts = [], [X]
        a = X
        for W, b in zip(self._W, self._b, strict=True):
            z = a @ W + b
            zs.append(z)
            a = _stable_sigmoid(z)
            acts.append(a)
        delta = self.cost.delta(zs[-1], acts[-1], T)
        nabla_b = [None] * len(self._W)
        nabla_w = [None] * len(self._W)
        for l in range(len(self._W) - 1, -1, -1):
            nabla_b[l] = delta.sum(axis=0)[:, None]
            nabla_w[l] = (acts[l].T @ delta).T
            if l > 0:
                s = acts[l]
                delta = (delta @ self._W[l].T) * (s * (1.0 - s))
        return nabla_b, nabla_w

    # ------------------------------------------------------------------ training

    def _buffers_for(self, m):
        buf = self._buffers.get(m)
        if buf is None:
            buf = self._buffers[m] = _Buffers(m, self.sizes, self.dtype)
        return buf

    def _step(self, xa, t, buf, scale, decay):
        """One SGD step on the batch ``xa`` (m, D + 1; last column ones), targets ``t`` (m, K).

        The output error is multiplied by ``scale = eta/m`` before
        back-propagation; every later delta is linear in it, so the weight
        and bias gradients come out already scaled (fewer passes over W).
        Biases live in the last row of the augmented weight matrices, so the
        forward product adds them and one product ``[a, 1]^T delta`` gives
        both gradients. Must run under ``np.errstate(over="ignore")``: the
        sigmoid is network2's ``1/(1 + exp(-z))``, whose exp may overflow to
        inf for z < -709, giving the correct limit 0.
        """
        Wbs, acts, zs = self._Wb, buf.acts, buf.z
        expit = _expit()
        last = len(Wbs) - 1
        a = xa
        for l, Wb in enumerate(Wbs):
            z = zs[l]
            np.matmul(a, Wb, out=z)
            a = acts[l]
            s = a[:, :-1] if l < last else a
            if expit is not None:
                expit(z, out=s)
            else:
                np.negative(z, out=s)
                np.exp(s, out=s)
                s += 1.0
                np.reciprocal(s, out=s)
        d = buf.deltas[last]
        np.subtract(a, t, out=d)
        if self.cost is QuadraticCost:
            sp = buf.tmp[last]
            np.subtract(1.0, a, out=sp)
            sp *= a
            d *= sp
        elif self.cost is not CrossEntropyCost:
            d[...] = self.cost.delta(np.log(a) - np.log1p(-a), a, t)
        d *= scale
        for l in range(last, -1, -1):
            a_prev = acts[l - 1] if l > 0 else xa
            if l > 0:
                d_prev = buf.deltas[l - 1]
                np.matmul(d, self._W[l].T, out=d_prev)
                sp = buf.tmp[l - 1]
                s_prev = a_prev[:, :-1]
                np.subtract(1.0, s_prev, out=sp)
                sp *= s_prev
                d_prev *= sp
            gwb = buf.gwb[l]
            np.matmul(a_prev.T, d, out=gwb)
            if decay != 1.0:
                self._W[l] *= decay
            Wbs[l] -= gwb
            if l > 0:
                d = d_prev

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One gradient step on ``mini_batch`` (list of (x, y) or a tuple (X, y)).

        ``w <- (1 - eta*lmbda/n) w - (eta/m) sum_batch nabla_w``,
        ``b <- b - (eta/m) sum_batch nabla_b``; ``n`` is the training-set size.
        """
        where = "Network.update_mini_batch"
        checks.positive(where, "eta", eta)
        checks.non_negative(where, "lmbda", lmbda)
        checks.count(where, "n", n, 1)
        X, T = self._training_arrays(mini_batch, "mini_batch", where)
        m = X.shape[0]
        buf = self._buffers_for(m)
        buf.x[...] = X
        buf.t[...] = T
        with np.errstate(over="ignore", invalid="ignore"):
            self._step(buf.xa, buf.t, buf, eta / m, 1 - eta * (lmbda / n))

    def _epoch(self, X, T, perm, m, eta, decay):
        """One pass over ``perm`` in mini-batches of ``m``.

        The shuffled examples are gathered a block of mini-batches at a time
        (two ``take`` calls per block instead of per step) into an augmented
        buffer whose rows are then used as contiguous per-step views.
        """
        n = perm.shape[0]
        d, k = X.shape[1], T.shape[1]
        block = max(m, (_GATHER_ROWS // m) * m)
        xa_all = np.empty((min(block, n), d + 1), dtype=self.dtype)
        xa_all[:, -1] = 1.0
        t_all = np.empty((min(block, n), k), dtype=self.dtype)
        full = self._buffers_for(m)
        scale = eta / m
        for start in range(0, n, block):
            idx = perm[start:start + block]
            nb = idx.shape[0]
            np.take(X, idx, axis=0, out=xa_all[:nb, :-1], mode="clip")
            np.take(T, idx, axis=0, out=t_all[:nb], mode="clip")
            for j in range(0, nb - m + 1, m):
                self._step(xa_all[j:j + m], t_all[j:j + m], full, scale, decay)
            rest = nb % m
            if rest:
                buf = self._buffers_for(rest)
                self._step(xa_all[nb - rest:nb], t_all[nb - rest:nb], buf, eta / rest, decay)

    def _is_finite(self):
        return all(np.isfinite(w).all() for w in self._W) and all(
            np.isfinite(b).all() for b in self._b)

    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0,  # noqa: N802
            evaluation_data=None,
            monitor_evaluation_cost=False,
            monitor_evaluation_accuracy=False,
            monitor_training_cost=False,
            monitor_training_accuracy=False,
            *, rng=None, seed=None, callback=None, stop_on_divergence=True,
            return_status=False, verbose=False):
        """Mini-batch stochastic gradient descent (network2's ``SGD``).

        A ``mini_batch_size`` above the number of training examples ``n`` means
        one step per epoch on all of them, computed with buffers of ``n`` rows.

        Returns ``(evaluation_cost, evaluation_accuracy, training_cost,
        training_accuracy)``: one entry per completed epoch for each
        monitored quantity (accuracies are counts of correct examples, as in
        network2). With ``return_status=True`` a fifth element is the status
        dict, which is also kept in :attr:`status`:
        ``{"status": "completed" | "diverged" | "stopped",
        "diverged_epoch": int | None, "epochs_completed": int}`` (epochs
        counted from 0, as network2 prints them).

        Extra keyword-only options: ``rng``/``seed`` (shuffling; default
        ``self.rng``), ``callback(epoch, network, record)`` called after each
        epoch with the monitored values (a truthy return stops training,
        status "stopped"), ``stop_on_divergence`` (stop when weights or a
        monitored cost become non-finite), ``verbose`` (print network2's lines per epoch to
        stdout: "Epoch j training complete", then each monitored cost and accuracy).

        Bad arguments raise TypeError/ValueError naming them before any training: e.g.
        ``eta`` not a finite number > 0, empty data, NaN or inf in the data (an error, while
        non-finite weights during training are a result: status "diverged").
        """
        where = "Network.SGD"
        epochs = checks.count(where, "epochs", epochs, 0)
        m = checks.count(where, "mini_batch_size", mini_batch_size, 1)
        checks.positive(where, "eta", eta)
        checks.non_negative(where, "lmbda", lmbda)
        monitors = [flag for flag, on in (("monitor_evaluation_cost", monitor_evaluation_cost),
                    ("monitor_evaluation_accuracy", monitor_evaluation_accuracy)) if on]
        if evaluation_data is None and monitors:
            raise ValueError(f"{where}: evaluation_data must be given when {' and '.join(monitors)}"
                             "=True, got None")
        gen = self.rng if rng is None and seed is None else _init.as_rng(rng, seed)
        X, T = self._training_arrays(training_data, "training_data", where)
        ev = None if evaluation_data is None else self._arrays(evaluation_data, "evaluation_data", where)
        n = X.shape[0]
        m = min(m, max(n, 1))  # a larger batch is the whole set: same steps, n-row buffers
        decay = 1 - eta * (lmbda / n)
        history = {f"{name}_{kind}": [] for name in ("evaluation", "training")
                   for kind in ("cost", "accuracy")}
        self.status = {"status": "completed", "diverged_epoch": None, "epochs_completed": 0}
        compiled = network2_kernel.epoch_runner(self, X, T, m, eta, decay, epochs)
        watched = [("training", (X, None, T), monitor_training_cost, monitor_training_accuracy),
                   ("evaluation", ev, monitor_evaluation_cost, monitor_evaluation_accuracy)]
        sparse = network2_kernel.sparse_inputs(self, compiled, [(data, cost or accuracy)
                                                                for _, data, cost, accuracy in watched])
        for j in range(epochs):
            perm = gen.permutation(n)
            with np.errstate(over="ignore", invalid="ignore"):
                if compiled is not None:
                    compiled(perm)
                else:
                    self._epoch(X, T, perm, m, eta, decay)
            kernels.count_call("numpy" if compiled is None else "numba")
            record = {"epoch": j}
            finite = self._is_finite()
            # Finite but huge weights overflow in the cost (the L2 term, the exp): that is
            # divergence, detected just below from the non-finite value, not a warning.
            with np.errstate(over="ignore", invalid="ignore"):
                if finite:
                    for (name, data, cost, accuracy), rows in zip(watched, sparse, strict=True):
                        self._monitor(record, name, data, rows, cost, accuracy, lmbda)
                    finite = all(math.isfinite(record[k]) for k in record)
            for key, values in history.items():
                if key in record:
                    values.append(record[key])
            if verbose:
                network2_io.print_epoch(record, n, len(ev[0]) if evaluation_data is not None else 0)
            if not finite and stop_on_divergence:
                self.status = {"status": "diverged", "diverged_epoch": j, "epochs_completed": j}
                log.warning("network2.SGD diverged in epoch %s (non-finite weights or cost)", j)
                break
            self.status["epochs_completed"] = j + 1
            if callback is not None and callback(j, self, record):
                self.status["status"] = "stopped"
                break
        result = tuple(history.values())
        return (*result, dict(self.status)) if return_status else result

    def _monitor(self, record, name, data, sparse, cost, accuracy, lmbda):
        """``record[name + "_cost"]`` and ``[name + "_accuracy"]`` of ``data`` (X, labels,
        targets), as asked, from one forward pass (``sparse``: X as SparseRows, or None)."""
        if cost or accuracy:
            out = self._outputs(data[0], sparse)
            if cost:
                record[f"{name}_cost"] = self._cost_arrays(*data, lmbda, out)
            if accuracy:
                record[f"{name}_accuracy"] = self._accuracy_arrays(*data, out)

    # ------------------------------------------------------------------ evaluation

    def _cost_arrays(self, X, labels, targets, lmbda, outputs=None):
        if targets is None:
            targets = self._one_hot(labels)
        a = self._outputs(X) if outputs is None else outputs
        n = X.shape[0]
        cost = float(self.cost.fn(a, targets)) / n
        cost += 0.5 * (lmbda / n) * sum(float(np.sum(np.square(w))) for w in self._W)
        return cost

    def _accuracy_arrays(self, X, labels, targets, outputs=None):
        if labels is None:
            labels = np.argmax(targets, axis=1)
        a = self._outputs(X) if outputs is None else outputs
        return int(np.count_nonzero(np.argmax(a, axis=1) == labels))

    def accuracy(self, data, convert=False):
        """Number of inputs whose most active output neuron is the right label.

        ``convert`` is accepted for network2 compatibility; one-hot or integer
        labels are detected from the data.
        """
        return self._accuracy_arrays(*self._arrays(data, "data", "Network.accuracy"))

    def total_cost(self, data, lmbda, convert=False):
        """Mean cost over ``data`` plus ``0.5 * (lmbda / len(data)) * sum ||w||^2``.

        As in network2 the regulariser uses ``len(data)`` of the data passed.
        ``convert`` is accepted for compatibility; labels are detected.
        """
        checks.non_negative("Network.total_cost", "lmbda", lmbda)
        return self._cost_arrays(*self._arrays(data, "data", "Network.total_cost"), lmbda)

    # ------------------------------------------------------------------ persistence

    def save(self, filename):
        """Save to ``<stem>.npz`` + ``<stem>.json`` (see :mod:`nnflow.nn.network2_io`)."""
        return network2_io.save(self, filename)


load = network2_io.load  # nnflow's files and Nielsen's JSON
