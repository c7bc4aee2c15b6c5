"""CS231n ``FullyConnectedNet``: {affine - [batchnorm] - activation - [dropout]} x (L - 1) - affine - loss.

Parameters live in ``self.params`` under CS231n's names ``W1, b1, ..., WL, bL``
(``W_l`` of shape ``(n_{l-1}, n_l)``) and, with batch normalisation,
``gamma1, beta1, ..., gamma{L-1}, beta{L-1}``. The loss is the softmax
cross-entropy averaged over the batch plus ``0.5 * reg * sum_l ||W_l||^2``
(CS231n convention; its gradient adds ``reg * W_l``).
"""

from __future__ import annotations

import numpy as np

from nnflow.nn import checks, layers
from nnflow.nn import initializers as _init
from nnflow.nn.costs import CrossEntropyCost, QuadraticCost
from nnflow.nn.model_io import inferred_dtype, load_model, required, save_model
from nnflow.nn.network2 import _expit

__all__ = ["FullyConnectedNet", "ACTIVATIONS", "NORMALIZATIONS", "COSTS"]

ACTIVATIONS = {
    "relu": (layers.relu_forward, layers.relu_backward),
    "sigmoid": (layers.sigmoid_forward, layers.sigmoid_backward),
    "tanh": (layers.tanh_forward, layers.tanh_backward),
}
NORMALIZATIONS = (None, "batchnorm")
COSTS = ("softmax", "cross_entropy_sigmoid", "quadratic_sigmoid")
KIND = "nnflow.fc_net.FullyConnectedNet"  # a saved model's metadata "kind"
STATE = "state_"  # prefix of the non-parameter arrays (batchnorm statistics) in a saved model


