"""MNIST-shaped benchmark: one epoch of [784, 30, 10] sigmoid / cross-entropy, mini-batch 10, eta 0.5.

Contenders, interleaved in one run (see common.py), float64 and float32:

- ``nnflow network2``: ``nnflow.network2.Network.SGD`` (vectorised over the mini-batch), its
  epoch compiled by numba when installed (``nnflow.nn.network2_kernel``, the same bits);
  ``nnflow network2, NumPy step``: the same with ``NNFLOW_KERNELS=numpy``;
- ``nnflow modular``: ``FullyConnectedNet(activation="sigmoid", cost="cross_entropy_sigmoid",
  init="network2")`` + ``Solver(update_rule="sgd", sampling="epoch_shuffle")``, its steps
  compiled by numba when installed (``nnflow.nn.fc_kernel``, the same bits); ``nnflow
  modular, NumPy step``: the same with ``NNFLOW_KERNELS=numpy``; the Solver's
  per-epoch evaluation is on 100 training / 100 validation examples only (included in the time);
- ``per-example loop``: Nielsen's original network2 style, written here: column vectors, one
  backprop per example, gradients summed in Python lists;
- ``PyTorch CPU`` with 2 threads and with 1 thread: ``nn.Linear``/``Sigmoid``,
  ``binary_cross_entropy_with_logits(reduction="sum") / m`` (the same cost and gradient ``a - y``),
  ``torch.optim.SGD(lr=eta)``, the same shuffling scheme (one permutation per epoch, consecutive
  slices).

Data: SYNTHETIC uniform [0, 1) pixels and random labels of MNIST's shape (50,000 x 784); the
time of an epoch does not depend on the values, but for one thing: nnflow's first layer sums
the non-zero inputs alone when at most a third are non-zero and the BLAS runs one thread
(``nnflow.nn.sparse_input``; MNIST's own digits, 19 % non-zero, in a workflow job), never
here.

    .venv/bin/python benchmarks/bench_mnist.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.bench_mnist
    import common as C
except ImportError:  # pragma: no cover
    from benchmarks import common as C

from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.network2 import Network
from nnflow.nn.solver import Solver

SIZES = [784, 30, 10]
BATCH = 10
ETA = 0.5
TARGET_VS_LOOP = 0.15
# issue 13: against the faster of PyTorch's two thread settings, float64 (network2's dtype)
TARGET_VS_TORCH = {"nnflow network2": 0.3, "nnflow modular": 0.4}
TARGET_TORCH_DTYPE = "float64"


def make_data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]), dtype=np.float64).astype(dtype)
    y = rng.integers(0, SIZES[-1], n)
    return X, y


# --------------------------------------------------------------------------- the per-example loop


class LoopNetwork:
    """Nielsen's network2 training loop (column vectors, one example at a time)."""

    def __init__(self, sizes, dtype, seed=0):
        rng = np.random.default_rng(seed)
        self.sizes = sizes
        self.dtype = dtype
        self.biases = [rng.standard_normal((y, 1)).astype(dtype) for y in sizes[1:]]
        self.weights = [(rng.standard_normal((y, x)) / np.sqrt(x)).astype(dtype)
                        for x, y in zip(sizes[:-1], sizes[1:], strict=True)]
        self.rng = rng

    @staticmethod
    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    def SGD(self, training_data, eta, mini_batch_size):  # noqa: N802 - Nielsen's name
        n = len(training_data)
        order = self.rng.permutation(n)
        data = [training_data[i] for i in order]
        with np.errstate(over="ignore"):
            for k in range(0, n, mini_batch_size):
                self.update_mini_batch(data[k:k + mini_batch_size], eta)

    def update_mini_batch(self, mini_batch, eta):
        nabla_b = [np.zeros(b.shape, dtype=self.dtype) for b in self.biases]
        nabla_w = [np.zeros(w.shape, dtype=self.dtype) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b, strict=True)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w, strict=True)]
        s = eta / len(mini_batch)
        self.weights = [w - s * nw for w, nw in zip(self.weights, nabla_w, strict=True)]
        self.biases = [b - s * nb for b, nb in zip(self.biases, nabla_b, strict=True)]

    def backprop(self, x, y):
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        activation = x
        activations = [x]
        for b, w in zip(self.biases, self.weights, strict=True):
            z = np.dot(w, activation) + b
            activation = self.sigmoid(z)
            activations.append(activation)
        delta = activations[-1] - y  # CrossEntropyCost.delta
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, len(self.sizes)):
            a = activations[-l]
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * (a * (1 - a))
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w


def loop_data(X, y):
    """network2's format: a list of ((784, 1), (10, 1)) column-vector pairs."""
    eye = np.eye(SIZES[-1], dtype=X.dtype)
    return [(X[i].reshape(-1, 1), eye[y[i]].reshape(-1, 1)) for i in range(X.shape[0])]


# --------------------------------------------------------------------------- PyTorch


def torch_contender(X, y, threads, seed=0):
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = torch.from_numpy(X)
    Yt = torch.from_numpy(np.eye(SIZES[-1], dtype=X.dtype)[y])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.Sigmoid(),
                          nn.Linear(SIZES[1], SIZES[2])).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=ETA)
    gen = torch.Generator().manual_seed(seed)
    n = X.shape[0]

    def epoch():
        torch.set_num_threads(threads)
        perm = torch.randperm(n, generator=gen)
        for k in range(0, n, BATCH):
            idx = perm[k:k + BATCH]
            xb, yb = Xt[idx], Yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(xb), yb, reduction="sum") / idx.numel()
            loss.backward()
            opt.step()

    return epoch


