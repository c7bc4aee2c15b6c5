"""CIFAR-10-shaped benchmark: one epoch of [3072, 500, 500, 10] ReLU / softmax CE, batch 200, Adam.

Interleaved in one run (see common.py):

- ``nnflow``: ``FullyConnectedNet([500, 500], activation="relu", init="he")`` +
  ``Solver(update_rule="adam", learning_rate=1e-3, batch_size=200, sampling="epoch_shuffle")``;
  the Solver's per-epoch evaluation runs on 200 training / 200 validation examples (in the time);
- ``PyTorch CPU`` (2 threads): the same layers, ``cross_entropy``, ``torch.optim.Adam`` in its
  CPU default (per-tensor loop) and ``fused=True``;
- ``GEMM peak``: one 2048 x 2048 ``numpy.matmul`` in the same dtype, timed between the epochs;
  the fraction of it that an nnflow epoch reaches counts the epoch's matrix-product FLOPs
  (``epoch_flops``: the first layer's input gradient is not computed).

``nnflow`` runs the update rules through the fused numba kernels when numba is installed
(nnflow.nn.kernels; ``NNFLOW_KERNELS``), ``nnflow, NumPy update`` through NumPy's ufuncs.

Then a breakdown of an nnflow epoch (forward, backward, optimizer update, each summed over the
steps of an instrumented epoch that follows the Solver's step) and a micro-benchmark of one
Adam update over all parameters: ``nnflow.nn.optim.adam`` (fused kernels, and NumPy) vs
PyTorch's fused and default Adam.

Data: SYNTHETIC standard-normal inputs and random labels of CIFAR-10's shape (49,000 x 3072).

    .venv/bin/python benchmarks/bench_cifar.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

try:
    import common as C
except ImportError:  # pragma: no cover
    from benchmarks import common as C

from nnflow.nn import kernels, optim
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.solver import Solver

DIMS = [3072, 500, 500, 10]
BATCH = 200
LR = 1e-3
GEMM_N = 2048
# issue 13's targets: the epoch against PyTorch with fused Adam, the share of the measured
# SGEMM peak, one Adam update against PyTorch's fused one
TARGET_VS_TORCH = 0.9
TARGET_VS_TORCH_PEER = "PyTorch CPU, Adam fused"
TARGET_PEAK = 0.85
TARGET_ADAM_STEP = 2.0


def n_params():
    return sum(a * b + b for a, b in zip(DIMS[:-1], DIMS[1:], strict=True))


def epoch_flops(n):
    """The matrix products' floating-point operations of one epoch of ``n`` examples.

    Per example and weight matrix W (a x b): forward 2ab, weight gradient 2ab, input gradient
    2ab, except for the first layer, whose input (the data) needs no gradient: nnflow's step
    and PyTorch both skip it. (6 x parameters x n, the usual estimate, counts that product
    too and overstates this network's work by 40 %: its first layer holds 86 % of it.)
    """
    weights = [a * b for a, b in zip(DIMS[:-1], DIMS[1:], strict=True)]
    return float(n) * (6 * sum(weights) - 2 * weights[0])


def products_contender(n, dtype, seed=0):
    """The epoch's matrix products alone, at its shapes, through NumPy's matmul: per batch
    the forward product of every layer, every weight gradient and every input gradient but
    the first layer's (the products :func:`epoch_flops` counts). Their share of the GEMM
    peak is the most any implementation of the epoch on this BLAS can reach."""
    gen = np.random.default_rng(seed)
    pairs = list(zip(DIMS[:-1], DIMS[1:], strict=True))
    Ws = [gen.standard_normal((a, b)).astype(dtype) for a, b in pairs]
    hs = [gen.standard_normal((BATCH, a)).astype(dtype) for a, _ in pairs]
    ds = [gen.standard_normal((BATCH, b)).astype(dtype) for _, b in pairs]
    outs = [np.empty((BATCH, b), dtype) for _, b in pairs]
    grads = [np.empty_like(W) for W in Ws]
    dxs = [np.empty((BATCH, a), dtype) for a, _ in pairs]

    def epoch():
        for _ in range(-(-n // BATCH)):
            for i, W in enumerate(Ws):
                np.matmul(hs[i], W, out=outs[i])
            for i in range(len(Ws) - 1, -1, -1):
                np.matmul(hs[i].T, ds[i], out=grads[i])
                if i > 0:
                    np.matmul(ds[i], Ws[i].T, out=dxs[i])

    return epoch


def make_data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, DIMS[0]), dtype=np.float32).astype(dtype), \
        rng.integers(0, DIMS[-1], n)


def make_model(dtype, seed=0):
    return FullyConnectedNet(DIMS[1:-1], input_dim=DIMS[0], num_classes=DIMS[-1],
                             activation="relu", init="he", dtype=dtype, seed=seed)


def one_thread(fn):
    """``fn`` run with one BLAS thread and one thread for the fused update kernels."""
    from threadpoolctl import threadpool_limits

    def run():
        with threadpool_limits(1, user_api="blas"), C.environ(OMP_NUM_THREADS="1"):
            return fn()

    return run


def start_kernels(dtype):
    """Start numba and load (or compile) the Adam kernel for ``dtype``, outside the timings."""
    with C.environ(NNFLOW_KERNELS=C.FUSED):
        optim.adam(np.ones(10**5, dtype), np.ones(10**5, dtype))


def nnflow_setup(X, y, seed=0, threads=2, path=C.FUSED):
    Xv, yv = X[:200], y[:200]

    def setup():
        solver = Solver(make_model(X.dtype, seed), {"X_train": X, "y_train": y, "X_val": Xv,
                                                    "y_val": yv},
                        update_rule="adam", optim_config={"learning_rate": LR},
                        batch_size=BATCH, num_epochs=1, sampling="epoch_shuffle",
                        num_train_samples=200, verbose=False, seed=seed)
        train = C.with_kernels(path, solver.train)
        return train if threads > 1 else one_thread(train)

    return setup


def torch_setup(X, y, fused, threads=2, seed=0):
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n = X.shape[0]

    def setup():
        torch.manual_seed(seed)
        layers = []
        for i, (a, b) in enumerate(zip(DIMS[:-1], DIMS[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(DIMS) - 2:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers).to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True if fused else None)
        gen = torch.Generator().manual_seed(seed)

        def epoch():
            torch.set_num_threads(threads)
            perm = torch.randperm(n, generator=gen)
            for k in range(0, n, BATCH):
                idx = perm[k:k + BATCH]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()

        return epoch

    return setup


def breakdown(X, y, seed=0):
    """Seconds of forward, backward and Adam update, summed over an instrumented epoch."""
    model = make_model(X.dtype, seed)
    rng = np.random.default_rng(seed)
    configs = {p: {"learning_rate": LR} for p in model.params}
    t_fwd = t_loss = t_upd = 0.0
    perm = rng.permutation(X.shape[0])
    for k in range(0, X.shape[0], BATCH):
        idx = perm[k:k + BATCH]
        Xb, yb = X[idx], y[idx]
        t0 = time.perf_counter()
        model.loss(Xb, mode="train")
        t1 = time.perf_counter()
        _, grads = model.loss(Xb, yb)
        t2 = time.perf_counter()
        for p, w in model.params.items():
            model.params[p], configs[p] = optim.adam(w, grads[p], configs[p])
        t3 = time.perf_counter()
        t_fwd += t1 - t0
        t_loss += t2 - t1
        t_upd += t3 - t2
    return {"forward": t_fwd, "backward": t_loss - t_fwd, "update": t_upd}


def adam_micro(dtype, steps, repeats=5):
    """Interleaved: one Adam update of all parameters, nnflow vs PyTorch fused / default."""
    rng = np.random.default_rng(0)
    shapes = [(a, b) for a, b in zip(DIMS[:-1], DIMS[1:], strict=True)] + [(b,) for b in DIMS[1:]]
    ws = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    cfgs = [{"learning_rate": LR} for _ in shapes]

    def nnflow_step():
        for _ in range(steps):
            for i in range(len(ws)):
                ws[i], cfgs[i] = optim.adam(ws[i], gs[i], cfgs[i])

    contenders = {f"nnflow optim.adam ({'fused numba' if C.FUSED == 'numba' else 'NumPy'})":
                  C.with_kernels(C.FUSED, nnflow_step)}
    if C.FUSED == "numba":
        contenders["nnflow optim.adam (NumPy)"] = C.with_kernels("numpy", nnflow_step)
    if C.have_torch():
        import torch

        for fused in (True, False):
            ps = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in ws]
            for p, g in zip(ps, gs, strict=True):
                p.grad = torch.from_numpy(g.copy())
            opt = torch.optim.Adam(ps, lr=LR, fused=True if fused else None)

            def torch_step(opt=opt):
                torch.set_num_threads(2)
                for _ in range(steps):
                    opt.step()

            contenders[f"PyTorch Adam ({'fused' if fused else 'default'})"] = torch_step
    times = C.interleaved(contenders, repeats)
    return {k: v.scaled(1 / steps) for k, v in times.items()}


def run(quick=False, repeats=None, dtypes=("float32",), log=print):
    n = 9_800 if quick else 49_000
    repeats = repeats or 2
    rows = []
    nparam = n_params()
    flops = epoch_flops(n)
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        X, y = make_data(n, dtype)
        start_kernels(dtype)
        setups = {"nnflow": nnflow_setup(X, y)}  # numba started and its kernel loaded above
        if C.FUSED == "numba":
            setups["nnflow, NumPy update"] = nnflow_setup(X, y, path="numpy")
        if C.have_torch():
            setups["PyTorch CPU, Adam fused"] = torch_setup(X, y, fused=True)
            setups["PyTorch CPU, Adam default"] = torch_setup(X, y, fused=False)
        # one-thread variants: on a shared (oversubscribed) machine multi-threaded BLAS stalls
        # at every barrier, one thread shows the code's own efficiency
        setups["nnflow 1 thread"] = nnflow_setup(X, y, threads=1)
        if C.have_torch():
            setups["PyTorch CPU 1 thread, Adam fused"] = torch_setup(X, y, fused=True,
                                                                     threads=1)
        gemm = {"t": [], "t1": []}
        contenders = {name: None for name in setups}
        contenders["matrix products alone"] = products_contender(n, dtype)
        contenders["GEMM 2048"] = lambda gemm=gemm, dtype=dtype: (
            gemm["t"].append(C.gemm_seconds(GEMM_N, dtype, 2)),
            gemm["t1"].append(one_thread(lambda: C.gemm_seconds(GEMM_N, dtype, 2))()))
        log(f"  CIFAR {dtype_name}: {repeats} interleaved repetitions of "
            f"{', '.join(contenders)} (epoch of {n})")
        times = C.interleaved(contenders, repeats, setup=setups, warmup=False)
        gemm_flops = [2 * GEMM_N**3 / t for t in gemm["t"]]
        peak_best, peak_med = max(gemm_flops), float(np.median(gemm_flops))
        case = f"[3072,500,500,10] relu/softmax, Adam, batch {BATCH}, epoch of {n}"
        for name in setups:
            rows.append(C.row("cifar", case, name, times[name], dtype=dtype_name,
                              threads=1 if "1 thread" in name else 2))
        t_min, t_med = C.summary(times["nnflow"])
        rows.append(C.row("cifar", case, "GEMM 2048 (numpy)", gemm["t"], dtype=dtype_name,
                          threads=2, gflops_best=peak_best / 1e9, gflops_median=peak_med / 1e9))
        rows.append(C.row("cifar", case, "GEMM 2048 (numpy, 1 thread)", gemm["t1"],
                          dtype=dtype_name, threads=1,
                          gflops_best=2 * GEMM_N**3 / min(gemm["t1"]) / 1e9))
        if "PyTorch CPU 1 thread, Adam fused" in times:
            rows.append(C.row("cifar", case, "nnflow 1 thread", times["nnflow 1 thread"],
                              dtype=dtype_name, threads=1,
                              ref=times["PyTorch CPU 1 thread, Adam fused"],
                              ref_name="PyTorch CPU 1 thread, Adam fused"))
        g1 = [2 * GEMM_N**3 / t for t in gemm["t1"]]
        t1_min, t1_med = C.summary(times["nnflow 1 thread"])
        rows.append(C.row("cifar", case, "nnflow 1 thread, fraction of 1-thread GEMM peak",
                          times["nnflow 1 thread"], dtype=dtype_name, threads=1,
                          ref_name="GEMM peak (fraction)",
                          peak_fraction_median=flops / t1_med / float(np.median(g1)),
                          peak_fraction_best=flops / t1_min / max(g1),
                          epoch_gflops=flops / t1_med / 1e9,
                          target=TARGET_PEAK if dtype_name == "float32" else None,
                          meets_peak=bool(flops / t1_med / float(np.median(g1)) >= TARGET_PEAK)))
        torch_names = [k for k in setups if k.startswith("PyTorch") and "1 thread" not in k]
        for tn in torch_names:
            rows.append(C.row("cifar", case, "nnflow", times["nnflow"], dtype=dtype_name,
                              threads=2, ref=times[tn], ref_name=tn,
                              target=TARGET_VS_TORCH if (tn == TARGET_VS_TORCH_PEER and
                                                         dtype_name == "float32") else None))
        frac_med = flops / t_med / peak_med
        frac_best = flops / t_min / peak_best
        rows.append(C.row("cifar", case, "nnflow fraction of GEMM peak", times["nnflow"],
                          dtype=dtype_name, threads=2, ref_name="GEMM peak (fraction, higher is "
                          "better)", peak_fraction_median=frac_med, peak_fraction_best=frac_best,
                          epoch_gflops=flops / t_med / 1e9,
                          target=TARGET_PEAK if dtype_name == "float32" else None,
                          meets_peak=bool(frac_med >= TARGET_PEAK)))
        p_min, p_med = C.summary(times["matrix products alone"])
        rows.append(C.row("cifar", case, "matrix products alone, fraction of GEMM peak",
                          times["matrix products alone"], dtype=dtype_name, threads=2,
                          ref_name="GEMM peak (fraction: the ceiling of any epoch on this BLAS)",
                          peak_fraction_median=flops / p_med / peak_med,
                          peak_fraction_best=flops / p_min / peak_best,
                          epoch_gflops=flops / p_med / 1e9))
        log(f"  CIFAR {dtype_name}: breakdown of an instrumented nnflow epoch")
        br = C.with_kernels(C.FUSED, lambda X=X, y=y: breakdown(X, y))()
        total = sum(br.values())
        for part, secs in br.items():
            rows.append(C.row("cifar-breakdown", case, f"nnflow {part}", [secs],
                              dtype=dtype_name, threads=2, share=secs / total))
        log(f"  CIFAR {dtype_name}: Adam update micro-benchmark")
        adam = adam_micro(dtype, 50 if quick else 300)
        log(f"  update kernels: {kernels.active_path()}")
        for name, ts in adam.items():
            ref = adam.get("PyTorch Adam (fused)")
            rows.append(C.row("adam-step", f"one Adam update of {nparam} parameters", name, ts,
                              dtype=dtype_name, threads=2,
                              ref=ref if name.startswith("nnflow") else None,
                              ref_name="PyTorch Adam (fused)" if name.startswith("nnflow") and
                              ref is not None else "",
                              target=TARGET_ADAM_STEP if name.startswith("nnflow") and
                              "fused" in name and ref is not None else None))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--dtypes", default="float32")
    args = ap.parse_args(argv)
    rows = run(args.quick, args.repeats, tuple(args.dtypes.split(",")))
    for r in rows:
        ratio = "" if r["ratio_median"] is None else \
            f"  x{r['ratio_median']:.3f} of {r['ratio_to']} (target {r['target']})"
        extra = f"  peak fraction {r['peak_fraction_median']:.2f}" \
            if r.get("peak_fraction_median") else ""
        print(f"{r['bench']:16s} {r['dtype']:8s} {r['tool']:30s} min {r['min_s']:.4f}s "
              f"median {r['median_s']:.4f}s{ratio}{extra}")
    return rows


if __name__ == "__main__":
    main()
