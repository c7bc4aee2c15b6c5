"""The Solver's training step against a plain CS231n loop, bit for bit; buffers never leak.

The reference is the textbook loop: ``loss, grads = model.loss(X[idx], y[idx])`` and one
update-rule call per parameter with its own config. The Solver's fast path (the fused
FullyConnectedNet step in reused buffers, one update call over all parameters laid end to
end) must give exactly its losses, parameters and optimiser state.
"""

import subprocess
import sys

import numpy as np
import pytest

from nnflow.nn import optim
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.fc_step import FCTrainingStep
from nnflow.nn.solver import Solver

D, C, N = 12, 4, 53  # 53 = five batches of 10 and a last one of 3
RULES = {"sgd": {"learning_rate": 0.3}, "sgd_momentum": {"learning_rate": 0.05},
         "rmsprop": {"learning_rate": 1e-2}, "adam": {"learning_rate": 1e-2}}
NETS = {  # activation, cost, reg, dtype
    "sigmoid-ce": ("sigmoid", "cross_entropy_sigmoid", 0.0, np.float64),
    "sigmoid-ce-reg-f32": ("sigmoid", "cross_entropy_sigmoid", 0.05, np.float32),
    "relu-softmax-reg-f32": ("relu", "softmax", 0.01, np.float32),
    "tanh-quadratic-reg": ("tanh", "quadratic_sigmoid", 0.1, np.float64),
}


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N + 20, D)).astype(dtype)
    y = rng.integers(0, C, N + 20)
    return {"X_train": X[:N], "y_train": y[:N], "X_val": X[N:], "y_val": y[N:]}


def _net(net, weight_scale=0.3):
    activation, cost, reg, dtype = NETS[net]
    return FullyConnectedNet([9, 7], input_dim=D, num_classes=C, activation=activation, cost=cost,
                             reg=reg, dtype=dtype, weight_scale=weight_scale, seed=4)


def _solver(model, data, rule, sampling, epochs=3):
    # no evaluation subsets: the Solver's generator then draws only the batches
    return Solver(model, data, update_rule=rule, optim_config=RULES[rule], lr_decay=0.9,
                  batch_size=10, num_epochs=epochs, sampling=sampling, num_train_samples=None,
                  verbose=False, seed=7, restore_best=False)


