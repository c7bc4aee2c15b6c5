"""The training step of a plain :class:`~nnflow.nn.fc_net.FullyConnectedNet`, in reused buffers.

:class:`FCTrainingStep` computes exactly what ``model.loss(X_train[idx], y_train[idx])``
returns (the same floating-point operations in the same order, so the loss and the
gradients are bit-identical) for a net without batchnorm and dropout, but with the
per-step Python and allocation work taken out:

- the mini-batch is gathered with ``np.take(..., out=)`` into a buffer kept per batch size,
  and for the sigmoid costs the one-hot targets are gathered from a table built once;
- activations, output errors and gradients are written with ``out=`` into buffers kept
  per batch size; the checks of inputs and labels happen once (the Solver's data checks),
  not on every step;
- the cross-entropy cost skips ``np.nan_to_num`` when its sum is finite (then no term was
  nan or infinite and ``nan_to_num`` would change nothing) and falls back to
  :meth:`nnflow.nn.costs.CrossEntropyCost.fn` otherwise.

The gradients :meth:`FCTrainingStep.loss_and_grads` returns live in those buffers: the next
call overwrites them. The Solver uses them for one update and drops them; nothing holding
them outlives the step (``model.loss`` stays the public API and returns fresh arrays).
"""

from __future__ import annotations

import math

import numpy as np

from nnflow.nn import layers
from nnflow.nn.costs import CrossEntropyCost, QuadraticCost

__all__ = ["FCTrainingStep", "settings", "supports"]


def supports(model):
    """Whether :class:`FCTrainingStep` reproduces ``model.loss`` for this model.

    A :class:`~nnflow.nn.fc_net.FullyConnectedNet` (whose ``loss``, ``_data_loss`` and
    L2 methods are not overridden by a subclass) without batch normalisation and dropout.
    """
    from nnflow.nn.fc_net import FullyConnectedNet  # fc_net imports network2: kept lazy

    cls = type(model)
    return (isinstance(model, FullyConnectedNet) and cls.loss is FullyConnectedNet.loss
            and cls._data_loss is FullyConnectedNet._data_loss
            and cls._reg_loss is FullyConnectedNet._reg_loss
            and cls._add_reg_gradient is FullyConnectedNet._add_reg_gradient
            and model.normalization is None and not model.use_dropout)


def settings(model):
    """What of ``model`` an :class:`FCTrainingStep` is made for: a step made before any of it
    changed does not compute ``model.loss`` any more (the Solver makes a new one)."""
    return model.dtype, tuple(model.dims), model.activation, model.cost


class _Buffers:
    """Every array one step on a batch of ``m`` examples writes."""

    def __init__(self, m, dims, dtype, one_hot):
        self.x = np.empty((m, dims[0]), dtype=dtype)
        self.target = np.empty((m, dims[-1]), dtype=dtype) if one_hot else np.empty(m, np.intp)
        # h[l]: output of layer l+1 (after the activation for hidden layers, scores for the last)
        self.h = [np.empty((m, d), dtype=dtype) for d in dims[1:]]
        self.dh = [np.empty((m, d), dtype=dtype) for d in dims[1:]]
        self.tmp = [np.empty((m, d), dtype=dtype) for d in dims[1:]]
        self.relu_mask = [np.empty((m, d), dtype=bool) for d in dims[1:-1]]
        self.out = np.empty((m, dims[-1]), dtype=dtype)  # the sigmoid outputs a
        self.terms = np.empty((m, dims[-1]), dtype=dtype)
        # the transposed input of each layer, for its weight gradient x^T dout
        self.inputs_T = [self.x.T, *[h.T for h in self.h[:-1]]]


