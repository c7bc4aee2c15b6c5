"""Training loop in the spirit of CS231n's ``Solver``, with checkpoint/resume.

::

    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": Xv, "y_val": yv},
                    update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, batch_size=100, num_epochs=10, seed=0,
                    checkpoint_path="runs/x/ckpt")
    solver.train()
    solver.status            # "completed" or "diverged" ("paused" after train(until_epoch=k))
    solver.best_params       # parameters with the best validation accuracy (now the model's)
    solver.last_params       # the parameters after the last epoch

The model needs ``params`` (name -> array) and ``loss(X, y) -> (loss, grads)``,
``loss(X) -> scores``. Optional: ``eval_loss(X, y)`` (test-mode cost, used
for the cost histories), ``get_state()/set_state()`` (extra arrays such as
batchnorm running statistics) and ``rng`` (a Generator, e.g. for dropout);
all of them are checkpointed when present.

Epochs are counted from 1; index 0 of the per-epoch histories is the
evaluation before training. Per-iteration: ``loss_history``. Per epoch:
``train_acc_history``, ``val_acc_history``, ``train_cost_history``,
``val_cost_history`` (NaN-free floats, empty if the model has no
``eval_loss``), ``lr_history`` (learning rate used during the epoch, entry 0
is None) and ``epoch_time_history`` (seconds, entry 0 is 0.0).

Best parameters: as CS231n's Solver, ``train()`` ends by putting the parameters of
the epoch with the best validation accuracy (:attr:`best_epoch`, first of equals)
into the model, ``model.params = best_params``; with a ``get_state`` model its state
(batchnorm running statistics) of that epoch too, so the model predicts as it did
when validated. The last epoch's parameters and state stay in :attr:`last_params`
and :attr:`last_state`; a later ``train()`` (after raising ``num_epochs``) puts them
back first and continues from them. ``restore_best=False`` leaves the last epoch's
parameters in the model; :meth:`restore_best_params` swaps at any time.

Speed: a plain FullyConnectedNet (no batchnorm, no dropout) trained by a built-in rule
takes :class:`~nnflow.nn.fc_step.FCTrainingStep` (``model.loss``'s numbers in reused
buffers) and :class:`~nnflow.nn.flat_update.FlatUpdate` (one rule call for all
parameters), bit-identical to the per-parameter loop; ``model.params[name]`` and the
state arrays of ``optim_configs[name]`` are then views of flat arrays, updated in place.
Such a net with sigmoid or ReLU layers, network2's costs and no L2 term, trained by
``sgd``, runs its steps compiled by numba (:mod:`nnflow.nn.fc_kernel`), bit-identical too.

Resume: ``Solver(same model class, same data, same settings).resume(path)``
then ``train()`` continues; the histories and final weights are bit-identical
to an uninterrupted run (the generator states and the best parameters are part
of the checkpoint).
"""

from __future__ import annotations

import logging
import math
import sys
import time

import numpy as np

from nnflow.nn import checks, fc_kernel, fc_step, kernels, optim
from nnflow.nn import initializers as _init
from nnflow.nn.flat_update import ELEMENTWISE_RULES, FlatUpdate
from nnflow.nn.model_io import load_model, save_model
from nnflow.runtime import kernel_choice

__all__ = ["Solver", "SAMPLINGS"]

log = logging.getLogger(__name__)

SAMPLINGS = ("with_replacement", "epoch_shuffle")
_CHECKPOINT_KIND = "nnflow.solver.checkpoint"
_SEP = "__"


def _copies(arrays):
    return {k: v.copy() for k, v in arrays.items()}


def _finite_params(params):
    return all(np.isfinite(v).all() for v in params.values())