# --------------------------------------------------------------------------- nnflow


def network2_contender(X, y, seed=0, path=C.FUSED):
    """One epoch of ``Network.SGD`` with its epochs on ``path`` (numba from the first epoch,
    where ``auto`` takes it for enough planned work; the warm-up starts numba untimed)."""
    net = Network(SIZES, seed=seed, dtype=X.dtype)
    return C.with_kernels(path, lambda: net.SGD((X, y), 1, BATCH, ETA))


def modular_contender(X, y, seed=0, path=C.FUSED):
    """A setup giving one epoch of the Solver on ``path`` (its steps compiled by numba from
    the first epoch, where ``auto`` takes them for enough planned work)."""
    Xv, yv = X[:100], y[:100]

    def setup():
        model = FullyConnectedNet(SIZES[1:-1], input_dim=SIZES[0], num_classes=SIZES[-1],
                                  activation="sigmoid", cost="cross_entropy_sigmoid",
                                  init="network2", dtype=X.dtype, seed=seed)
        solver = Solver(model, {"X_train": X, "y_train": y, "X_val": Xv, "y_val": yv},
                        update_rule="sgd", optim_config={"learning_rate": ETA},
                        batch_size=BATCH, num_epochs=1, sampling="epoch_shuffle",
                        num_train_samples=100, verbose=False, seed=seed)
        return C.with_kernels(path, solver.train)

    return setup


# --------------------------------------------------------------------------- run


def run(quick=False, repeats=None, dtypes=("float64", "float32"), log=print):
    """Rows of the MNIST comparison.

    nnflow trains on the full epoch (50,000; 10,000 with ``quick``); the slow contenders (the
    per-example loop and PyTorch, whose cost per mini-batch is constant) train on a subset
    (20,000; 5,000 with ``quick``) and their times are scaled to the full epoch. Five
    repetitions (three with ``quick``); a tenth of a second per repetition was too short to
    keep PyTorch's spread under the noise limit on a quiet machine.
    """
    n = 10_000 if quick else 50_000
    n_slow = 5_000 if quick else 20_000
    repeats = repeats or (3 if quick else 5)
    rows = []
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        X, y = make_data(n, dtype)
        Xs, ys = X[:n_slow], y[:n_slow]
        contenders, setups = {}, {}
        contenders["nnflow network2"] = network2_contender(X, y)
        if C.FUSED == "numba":
            contenders["nnflow network2, NumPy step"] = network2_contender(X, y, path="numpy")
        setups["nnflow modular"] = modular_contender(X, y)
        contenders["nnflow modular"] = None
        if C.FUSED == "numba":
            setups["nnflow modular, NumPy step"] = modular_contender(X, y, path="numpy")
            contenders["nnflow modular, NumPy step"] = None
        if C.have_torch():
            contenders["PyTorch CPU 2 threads"] = torch_contender(Xs, ys, 2)
            contenders["PyTorch CPU 1 thread"] = torch_contender(Xs, ys, 1)
        data = loop_data(Xs, ys)
        loop = LoopNetwork(SIZES, dtype)
        contenders["per-example loop"] = lambda loop=loop, data=data: loop.SGD(data, ETA, BATCH)
        log(f"  MNIST {dtype_name}: {repeats} interleaved repetitions of "
            f"{', '.join(contenders)} (epoch of {n}; loop and PyTorch on {n_slow}, scaled)")
        times = C.interleaved({k: (v if v is not None else (lambda: None))
                               for k, v in contenders.items()}, repeats, setup=setups)
        scale = n / n_slow
        slow = [k for k in times if k.startswith("PyTorch") or k == "per-example loop"]
        for k in slow:
            times[k] = times[k].scaled(scale)
        if C.have_torch():
            import torch

            torch.set_num_threads(2)
        case = f"[784,30,10] sigmoid/CE, batch {BATCH}, epoch of {n}"
        torch_names = [k for k in times if k.startswith("PyTorch")]
        best_torch = min(torch_names, key=lambda k: C.summary(times[k])[1]) if torch_names else None
        for name, ts in times.items():
            rows.append(C.row("mnist", case, name, ts, dtype=dtype_name,
                              threads=1 if name.endswith("1 thread") else 2,
                              scaled_from=n_slow if name in slow else n))
        for name in [k for k in times if k.startswith("nnflow")]:
            targeted = name in TARGET_VS_TORCH  # the NumPy step is shown, not targeted
            rows.append(C.row("mnist", case, name, times[name], dtype=dtype_name, threads=2,
                              ref=times["per-example loop"], ref_name="per-example loop",
                              target=TARGET_VS_LOOP if targeted else None))
            for tn in torch_names:
                rows.append(C.row("mnist", case, name, times[name], dtype=dtype_name, threads=2,
                                  ref=times[tn], ref_name=tn,
                                  target=TARGET_VS_TORCH[name] if (
                                      targeted and tn == best_torch and dtype_name == TARGET_TORCH_DTYPE)
                                  else None))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int)
    args = ap.parse_args(argv)
    rows = run(args.quick, args.repeats)
    for r in rows:
        ratio = "" if r["ratio_median"] is None else \
            f"  x{r['ratio_median']:.3f} of {r['ratio_to']} (target {r['target']})"
        print(f"{r['dtype']:8s} {r['tool']:24s} min {r['min_s']:.3f}s median "
              f"{r['median_s']:.3f}s{ratio}")
    return rows


if __name__ == "__main__":
    main()