class FCTrainingStep:
    """``model.loss`` on mini-batches of ``(X, y)`` rows, bit-identical, into reused buffers.

    Parameters
    ----------
    model : a FullyConnectedNet for which :func:`supports` holds.
    X : (N, D) or (N, d1, ..., dk) training inputs of the model's dtype.
    y : (N,) integer labels in ``[0, C)`` (checked by the caller).
    """

    def __init__(self, model, X, y):
        if not supports(model):
            raise ValueError("FCTrainingStep: the model must be a FullyConnectedNet without "
                             "batchnorm and dropout whose loss is not overridden")
        from nnflow.nn.network2 import _expit

        self.model = model
        self.settings = settings(model)
        self.dtype = model.dtype
        self.dims = list(model.dims)
        self.num_layers = model.num_layers
        self.X = X.reshape(X.shape[0], self.dims[0])
        self.y = np.asarray(y).astype(np.intp)  # labels in [0, C): an exact cast
        self.one_hot = model.cost != "softmax"
        if self.one_hot:
            self.T = np.zeros((self.X.shape[0], self.dims[-1]), dtype=self.dtype)
            self.T[np.arange(self.X.shape[0]), self.y] = 1
        self.expit = _expit()
        self.activation = model.activation
        L = self.num_layers
        self.weight_names = [f"W{i}" for i in range(1, L + 1)]
        self.bias_names = [f"b{i}" for i in range(1, L + 1)]
        self._buffers = {}
        # the gradient arrays by name, written by every call (a caller may put views of its
        # own arrays here, e.g. a FlatUpdate's)
        self.grads = {name: np.empty_like(model.params[name])
                      for name in (*self.weight_names, *self.bias_names)}

    def _buffers_for(self, m):
        buf = self._buffers.get(m)
        if buf is None:
            buf = self._buffers[m] = _Buffers(m, self.dims, self.dtype, self.one_hot)
        return buf

    def loss_and_grads(self, idx):
        """``model.loss(X[idx], y[idx])`` for the rows ``idx``: ``(loss, grads)``.

        ``grads`` are this object's buffers, overwritten by the next call. Runs under the
        caller's ``np.errstate``: saturated sigmoid outputs take ``log(0)`` in the cost (the
        Solver's training loop ignores divide/invalid/over, as ``CrossEntropyCost.fn`` does).
        """
        m = idx.shape[0]
        buf = self._buffers_for(m)
        # the indices come from a permutation or integers(0, N): "clip" never clips
        self.X.take(idx, axis=0, out=buf.x, mode="clip")
        (self.T if self.one_hot else self.y).take(idx, axis=0, out=buf.target, mode="clip")
        return self._loss(buf, m)

    def _loss(self, buf, m):
        model, params = self.model, self.model.params
        grads = self.grads  # the same arrays for every batch size
        L = self.num_layers
        h = buf.x
        for i in range(L):
            z = buf.h[i]
            np.matmul(h, params[self.weight_names[i]], out=z)
            z += params[self.bias_names[i]]
            h = z
            if i < L - 1:
                self._activate(h)
        loss, dout = self._data_loss(buf, h, m)
        for i in range(L - 1, -1, -1):
            np.matmul(buf.inputs_T[i], dout, out=grads[self.weight_names[i]])
            np.add.reduce(dout, axis=0, out=grads[self.bias_names[i]])  # = dout.sum(axis=0)
            if i > 0:  # the input needs no gradient
                dh = buf.dh[i - 1]
                np.matmul(dout, params[self.weight_names[i]].T, out=dh)
                self._activation_backward(dh, buf.h[i - 1], buf, i - 1)
                dout = dh
        if model.reg:
            loss = loss + self.dtype.type(model._reg_loss())
            model._add_reg_gradient(grads)
        return loss, grads

    def _activate(self, h):
        """The hidden activation in place, as ``FullyConnectedNet.loss`` computes it."""
        if self.activation == "relu":
            np.maximum(h, 0, out=h)
        elif self.activation == "sigmoid":
            if self.expit is not None:
                self.expit(h, out=h)
            else:
                layers.sigmoid(h, out=h)
        else:
            np.tanh(h, out=h)

    def _activation_backward(self, dh, out, buf, layer):
        """``dh <- act_backward(dh, out)`` in place: the layers' expressions, op for op."""
        tmp = buf.tmp[layer]
        if self.activation == "sigmoid":  # dout * out * (1.0 - out)
            dh *= out
            np.subtract(1.0, out, out=tmp)
            dh *= tmp
        elif self.activation == "tanh":  # dout * (1.0 - out * out)
            np.multiply(out, out, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            dh *= tmp
        else:  # relu: dout * (x > 0); the cache is the rectified output (> 0 where x > 0)
            mask = buf.relu_mask[layer]
            np.greater(out, 0, out=mask)
            np.multiply(dh, mask, out=dh)

    def _data_loss(self, buf, scores, m):
        """``FullyConnectedNet._data_loss(scores, y)`` on the gathered targets."""
        model = self.model
        if not self.one_hot:
            return layers.softmax_loss(scores, buf.target)
        a, t, n = buf.out, buf.target, m
        if self.expit is not None:
            self.expit(scores, out=a)
        else:
            layers.sigmoid(scores, out=a)
        dout = buf.dh[-1]
        if model.cost == "quadratic_sigmoid":
            loss = self.dtype.type(QuadraticCost.fn(a, t) / n)
            # (a - t) * (a * (1 - a)) / n
            tmp = buf.tmp[-1]
            np.subtract(a, t, out=dout)
            np.subtract(1, a, out=tmp)
            np.multiply(a, tmp, out=tmp)
            dout *= tmp
            dout /= self.dtype.type(n)
            return loss, dout
        loss = self.dtype.type(self._cross_entropy_sum(buf, a, t) / n)
        np.subtract(a, t, out=dout)
        dout /= self.dtype.type(n)
        return loss, dout

    @staticmethod
    def _cross_entropy_sum(buf, a, t):
        """:meth:`CrossEntropyCost.fn` (``-t ln a - (1 - t) ln(1 - a)`` summed), op for op.

        ``np.nan_to_num`` of the terms and of their sum changes nothing when the sum is
        finite (a nan or infinite term makes the sum nan or infinite): skipped then.
        """
        terms = _cross_entropy_terms(a, t, buf.terms, buf.tmp[-1], buf.dh[-1])
        total = np.add.reduce(terms, axis=None)  # = np.sum(terms)
        if math.isfinite(total):
            return total
        return CrossEntropyCost.fn(a, t)

    def losses(self, outputs, batches):
        """The losses :meth:`loss_and_grads` returns for the mini-batches ``batches`` ((s, m)
        row indices) whose sigmoid outputs are ``outputs`` (s, m, K), as an (s,) array: the
        same operations in one batched pass, the same bits (each element's operations are
        NumPy's either way, and a step's sum over its m*K terms is NumPy's pairwise sum of
        one contiguous row either way). For the sigmoid costs of a net without L2 term (the
        compiled steps' nets, :mod:`nnflow.nn.fc_kernel`)."""
        if not self.one_hot or self.model.reg:
            raise ValueError("FCTrainingStep.losses: for the sigmoid costs without L2 term only")
        a = outputs
        t = self.T[batches]
        s, m = batches.shape
        if self.model.cost == "quadratic_sigmoid":  # QuadraticCost.fn(a, t) / m
            d = a - t
            d *= d
            return 0.5 * np.add.reduce(d.reshape(s, -1), axis=1) / m
        terms = _cross_entropy_terms(a, t, np.empty_like(a), np.empty_like(a), np.empty_like(a))
        totals = np.add.reduce(terms.reshape(s, -1), axis=1)
        for step in np.flatnonzero(~np.isfinite(totals)):
            totals[step] = CrossEntropyCost.fn(a[step], t[step])
        return totals / m


def _cross_entropy_terms(a, t, terms, tmp, log_1ma):
    """``terms = -t ln a - (1 - t) ln(1 - a)``, op for op as :meth:`CrossEntropyCost.fn`
    computes it, in the work arrays ``terms``, ``tmp``, ``log_1ma`` (shaped like ``a``)."""
    np.negative(t, out=terms)
    np.log(a, out=tmp)
    terms *= tmp
    np.subtract(1, t, out=tmp)
    np.subtract(1, a, out=log_1ma)
    np.log(log_1ma, out=log_1ma)
    tmp *= log_1ma
    terms -= tmp
    return terms