class Solver:
    """Train a classification model with mini-batch gradient descent.

    Parameters
    ----------
    model : object with ``params`` and ``loss`` (see module docstring).
    data : dict with ``X_train`` (N, D), ``y_train`` (N,), ``X_val``, ``y_val``.
    update_rule : name in :data:`nnflow.nn.optim.UPDATE_RULES` or a callable.
    optim_config : hyperparameters given to the update rule (one copy per parameter).
    lr_decay : the learning rate is multiplied by it after each epoch.
    batch_size, num_epochs : int; a ``batch_size`` above the number of training
        examples N is taken as N (:attr:`batch_size` holds the one used), so the
        batch arrays never exceed the data.
    sampling : "with_replacement" (CS231n: each iteration draws ``batch_size``
        indices with replacement; ``max(N // batch_size, 1)`` iterations per
        epoch) or "epoch_shuffle" (one permutation per epoch walked in
        consecutive slices; the last batch may be smaller).
    num_train_samples : size of the random training subset used for the
        per-epoch train accuracy/cost (None = all); ``num_val_samples`` likewise
        (default None = all).
    print_every : with ``verbose``, print the loss every that many iterations.
    verbose : progress lines (one per epoch) on stderr; always logged at INFO.
    seed, rng : the Generator for sampling and subsets (at most one of them).
    checkpoint_path : stem of the checkpoint written (atomically) every
        ``checkpoint_every`` epochs and after the last epoch; None = no checkpoints.
    stop_on_divergence : stop when the loss or the parameters become non-finite.
    restore_best : end :meth:`train` with the best-validation parameters in the model
        (CS231n's behaviour, the default), or with the last epoch's (False).

    Bad arguments raise TypeError/ValueError naming them, here rather than during
    training: no examples, NaN or inf in ``X_train``/``X_val`` (an error, while
    non-finite parameters during training are a result: status "diverged"), labels
    that are not integers in [0, C) (C and the input width from ``model.dims`` when the
    model has it), ``optim_config`` values outside :data:`nnflow.nn.optim.CONFIG_RANGES`,
    ``lr_decay`` not in (0, 1], ``batch_size`` < 1, ``num_epochs`` < 0.
    """

    def __init__(self, model, data, *, update_rule="sgd", optim_config=None, lr_decay=1.0,
                 batch_size=100, num_epochs=10, sampling="with_replacement",
                 num_train_samples=1000, num_val_samples=None, print_every=10, verbose=True,
                 seed=None, rng=None, checkpoint_path=None, checkpoint_every=1,
                 stop_on_divergence=True, restore_best=True):
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"Solver: data is missing {missing}; required keys: "
                             "X_train, y_train, X_val, y_val")
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; allowed values: {list(SAMPLINGS)}")
        self.batch_size = checks.count("Solver", "batch_size", batch_size, 1)
        self.num_epochs = checks.count("Solver", "num_epochs", num_epochs, 0)
        checkpoint_every = checks.count("Solver", "checkpoint_every", checkpoint_every, 1)
        for name, value in (("num_train_samples", num_train_samples),
                            ("num_val_samples", num_val_samples)):
            if value is not None:
                checks.count("Solver", name, value, 1)
        self.lr_decay = float(checks.number("Solver", "lr_decay", lr_decay, 0, 1,
                                            low_closed=False, high_closed=True))
        self.model = model
        dtype = getattr(model, "dtype", None)
        self.X_train, self.y_train = self._checked_data(data, "train", dtype)
        self.X_val, self.y_val = self._checked_data(data, "val", dtype)
        self.update_rule_name = update_rule if isinstance(update_rule, str) else getattr(
            update_rule, "__name__", repr(update_rule))
        self.update_rule = optim.get_update_rule(update_rule)
        self.optim_config = dict(optim.check_config(
            {} if optim_config is None else optim_config, "Solver", "optim_config"))
        # a batch larger than the training set is the training set (bounded memory)
        self.batch_size = min(self.batch_size, max(self.X_train.shape[0], 1))
        self.sampling = sampling
        self.num_train_samples = num_train_samples
        self.num_val_samples = num_val_samples
        self.print_every = print_every
        self.verbose = verbose
        self.rng = _init.as_rng(rng, seed)
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.stop_on_divergence = stop_on_divergence
        self.restore_best = bool(restore_best)
        self._fast_step = self._flat_update = self._runner = None
        self._reset()

    def _checked_data(self, data, part, dtype):
        """``data["X_<part>"]`` (cast to the model's dtype) and ``data["y_<part>"]``, checked.

        At least one example, finite inputs (after the cast: a float64 value beyond the
        float32 range is infinite for a float32 model), integer labels, one per example;
        against ``model.dims`` (a FullyConnectedNet's) the input width and the classes.
        """
        x_name, y_name = f"data['X_{part}']", f"data['y_{part}']"
        X = np.asarray(data[f"X_{part}"])
        if dtype is not None and X.dtype != dtype:
            with np.errstate(over="ignore"):  # overflow to inf is refused just below
                X = X.astype(dtype)
        dims = getattr(self.model, "dims", None)
        checks.examples("Solver", x_name, X, dims[0] if dims else None)
        checks.finite("Solver", x_name, X)
        y = checks.labels("Solver", y_name, np.asarray(data[f"y_{part}"]), X.shape[0],
                          dims[-1] if dims else None)
        return X, y

    def _reset(self):
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = -1.0
        self.best_epoch = None
        self.best_params = {}
        self.best_state = {}
        self.last_params = None
        self.last_state = None
        self._holding_best = False  # the model holds best_params, the last epoch's are aside
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.train_cost_history = []
        self.val_cost_history = []
        self.lr_history = []
        self.epoch_time_history = []
        self.status = "not_started"
        self.diverged_epoch = None
        self.diverged_iteration = None
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    # ------------------------------------------------------------------ evaluation

    def _subset(self, X, y, num_samples):
        n = X.shape[0]
        if num_samples is not None and n > num_samples:
            idx = np.sort(self.rng.choice(n, int(num_samples), replace=False))
            X, y = X[idx], y[idx]
        return X, y

    def check_accuracy(self, X, y, num_samples=None, batch_size=1000):
        """Accuracy of the model on (a random subset of ``num_samples`` of) ``X, y``.

        Returns ``(accuracy, cost)``; cost is None when the model has no ``eval_loss``.
        """
        X, y = self._subset(X, y, num_samples)
        preds = [np.argmax(self.model.loss(X[i:i + batch_size]), axis=1)
                 for i in range(0, X.shape[0], batch_size)]
        acc = float(np.mean(np.concatenate(preds) == y)) if preds else float("nan")
        eval_loss = getattr(self.model, "eval_loss", None)
        cost = float(eval_loss(X, y, batch_size=batch_size)) if eval_loss else None
        return acc, cost

    def _record_evaluation(self):
        train_acc, train_cost = self.check_accuracy(self.X_train, self.y_train,
                                                    self.num_train_samples, self.batch_size)
        val_acc, val_cost = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples,
                                                self.batch_size)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if train_cost is not None:
            self.train_cost_history.append(train_cost)
            self.val_cost_history.append(val_cost)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_epoch = self.epoch
            self.best_params = _copies(self.model.params)
            self.best_state = _copies(self._model_state())
        return train_acc, val_acc, train_cost, val_cost

    # ------------------------------------------------------------------ training

    def _training_step(self):
        """``(loss_and_grads, flat)``: the step's loss and gradients on the rows ``idx``.

        A plain FullyConnectedNet trained by a built-in rule gets
        :class:`~nnflow.nn.fc_step.FCTrainingStep` (the same numbers as ``model.loss``, in
        reused buffers, built once per Solver) with its gradients in the layout of the
        :class:`~nnflow.nn.flat_update.FlatUpdate` ``flat``. Any other model, or a custom
        rule (which may keep the ``dw`` it is given), gets ``model.loss(X_train[idx],
        y_train[idx])``'s fresh arrays and ``flat`` None.
        """
        model, rule = self.model, self.update_rule
        if rule in ELEMENTWISE_RULES and fc_step.supports(model) and (
                self._fast_step is None or self._fast_step.model is not model
                or self._fast_step.settings != fc_step.settings(model)):
            names = list(model.params)
            self._fast_step = fc_step.FCTrainingStep(model, self.X_train, self.y_train)
            self._flat_update = FlatUpdate(rule, model.params, names) if FlatUpdate.fits(
                rule, model.params, names) else None
            if self._flat_update is not None:
                self._fast_step.grads = self._flat_update.gradient_views
        fast = self._fast_step
        if fast is not None and fast.model is model and rule in ELEMENTWISE_RULES:
            flat = self._flat_update
            return fast.loss_and_grads, (flat if flat is not None and flat.rule is rule else None)
        X, y = self.X_train, self.y_train
        return (lambda idx: model.loss(X[idx], y[idx])), None

    def _update(self, flat):
        """The update of one step, ``update(grads)``: one fused call when ``flat`` is bound."""
        if flat is not None:
            return lambda grads: flat.step()
        params, configs, rule = self.model.params, self.optim_configs, self.update_rule
        names = list(params)

        def update(grads):
            for p in names:
                params[p], configs[p] = rule(params[p], grads[p], configs[p])
        return update

    def _step(self, idx, loss_and_grads, update):
        loss, grads = loss_and_grads(idx)
        loss = float(loss)
        self.loss_history.append(loss)
        self.iteration += 1
        if not math.isfinite(loss):
            return False
        update(grads)
        return True

    def _stops(self, ok):
        """After a step: print its loss every ``print_every`` iterations; whether training stops
        (a non-finite loss under ``stop_on_divergence``)."""
        if self.verbose and self.print_every and self.iteration % self.print_every == 0:
            print(f"(Iteration {self.iteration}) loss: {self.loss_history[-1]:.6g}",
                  file=sys.stderr, flush=True)
        return not ok and self.stop_on_divergence

    def _compiled_steps(self, fused):
        """The compiled steps (:mod:`nnflow.nn.fc_kernel`) for this epoch, or None; chosen
        again when the model's settings, the rule, batch size or ``NNFLOW_KERNELS`` changed."""
        fast = self._fast_step
        if not fused or fast is None or fast.model is not self.model:
            return None
        key = (fast, self.update_rule, self.batch_size, fc_kernel.settings(self.model), kernel_choice())
        decided_for, runner = self._runner or (None, None)
        if decided_for != key or (runner is not None and not runner.bound_to(fast)):
            runner = fc_kernel.epoch_runner(fast, self.update_rule, self.batch_size,
                                            self.num_epochs - self.epoch)
            self._runner = (key, runner)
        return runner

    def _compiled_epoch(self, runner, loss_and_grads, update):
        """One epoch with the compiled steps (whether it diverged): NumPy's step takes the first
        mini-batch (its update completes the rule's config), a smaller last one, one whose loss
        is not finite (the kernel stops before it) and a rate the kernel does not take; the
        compiled steps' losses come from one batched pass per kernel call."""
        drawn_from = self.rng.bit_generator.state  # a copy
        batches = list(self._batches())
        full = len(batches) - (batches[-1].shape[0] != self.batch_size if batches else 0)
        index = np.array(batches[:full], dtype=np.int64).reshape(full, self.batch_size)
        position, numpy_step, compiled = 0, True, False
        quadratic = self.model.cost == "quadratic_sigmoid"
        while position < full:
            lr = self._flat_update.config.get("learning_rate")
            if numpy_step or not runner.takes_rate(lr):
                if self._stops(self._step(index[position], loss_and_grads, update)):
                    self._draw_only(drawn_from, position + 1)
                    return True
                position, numpy_step = position + 1, False
                continue
            last = min(full, position + runner.chunk)
            stop = runner(index, position, last, lr, quadratic)
            for loss in runner.step.losses(runner.outputs[:stop - position], index[position:stop]):
                self.loss_history.append(float(loss))
                self.iteration += 1
                self._stops(True)
            # the kernel stopped before a step whose loss is not finite: NumPy's step takes it
            position, numpy_step, compiled = stop, stop < last, True
        if compiled:
            kernels.count_call("numba")
        if full < len(batches):
            return self._stops(self._step(batches[-1], loss_and_grads, update))
        return False

    def _draw_only(self, state, count):
        """Leave :attr:`rng` as the NumPy loop leaves it after drawing ``count`` mini-batches
        of the epoch that began in ``state`` (the compiled epoch drew all of them)."""
        self.rng.bit_generator.state = state
        batches = self._batches()
        for _ in range(count):
            next(batches)

    def _batches(self):
        n = self.X_train.shape[0]
        if self.sampling == "with_replacement":
            for _ in range(max(n // self.batch_size, 1)):
                yield self.rng.integers(0, n, size=self.batch_size)
        else:
            perm = self.rng.permutation(n)
            for k in range(0, n, self.batch_size):
                yield perm[k:k + self.batch_size]

    def _current_lr(self):
        cfg = next(iter(self.optim_configs.values()), {})
        return cfg.get("learning_rate", self.optim_config.get("learning_rate"))

    def _say(self, message):
        log.info(message)
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def _model_state(self):
        get_state = getattr(self.model, "get_state", None)
        return get_state() if get_state else {}

    def _set_model(self, params, state):
        for k, v in params.items():
            self.model.params[k] = v.copy()
        if state:
            self.model.set_state(_copies(state))

    def restore_best_params(self):
        """Put :attr:`best_params` (and :attr:`best_state`) into the model; returns ``self``.

        The model's current parameters and state go to :attr:`last_params` and
        :attr:`last_state`. Nothing happens when the model already holds the best ones
        or no epoch was evaluated yet.
        """
        if self._holding_best or not self.best_params:
            return self
        self.last_params = _copies(self.model.params)
        self.last_state = _copies(self._model_state())
        self._set_model(self.best_params, self.best_state)
        self._holding_best = True
        return self

    def _training_params(self):
        """The parameters and state training continues from (the last epoch's)."""
        if self._holding_best:
            return self.last_params, self.last_state
        return self.model.params, self._model_state()

    def train(self, until_epoch=None):
        """Run (or continue) training up to ``num_epochs``; returns ``self``.

        ``until_epoch`` (at most ``num_epochs``) stops after that epoch instead, status
        "paused": epoch-by-epoch callers log "epoch k / num_epochs" and get the best
        parameters only at the end. When the last epoch is done the status is "completed"
        and, with ``restore_best``, the model holds the best-validation parameters (see
        the module docstring). Status "diverged" with :attr:`diverged_epoch` (1-based
        epoch) and :attr:`diverged_iteration` when the loss or the parameters become
        non-finite; the best parameters are restored then too.
        """
        if self.status == "diverged":
            raise ValueError("this run diverged; start a new Solver (or resume an earlier "
                             "checkpoint)")
        stop = self.num_epochs if until_epoch is None else checks.count(
            "Solver.train", "until_epoch", until_epoch, 0)
        if stop > self.num_epochs:
            raise ValueError(f"Solver.train: until_epoch must be <= num_epochs={self.num_epochs}, "
                             f"got {until_epoch}")
        if self._holding_best:
            self._set_model(self.last_params, self.last_state)
            self._holding_best = False
        if self.epoch == 0 and not self.train_acc_history:
            self._record_evaluation()
            self.lr_history.append(None)
            self.epoch_time_history.append(0.0)
        self.status = "running"
        loss_and_grads, flat = self._training_step()
        while self.epoch < stop:
            start = time.perf_counter()
            lr = self._current_lr()
            diverged = False
            # the configs between epochs are the per-parameter ones (lr decay, checkpoints)
            fused = flat is not None and flat.begin(self.model.params, self.optim_configs)
            update = self._update(flat if fused else None)
            # A diverging run overflows: that is detected below, not reported as warnings.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                try:
                    runner = self._compiled_steps(fused)
                    if runner is not None:
                        diverged = self._compiled_epoch(runner, loss_and_grads, update)
                    else:
                        for idx in self._batches():
                            if self._stops(self._step(idx, loss_and_grads, update)):
                                diverged = True
                                break
                finally:
                    if fused:
                        flat.end(self.optim_configs)
                if not diverged and self.stop_on_divergence:
                    diverged = not _finite_params(self.model.params)
            if diverged:
                self.status = "diverged"
                self.diverged_epoch = self.epoch + 1
                self.diverged_iteration = self.iteration
                self._say(f"(Epoch {self.epoch + 1} / {self.num_epochs}) diverged at iteration "
                          f"{self.iteration}: non-finite loss or parameters")
                if self.restore_best:
                    self.restore_best_params()
                return self
            self.epoch += 1
            for cfg in self.optim_configs.values():
                if "learning_rate" in cfg:
                    cfg["learning_rate"] *= self.lr_decay
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                train_acc, val_acc, train_cost, val_cost = self._record_evaluation()
            elapsed = time.perf_counter() - start
            self.lr_history.append(lr)
            self.epoch_time_history.append(elapsed)
            cost_text = "" if train_cost is None else \
                f" train_cost {train_cost:.6g} val_cost {val_cost:.6g}"
            self._say(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:.4f}; "
                      f"val_acc: {val_acc:.4f};{cost_text} loss {self.loss_history[-1]:.6g} "
                      f"({elapsed:.2f} s)")
            if self.checkpoint_path is not None and (
                    self.epoch % self.checkpoint_every == 0 or self.epoch == self.num_epochs):
                self.save_checkpoint(self.checkpoint_path)
        if self.epoch < self.num_epochs:
            self.status = "paused"
            return self
        self.status = "completed"
        if self.restore_best:
            self.restore_best_params()
        return self

    # ------------------------------------------------------------------ checkpoints

    def _config_record(self):
        return {"update_rule": self.update_rule_name, "batch_size": self.batch_size,
                "sampling": self.sampling, "lr_decay": self.lr_decay,
                "num_train_samples": self.num_train_samples,
                "num_val_samples": self.num_val_samples,
                "dtype": str(getattr(self.model, "dtype", ""))}

    def save_checkpoint(self, path):
        """Write the full training state to ``<path>.npz`` + ``<path>.json`` atomically."""
        arrays, optim_scalars = {}, {}
        params, state = self._training_params()
        for p, v in params.items():
            if _SEP in p:
                raise ValueError(f"parameter name {p!r} must not contain {_SEP!r}")
            arrays[f"param{_SEP}{p}"] = v
        for p, v in self.best_params.items():
            arrays[f"best{_SEP}{p}"] = v
        for k, v in self.best_state.items():
            arrays[f"beststate{_SEP}{k}"] = v
        for p, cfg in self.optim_configs.items():
            optim_scalars[p] = {}
            for k, v in cfg.items():
                if k.startswith("_"):
                    continue
                if isinstance(v, np.ndarray):
                    arrays[f"optim{_SEP}{p}{_SEP}{k}"] = v
                elif isinstance(v, bool | int | float | str | np.generic) or v is None:
                    optim_scalars[p][k] = v.item() if isinstance(v, np.generic) else v
                else:
                    raise ValueError(f"optim_config[{k!r}] of type {type(v).__name__} "
                                     "cannot be checkpointed")
        for k, v in state.items():
            arrays[f"state{_SEP}{k}"] = v
        model_rng = getattr(self.model, "rng", None)
        meta = {
            "kind": _CHECKPOINT_KIND,
            "config": self._config_record(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "num_epochs": self.num_epochs,
            "status": self.status,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "histories": {name: getattr(self, name) for name in (
                "loss_history", "train_acc_history", "val_acc_history", "train_cost_history",
                "val_cost_history", "lr_history", "epoch_time_history")},
            "optim_scalars": optim_scalars,
            "rng_state": self.rng.bit_generator.state,
            "model_rng_state": model_rng.bit_generator.state
            if isinstance(model_rng, np.random.Generator) else None,
        }
        return save_model(path, arrays, meta)

    def resume(self, checkpoint):
        """Load a checkpoint written by :meth:`save_checkpoint`; returns ``self``.

        The Solver must have been built with the same kind of model, data and
        settings (update rule, batch size, sampling, lr decay, subset sizes);
        a mismatch raises ValueError. ``num_epochs`` may differ (train longer).
        """
        arrays, meta = load_model(checkpoint)
        if meta.get("kind") != _CHECKPOINT_KIND:
            raise ValueError(f"{checkpoint}: not a Solver checkpoint (kind={meta.get('kind')!r})")
        mine = self._config_record()
        for key, value in meta["config"].items():
            if mine.get(key) != value:
                raise ValueError(f"checkpoint {checkpoint} was written with {key}={value!r}, "
                                 f"this Solver has {key}={mine.get(key)!r}")
        params, best, state, best_state, optim_arrays = {}, {}, {}, {}, {}
        for name, arr in arrays.items():
            kind, rest = name.split(_SEP, 1)
            {"param": params, "best": best, "state": state, "beststate": best_state,
             "optim": optim_arrays}[kind][rest] = arr
        if set(params) != set(self.model.params):
            raise ValueError(f"checkpoint parameters {sorted(params)} do not match the model's "
                             f"{sorted(self.model.params)}")
        for p, arr in params.items():
            if arr.shape != self.model.params[p].shape:
                raise ValueError(f"checkpoint parameter {p} has shape {arr.shape}, the model's "
                                 f"has {self.model.params[p].shape}")
            self.model.params[p] = arr.astype(self.model.params[p].dtype, copy=True)
        self.best_params = best
        self.best_state = best_state  # empty in checkpoints older than the best-state restore
        self.last_params = self.last_state = None
        self._holding_best = False
        self.optim_configs = {p: dict(s) for p, s in meta["optim_scalars"].items()}
        for name, arr in optim_arrays.items():
            p, key = name.split(_SEP, 1)
            self.optim_configs[p][key] = arr.copy()
        if state:
            self.model.set_state(state)
        if meta.get("model_rng_state") is not None:
            self.model.rng.bit_generator.state = meta["model_rng_state"]
        self.rng.bit_generator.state = meta["rng_state"]
        for name, values in meta["histories"].items():
            setattr(self, name, list(values))
        self.epoch = meta["epoch"]
        self.iteration = meta["iteration"]
        self.best_val_acc = meta["best_val_acc"]
        self.best_epoch = meta["best_epoch"]
        self.status = "resumed"
        self.diverged_epoch = self.diverged_iteration = None
        return self