class FullyConnectedNet:
    """Fully-connected network of arbitrary depth (CS231n assignment 2).

    Parameters
    ----------
    hidden_dims : list of int, widths of the hidden layers.
    input_dim, num_classes : int.
    activation : "relu" (default), "sigmoid" or "tanh".
    weight_scale : float; W ~ weight_scale * N(0, 1), b = 0 (CS231n), used
        when ``init`` is None.
    init : None or an initializer name of :mod:`nnflow.nn.initializers` ("he",
        "xavier", "network2", "large", ...) overriding ``weight_scale``.
    reg : L2 strength (CS231n convention).
    dropout_keep_ratio : probability of keeping a hidden unit; 1 = no dropout.
    normalization : None or "batchnorm".
    dtype : np.float32 (default) or np.float64; parameters, activations,
        gradients and the loss all stay in it.
    seed, rng : source of the initial weights and of the dropout masks.
    cost : "softmax" (default), "cross_entropy_sigmoid" or "quadratic_sigmoid"
        (sigmoid outputs with network2's cross-entropy / quadratic cost against
        one-hot targets, averaged over N). With ``activation="sigmoid"``,
        ``init="network2"`` and ``reg = lmbda / n`` this is network2's model:
        plain SGD with learning rate ``eta`` then performs network2's update
        ``w <- (1 - eta*lmbda/n) w - (eta/m) sum grad`` exactly.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, activation="relu",
                 weight_scale=1e-2, init=None, reg=0.0, dropout_keep_ratio=1,
                 normalization=None, dtype=np.float32, seed=None, rng=None, cost="softmax"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; allowed values: "
                             f"{sorted(ACTIVATIONS)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; allowed values: "
                             f"{list(NORMALIZATIONS)}")
        if cost not in COSTS:
            raise ValueError(f"unknown cost {cost!r}; allowed values: {list(COSTS)}")
        if not 0 < dropout_keep_ratio <= 1:
            raise ValueError(f"dropout_keep_ratio must be in (0, 1], got {dropout_keep_ratio}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        dims = [int(input_dim), *[int(h) for h in hidden_dims], int(num_classes)]
        self.dims = dims
        self.num_layers = len(dims) - 1
        self.activation = activation
        self.normalization = normalization
        self.reg = float(reg)
        self.dtype = dtype
        self.cost = cost
        self.dropout_keep_ratio = float(dropout_keep_ratio)
        self.use_dropout = dropout_keep_ratio != 1
        self.rng = _init.as_rng(rng, seed)
        if init is None:
            ws, bs = _init.weight_scale(self.rng, dims, dtype=dtype, weight_scale=weight_scale)
        else:
            ws, bs = _init.get_initializer(init)(self.rng, dims, dtype=dtype)
        self.params = {}
        for i, (w, b) in enumerate(zip(ws, bs, strict=True), start=1):
            self.params[f"W{i}"] = np.ascontiguousarray(w, dtype=dtype)
            self.params[f"b{i}"] = np.ascontiguousarray(b, dtype=dtype)
        if normalization == "batchnorm":
            for i in range(1, self.num_layers):
                self.params[f"gamma{i}"] = np.ones(dims[i], dtype=dtype)
                self.params[f"beta{i}"] = np.zeros(dims[i], dtype=dtype)
        self.dropout_param = {"mode": "train", "p": float(dropout_keep_ratio)}
        self.bn_params = [
            {"mode": "train", "running_mean": np.zeros(dims[i], dtype=dtype),
             "running_var": np.zeros(dims[i], dtype=dtype)}
            for i in range(1, self.num_layers)
        ] if normalization == "batchnorm" else []

    # ------------------------------------------------------------------ state

    def get_state(self):
        """Non-parameter arrays (batchnorm running statistics) for checkpoints."""
        state = {}
        for i, p in enumerate(self.bn_params, start=1):
            state[f"bn{i}_running_mean"] = p["running_mean"]
            state[f"bn{i}_running_var"] = p["running_var"]
        return state

    def set_state(self, state):
        """Restore what :meth:`get_state` returned."""
        for i, p in enumerate(self.bn_params, start=1):
            p["running_mean"] = np.array(state[f"bn{i}_running_mean"], dtype=self.dtype)
            p["running_var"] = np.array(state[f"bn{i}_running_var"], dtype=self.dtype)

    # ------------------------------------------------------------------ files

    def config(self):
        """The constructor settings that rebuild this net (a saved model's metadata)."""
        return {"kind": KIND, "hidden_dims": self.dims[1:-1], "input_dim": self.dims[0],
                "num_classes": self.dims[-1], "activation": self.activation,
                "normalization": self.normalization, "dropout_keep_ratio": self.dropout_keep_ratio,
                "reg": self.reg, "cost": self.cost, "dtype": str(self.dtype)}

    def arrays(self):
        """The arrays a saved model holds: the parameters by name, the state as ``state_<name>``."""
        return {**self.params, **{f"{STATE}{k}": v for k, v in self.get_state().items()}}

    def save(self, path, metadata=None):
        """Write ``<stem>.npz`` + ``<stem>.json`` (:mod:`nnflow.nn.model_io`); returns the paths.

        ``metadata`` adds JSON-serialisable entries to :meth:`config`'s.
        """
        return save_model(path, self.arrays(), {**(metadata or {}), **self.config()})

    @classmethod
    def load(cls, path, *, prefix="", seed=None, rng=None):
        """A net from a model written by :meth:`save` or by the workflow's solver runs.

        The layer sizes, the batch normalisation and the dtype follow from the arrays
        (files that predate their metadata keys load too); ``activation`` must be in the
        metadata. ``dropout_keep_ratio``, ``reg`` and ``cost`` (absent from files written
        before they were recorded) default to 1, 0 and "softmax": they change training and
        the loss, not the predictions. ``prefix`` selects another set of arrays of the same
        file: the workflow's ``model.npz`` holds the best-validation parameters under the
        plain names and the last epoch's under ``prefix="last_"``. ``seed``/``rng`` drive
        dropout in further training. Errors name the file and the missing key or array.
        """
        arrays, meta = load_model(path)
        if meta.get("kind") != KIND:
            raise ValueError(f"{path}: not a saved FullyConnectedNet (kind={meta.get('kind')!r}, "
                             f"{KIND!r} expected)")
        num_layers = sum(1 for name in arrays if name.startswith(f"{prefix}W"))
        names = [f"{prefix}{p}{i}" for i in range(1, num_layers + 1) for p in ("W", "b")]
        missing = [n for n in names if n not in arrays] or ([] if num_layers else [f"{prefix}W1"])
        if missing:
            raise ValueError(f"{path}: arrays {missing} missing from the npz (present: {sorted(arrays)})")
        weights = [arrays[f"{prefix}W{i}"] for i in range(1, num_layers + 1)]
        dims = [weights[0].shape[0], *[w.shape[1] for w in weights]]
        batchnorm = f"{prefix}gamma1" in arrays
        net = cls(dims[1:-1], input_dim=dims[0], num_classes=dims[-1],
                  activation=required(meta, "activation", path),
                  dropout_keep_ratio=meta.get("dropout_keep_ratio", 1), reg=meta.get("reg", 0.0),
                  normalization="batchnorm" if batchnorm else None, cost=meta.get("cost", "softmax"),
                  dtype=inferred_dtype(meta, arrays, names, path), seed=seed, rng=rng)
        state = {k: arrays.get(f"{prefix}{STATE}{k}") for k in net.get_state()}
        absent = [f"{prefix}{STATE}{k}" for k, v in state.items() if v is None]
        absent += [f"{prefix}{k}" for k in net.params if f"{prefix}{k}" not in arrays]
        if absent:
            raise ValueError(f"{path}: arrays {absent} missing from the npz")
        for k, target in net.params.items():
            value = arrays[f"{prefix}{k}"]
            if value.shape != target.shape:
                raise ValueError(f"{path}: array {prefix}{k} has shape {value.shape}, "
                                 f"{target.shape} expected")
            net.params[k] = value.astype(net.dtype)
        net.set_state(state)
        return net

    # ------------------------------------------------------------------ forward/backward

    def _check_input(self, X, where):
        X = np.asarray(X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != self.dims[0]:
            raise ValueError(f"{where}: X must have shape (N, {self.dims[0]}) (or (N, d1, ..., dk) "
                             f"with {self.dims[0]} values per example), got {X.shape}")
        # the width spelled out: -1 cannot be inferred when N = 0
        return X.reshape(X.shape[0], self.dims[0]).astype(self.dtype, copy=False)

    def _one_hot(self, y, n):
        t = np.zeros((n, self.dims[-1]), dtype=self.dtype)
        t[np.arange(n), y] = 1
        return t

    def _data_loss(self, scores, y):
        if self.cost == "softmax":
            return layers.softmax_loss(scores, y)
        n = scores.shape[0]
        y = layers._check_labels(y, n, scores.shape[1])
        a = _expit()(scores) if _expit() is not None else layers.sigmoid(scores)
        t = self._one_hot(y, n)
        if self.cost == "quadratic_sigmoid":
            loss = self.dtype.type(QuadraticCost.fn(a, t) / n)
            return loss, (a - t) * (a * (1 - a)) / self.dtype.type(n)
        loss = self.dtype.type(CrossEntropyCost.fn(a, t) / n)
        return loss, (a - t) / self.dtype.type(n)

    def _reg_loss(self):
        """``0.5 reg sum_l ||W_l||^2``: each square in a reused array (:meth:`_scratch`), the
        same numbers as ``np.sum(W ** 2)`` without allocating a weight matrix a step."""
        return 0.5 * self.reg * sum(float(np.sum(np.square(self.params[name], out=self._scratch(name))))
                                    for name in self._weight_names())

    def _add_reg_gradient(self, grads):
        """``grads[W] += reg * W`` for every weight matrix, the product in a reused array."""
        for name in self._weight_names():
            grads[name] += np.multiply(self.params[name], self.reg, out=self._scratch(name))

    def _weight_names(self):
        return [f"W{i}" for i in range(1, self.num_layers + 1)]

    def _scratch(self, name):
        """A work array shaped like ``params[name]`` (kept between steps; never saved)."""
        scratch = self.__dict__.setdefault("_scratch_arrays", {})
        w = self.params[name]
        s = scratch.get(name)
        if s is None or s.shape != w.shape or s.dtype != w.dtype:
            s = scratch[name] = np.empty_like(w)
        return s

    def loss(self, X, y=None, *, mode=None, return_layer_grads=False):
        """Scores, or loss and gradients.

        Parameters
        ----------
        X : (N, D) inputs (or (N, d1, ..., dk)).
        y : (N,) integer labels, or None.
        mode : "train"/"test"; default "test" when y is None, else "train"
            (dropout active, batchnorm uses and updates batch statistics).
        return_layer_grads : also return the per-layer "speed of learning"
            ``||dL/db_l||`` for l = 1..L (Nielsen ch. 5): the norm of the
            output error of layer l summed over the batch (reg excluded).

        Returns
        -------
        y is None: scores (N, C).
        otherwise: ``(loss, grads)`` with ``grads[name]`` shaped like
        ``params[name]``; with ``return_layer_grads`` ``(loss, grads, norms)``,
        ``norms`` an array of shape (L,).
        """
        X = self._check_input(X, "FullyConnectedNet.loss")
        if y is not None and X.shape[0] == 0:  # a loss over no examples is 0/0
            checks.examples("FullyConnectedNet.loss", "X", X)
        if mode is None:
            mode = "test" if y is None else "train"
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        act_fwd, act_bwd = ACTIVATIONS[self.activation]
        self.dropout_param["mode"] = mode
        for p in self.bn_params:
            p["mode"] = mode
        caches = []
        h = X
        for i in range(1, self.num_layers):
            h, c_aff = layers.affine_forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            c_bn = c_do = None
            if self.normalization == "batchnorm":
                h, c_bn = layers.batchnorm_forward(h, self.params[f"gamma{i}"],
                                                   self.params[f"beta{i}"], self.bn_params[i - 1])
            if self.activation == "relu":
                # h is this layer's own fresh array: rectify in place; the output is a valid
                # relu cache (out > 0 exactly where x > 0)
                np.maximum(h, 0, out=h)
                c_act = h
            elif self.activation == "sigmoid" and _expit() is not None:
                # the logistic function in place, one ufunc call (its cache is the output)
                _expit()(h, out=h)
                c_act = h
            else:
                h, c_act = act_fwd(h)
            if self.use_dropout:
                h, c_do = layers.dropout_forward(h, self.dropout_param, rng=self.rng)
            caches.append((c_aff, c_bn, c_act, c_do))
        L = self.num_layers
        scores, c_last = layers.affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        if y is None:
            return scores

        loss, dout = self._data_loss(scores, y)
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = layers.affine_backward(dout, c_last)
        for i in range(L - 1, 0, -1):
            c_aff, c_bn, c_act, c_do = caches[i - 1]
            if c_do is not None:
                dh = layers.dropout_backward(dh, c_do)
            dh = act_bwd(dh, c_act)
            if c_bn is not None:
                dh, grads[f"gamma{i}"], grads[f"beta{i}"] = layers.batchnorm_backward(dh, c_bn)
            # the input needs no gradient: layer 1 skips dx (a third of its backward FLOPs)
            dh, grads[f"W{i}"], grads[f"b{i}"] = layers.affine_backward(dh, c_aff,
                                                                       compute_dx=i > 1)
        norms = None
        if return_layer_grads:
            norms = np.array([np.linalg.norm(grads[f"b{i}"]) for i in range(1, L + 1)])
        if self.reg:
            loss = loss + self.dtype.type(self._reg_loss())
            self._add_reg_gradient(grads)
        if return_layer_grads:
            return loss, grads, norms
        return loss, grads

    def layer_gradient_norms(self, X, y):
        """``||dL/db_l||`` per layer l = 1..L (array of shape (L,)), in train mode.

        With batchnorm the pre-normalisation biases get ~0 gradient (the batch
        mean removes them); use it without batchnorm for Nielsen's study.
        """
        return self.loss(X, y, return_layer_grads=True)[2]

    # ------------------------------------------------------------------ evaluation

    def predict(self, X, batch_size=1000):
        """Predicted labels (N,) in test mode, computed in chunks."""
        X = self._check_input(X, "FullyConnectedNet.predict")
        return np.concatenate([np.argmax(self.loss(X[i:i + batch_size]), axis=1)
                               for i in range(0, max(X.shape[0], 1), batch_size)]
                              ) if X.shape[0] else np.zeros(0, dtype=np.intp)

    def eval_loss(self, X, y, batch_size=1000):
        """Test-mode loss (data loss averaged over all N, plus the L2 term) as a float."""
        X = checks.examples("FullyConnectedNet.eval_loss", "X",
                            self._check_input(X, "FullyConnectedNet.eval_loss"))
        y = np.asarray(y)
        n = X.shape[0]
        total = 0.0
        for i in range(0, n, batch_size):
            scores = self.loss(X[i:i + batch_size])
            part, _ = self._data_loss(scores, y[i:i + batch_size])
            total += float(part) * scores.shape[0]
        return total / n + self._reg_loss()