def _reference(model, data, rule, sampling, epochs=3, seed=7, lr_decay=0.9, configs=None):
    """CS231n's loop: one model.loss and one rule call per parameter per step."""
    rng = np.random.default_rng(seed)
    X, y = data["X_train"], data["y_train"]
    update = optim.get_update_rule(rule)
    configs = configs or {p: dict(RULES[rule]) for p in model.params}
    losses = []
    for _ in range(epochs):
        if sampling == "epoch_shuffle":
            perm = rng.permutation(N)
            batches = [perm[k:k + 10] for k in range(0, N, 10)]
        else:
            batches = [rng.integers(0, N, size=10) for _ in range(N // 10)]
        for idx in batches:
            loss, grads = model.loss(X[idx], y[idx])
            losses.append(float(loss))
            for p in model.params:
                model.params[p], configs[p] = update(model.params[p], grads[p], configs[p])
        for cfg in configs.values():
            cfg["learning_rate"] *= lr_decay
    return losses, configs


def _assert_same_state(solver, model, losses, configs):
    assert solver.loss_history == losses
    for p, w in model.params.items():
        assert solver.model.params[p].dtype == w.dtype
        assert solver.model.params[p].tobytes() == w.tobytes(), p
    for p, cfg in configs.items():
        public = {k: v for k, v in cfg.items() if not k.startswith("_")}
        mine = {k: v for k, v in solver.optim_configs[p].items() if not k.startswith("_")}
        assert sorted(mine) == sorted(public), p
        for k, v in public.items():
            if isinstance(v, np.ndarray):
                assert mine[k].tobytes() == v.tobytes(), (p, k)
            else:
                assert mine[k] == v, (p, k)


@pytest.mark.parametrize("sampling", ["epoch_shuffle", "with_replacement"])
@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_solver_training_is_bit_identical_to_the_plain_cs231n_loop(rule, net, sampling):
    data = _data(NETS[net][3])
    solver = _solver(_net(net), data, rule, sampling).train()
    reference = _net(net)
    losses, configs = _reference(reference, data, rule, sampling)
    _assert_same_state(solver, reference, losses, configs)


@pytest.mark.parametrize("net", sorted(NETS))
def test_fused_step_returns_what_model_loss_returns(net):
    """Every batch size (the last batch of an epoch is smaller), saturated outputs included."""
    data = _data(NETS[net][3])
    for weight_scale in (0.3, 40.0):  # 40: sigmoid outputs of exactly 0 and 1, ln 0 in the cost
        model = _net(net, weight_scale)
        step = FCTrainingStep(model, data["X_train"], data["y_train"])
        for idx in (np.arange(10), np.array([5, 3, 5]), np.arange(N)[::-1]):
            loss, grads = model.loss(data["X_train"][idx], data["y_train"][idx])
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the Solver's
                fast_loss, fast_grads = step.loss_and_grads(idx)
            assert type(fast_loss) is type(loss) and fast_loss.tobytes() == loss.tobytes()
            assert sorted(fast_grads) == sorted(grads)
            for p, g in grads.items():
                assert fast_grads[p].tobytes() == g.tobytes(), p


def test_the_saturated_cross_entropy_is_clamped_as_network2_clamps_it():
    """ln 0 in the cost: the nan_to_num path, a finite loss equal to model.loss's."""
    data = _data(np.float64)
    model = _net("sigmoid-ce", weight_scale=40.0)
    idx = np.arange(10)
    loss, _ = model.loss(data["X_train"][idx], data["y_train"][idx])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the Solver's
        fast_loss, _ = FCTrainingStep(model, data["X_train"], data["y_train"]).loss_and_grads(idx)
    assert np.isfinite(loss) and loss > 1e300  # a clamped max-float term
    assert fast_loss == loss


def test_results_held_by_the_caller_are_not_overwritten_by_later_steps():
    """loss_history, best/last parameters and model.loss's gradients are the caller's own."""
    data = _data(np.float64)
    model = _net("sigmoid-ce")
    solver = _solver(model, data, "sgd_momentum", "epoch_shuffle", epochs=4)
    first_loss, first_grads = model.loss(data["X_train"][:10], data["y_train"][:10])
    grads_before = {p: g.copy() for p, g in first_grads.items()}
    solver.train(until_epoch=2)
    history = list(solver.loss_history)
    best = {p: w.copy() for p, w in solver.best_params.items()}
    best_epoch = solver.best_epoch
    params_after_2 = {p: w.copy() for p, w in model.params.items()}
    velocity = {p: solver.optim_configs[p]["velocity"].copy() for p in model.params}
    held_params = dict(model.params)
    held_state = {p: solver.optim_configs[p]["velocity"] for p in model.params}
    model.loss(data["X_train"][10:20], data["y_train"][10:20])
    solver.train()
    assert solver.loss_history[:len(history)] == history
    for p, g in first_grads.items():
        assert np.array_equal(g, grads_before[p])
    if solver.best_epoch == best_epoch:
        for p, w in solver.best_params.items():
            assert np.array_equal(w, best[p])
    # what the caller held after epoch 2 moved on with training (as arrays updated in place
    # do), while the snapshots taken from them stayed
    assert any(not np.array_equal(held_params[p], params_after_2[p]) for p in held_params)
    assert any(not np.array_equal(held_state[p], velocity[p]) for p in held_state)
    assert not any(np.shares_memory(solver.best_params[p], model.params[p]) for p in model.params)


def test_batches_a_model_keeps_are_not_overwritten():
    """A model that keeps the batches it was given (no fused step for it) keeps them intact."""
    data = _data(np.float64)

    class KeepingNet(FullyConnectedNet):
        def loss(self, X, y=None, **kw):
            if y is not None:
                self.seen.append((X, X.copy()))
            return super().loss(X, y, **kw)

    model = KeepingNet([9, 7], input_dim=D, num_classes=C, activation="sigmoid",
                       cost="cross_entropy_sigmoid", dtype=np.float64, weight_scale=0.3, seed=4)
    model.seen = []
    _solver(model, data, "sgd", "epoch_shuffle").train()
    assert len(model.seen) == 18
    for kept, copy in model.seen:
        assert np.array_equal(kept, copy)


def test_gradients_a_custom_rule_keeps_are_not_overwritten():
    """A custom update rule may keep the dw it is given: each one stays that step's gradient."""
    data = _data(np.float64)
    kept = []

    def keeping_sgd(w, dw, config=None):
        kept.append((dw, dw.copy()))
        return optim.sgd(w, dw, config)

    solver = _solver(_net("sigmoid-ce"), data, "sgd", "epoch_shuffle")
    solver.update_rule = keeping_sgd
    solver.train()
    reference = _net("sigmoid-ce")
    losses, configs = _reference(reference, data, "sgd", "epoch_shuffle")
    _assert_same_state(solver, reference, losses, configs)
    assert len(kept) == 18 * len(reference.params)
    for dw, copy in kept:
        assert np.array_equal(dw, copy)


def test_edits_between_train_calls_are_honoured():
    """Rebound parameters, edited and per-parameter learning rates, a deleted state array."""
    data = _data(np.float64)
    model, reference = _net("sigmoid-ce"), _net("sigmoid-ce")
    solver = _solver(model, data, "sgd_momentum", "epoch_shuffle", epochs=3)
    solver.train(until_epoch=1)
    losses, configs = _reference(reference, data, "sgd_momentum", "epoch_shuffle", epochs=1)
    rng_state = np.random.default_rng(7)
    rng_state.permutation(N)  # the reference's generator after epoch 1
    for m in (model, reference):
        m.params["W2"] = m.params["W2"] * 0.5
    for cfgs in (solver.optim_configs, configs):
        cfgs["W1"]["learning_rate"] = 0.2  # no longer the same for every parameter
        del cfgs["b2"]["velocity"]
    solver.train(until_epoch=2)
    more, configs = _continue(reference, data, configs, rng_state)
    _assert_same_state(solver, reference, losses + more, configs)
    for cfgs in (solver.optim_configs, configs):  # the same again: fused once more
        for cfg in cfgs.values():
            cfg["learning_rate"] = 0.01
        cfgs["b2"]["velocity"] = np.zeros_like(model.params["b2"])
    solver.train()
    again, configs = _continue(reference, data, configs, rng_state)
    _assert_same_state(solver, reference, losses + more + again, configs)


@pytest.mark.parametrize("change", [("activation", "relu"), ("activation", "tanh"),
                                    ("cost", "quadratic_sigmoid"), ("cost", "softmax")])
def test_a_model_setting_changed_between_train_calls_is_honoured(change, monkeypatch):
    """The fast step is made for the model's activation and cost: after a change it is made
    anew, so the next epochs are model.loss's (NumPy's step here: NNFLOW_KERNELS=numpy)."""
    monkeypatch.setenv("NNFLOW_KERNELS", "numpy")
    data = _data(np.float64)
    model, reference = _net("sigmoid-ce"), _net("sigmoid-ce")
    solver = _solver(model, data, "sgd", "epoch_shuffle", epochs=2)
    solver.train(until_epoch=1)
    losses, configs = _reference(reference, data, "sgd", "epoch_shuffle", epochs=1)
    for m in (model, reference):
        setattr(m, *change)
    solver.train()
    rng = np.random.default_rng(7)
    rng.permutation(N)  # the reference's generator after epoch 1
    more, configs = _continue(reference, data, configs, rng, optim.sgd)
    _assert_same_state(solver, reference, losses + more, configs)


def _continue(model, data, configs, rng, rule=optim.sgd_momentum):
    """One more epoch of the reference loop with the given configs, generator and rule."""
    perm = rng.permutation(N)
    losses = []
    for k in range(0, N, 10):
        idx = perm[k:k + 10]
        loss, grads = model.loss(data["X_train"][idx], data["y_train"][idx])
        losses.append(float(loss))
        for p in model.params:
            model.params[p], configs[p] = rule(model.params[p], grads[p], configs[p])
    for cfg in configs.values():
        cfg["learning_rate"] *= 0.9
    return losses, configs



REGISTERED_FIRST = """
import numpy as np
from nnflow.nn import optim
shapes = []
def normalised_sgd(w, dw, config=None):
    shapes.append(w.shape)
    return optim.sgd(w, dw / max(np.linalg.norm(dw), 1e-12), config)
optim.UPDATE_RULES["normalised_sgd"] = normalised_sgd  # registered before the Solver is imported
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.solver import Solver
rng = np.random.default_rng(0)
X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
model = FullyConnectedNet([5], input_dim=6, num_classes=3, dtype=np.float64, seed=1)
Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, update_rule="normalised_sgd",
       batch_size=10, num_epochs=1, verbose=False, seed=2).train()
print(sorted(set(shapes)) == sorted({w.shape for w in model.params.values()}))
"""


def test_a_rule_added_to_the_registry_is_called_per_parameter():
    """A registered rule may not be elementwise (e.g. a whole-parameter norm): no fused call."""
    proc = subprocess.run([sys.executable, "-c", REGISTERED_FIRST], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
