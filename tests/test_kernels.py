"""The fused update kernels (nnflow.nn.kernels) against the NumPy rules they replace."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nnflow import runtime
from nnflow.nn import kernels, optim
from nnflow.workflow import sourcehash as sh

numba = pytest.importorskip("numba")
REAL_NUMPY_BELOW = dict(kernels.NUMPY_BELOW)

RULES = ["sgd", "sgd_momentum", "rmsprop", "adam"]
HYPER = {"sgd": {"learning_rate": 0.03},
         "sgd_momentum": {"learning_rate": 0.02, "momentum": 0.85},
         "rmsprop": {"learning_rate": 0.01, "decay_rate": 0.95, "epsilon": 1e-6},
         "adam": {"learning_rate": 0.005, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7}}
STATES = {"sgd": [], "sgd_momentum": ["velocity"], "rmsprop": ["cache"], "adam": ["m", "v"]}
# 0-d, 1-d, 2-d, and one above SINGLE_THREAD_BELOW (so it runs on every thread)
SHAPES = [(), (7,), (3, 5), (1, 0), (250, 200)]
STEPS = 12


@pytest.fixture(autouse=True)
def fuse_every_size(monkeypatch):
    """The kernels take every size here (NumPy is faster for small arrays; same results)."""
    monkeypatch.setattr(kernels, "NUMPY_BELOW", dict.fromkeys(kernels.NUMPY_BELOW, 0))


@pytest.fixture
def fused_calls(monkeypatch):
    """The results of every kernels._run call: True where the fused kernel ran."""
    results = []
    run = kernels._run

    def spy(*args):
        results.append(run(*args))
        return results[-1]

    monkeypatch.setattr(kernels, "_run", spy)
    return results


def _start(rule, shape, dtype, scalars, seed=0):
    rng = np.random.default_rng(seed)
    w = np.asarray(rng.standard_normal(shape), dtype=dtype)
    grads = [np.asarray(rng.standard_normal(shape), dtype=dtype) for _ in range(STEPS)]
    config = {key: (np.float64(x) if scalars == "float64" else np.float32(x) if scalars == "float32" else x)
              for key, x in HYPER[rule].items()}
    for key in STATES[rule]:  # nonzero, nonnegative starting state (rmsprop cache, adam v must be)
        config[key] = np.asarray(np.abs(rng.standard_normal(shape)), dtype=dtype)
    return w, grads, config


def _trajectory(rule, w, grads, config, path, monkeypatch):
    monkeypatch.setenv("NNFLOW_KERNELS", path)
    w, config = w.copy(), {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in config.items()}
    for g in grads:
        w, config = optim.UPDATE_RULES[rule](w, g, config)
    return [w] + [config[key] for key in STATES[rule]]


@pytest.mark.parametrize("scalars", ["python", "float64", "float32"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULES)
def test_fused_rules_are_bit_identical_to_numpy(rule, dtype, scalars, monkeypatch, fused_calls):
    """Weights and state equal bit for bit after many steps, for every shape; reruns too."""
    for shape in SHAPES:
        start = _start(rule, shape, dtype, scalars)
        reference = _trajectory(rule, *start, "numpy", monkeypatch)
        assert not any(fused_calls)
        fused_calls.clear()
        fused = _trajectory(rule, *start, "numba", monkeypatch)
        assert all(fused_calls) == (0 not in shape), shape  # the kernel ran (an empty array needs none)
        rerun = _trajectory(rule, *start, "numba", monkeypatch)
        fused_calls.clear()
        for ref, got, again in zip(reference, fused, rerun, strict=True):
            assert got.dtype == ref.dtype
            np.testing.assert_array_equal(got, ref, strict=True, err_msg=f"{rule} {shape}")
            np.testing.assert_array_equal(again, got, strict=True)


@pytest.mark.parametrize("rule", RULES)
def test_thread_count_does_not_change_the_result(rule, monkeypatch):
    start = _start(rule, (300, 200), np.float32, "python", seed=3)
    monkeypatch.setattr(kernels, "SINGLE_THREAD_BELOW", 10**9)
    one_thread = _trajectory(rule, *start, "numba", monkeypatch)
    monkeypatch.setattr(kernels, "SINGLE_THREAD_BELOW", 0)
    all_threads = _trajectory(rule, *start, "numba", monkeypatch)
    for a, b in zip(one_thread, all_threads, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)


def _not_fusable():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 8))
    w = rng.standard_normal((4, 4)).astype(np.float32)
    return {
        "strided weights": (base[:, ::2], rng.standard_normal((6, 4))),
        "float64 gradient for float32 weights": (w, rng.standard_normal((4, 4))),
        "gradient is the weights": (w.copy(), None),
        "float16": (w.astype(np.float16), w.astype(np.float16)),
        "Fortran order": (np.asfortranarray(base), np.asfortranarray(base) * 0.5),
    }


@pytest.mark.parametrize("case", list(_not_fusable()))
@pytest.mark.parametrize("rule", RULES)
def test_what_the_kernels_do_not_take_runs_the_numpy_code(rule, case, monkeypatch, fused_calls):
    def run(path):
        monkeypatch.setenv("NNFLOW_KERNELS", path)
        w, dw = _not_fusable()[case]
        dw = w if dw is None else dw
        config = dict(HYPER[rule])
        for _ in range(3):
            w, config = optim.UPDATE_RULES[rule](w, dw, config)
        return w

    reference = run("numpy")
    got = run("numba")
    assert fused_calls and not any(fused_calls)
    np.testing.assert_array_equal(got, reference, strict=True)


def test_the_kernels_follow_the_jobs_thread_budget(monkeypatch):
    import threadpoolctl

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda limits: None)  # BLAS: not here
    monkeypatch.setenv("NNFLOW_KERNELS", "numba")
    runtime.limit_threads(1)
    assert kernels.active_path()["threads"] == 1
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    size = kernels.SINGLE_THREAD_BELOW * 2  # large enough for every thread the budget allows
    ran = []
    threaded, serial = kernels._load()["sgd"]
    monkeypatch.setitem(kernels._compiled, "sgd", (lambda *a: ran.append("threaded") or threaded(*a),
                                                  lambda *a: ran.append("serial") or serial(*a)))
    assert kernels.fused_sgd(np.ones(size), np.ones(size), 0.1)
    assert ran == ["serial"]  # a budget of one thread: the serial kernel, no pool launched
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert kernels.fused_sgd(np.ones(size), np.ones(size), 0.1)
    assert ran == ["serial", "threaded"] and numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)


def test_a_bad_kernel_choice_names_the_variable(monkeypatch):
    monkeypatch.setenv("NNFLOW_KERNELS", "fast")
    for call in (lambda: optim.adam(np.ones(3), np.ones(3)), kernels.active_path):
        with pytest.raises(ValueError, match=r"NNFLOW_KERNELS='fast' is not a choice; expected one of "
                                             r"auto, numpy, numba"):
            call()


def test_the_environment_records_the_update_kernels(monkeypatch):
    monkeypatch.setenv("NNFLOW_KERNELS", "auto")
    assert runtime.environment()["update_kernels"] == {
        "path": "numba", "numba": numba.__version__, "threads": runtime.numba_threads()}
    monkeypatch.setenv("NNFLOW_KERNELS", "numpy")
    assert runtime.environment()["update_kernels"] == {"path": "numpy", "reason": "NNFLOW_KERNELS=numpy"}


def _python(code, **env):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_auto_starts_numba_once_the_update_work_repays_it():
    """Not on import; under auto after AUTO_START_AFTER element-passes of NumPy updates,
    with the same numbers before and after the switch; NNFLOW_KERNELS=numba at once."""
    out = _python(
        "import sys, os, numpy as np\n"
        "from nnflow.nn import optim, solver, fc_net, kernels\n"
        "print('numba' in sys.modules)\n"
        "kernels.AUTO_START_AFTER = 10 * 11 * 2000\n"
        "w, config = np.ones(2000), {}\n"
        "for step in range(20):\n"
        "    w, config = optim.adam(w, np.linspace(-1, 1, 2000) * step, config)\n"
        "    if step in (9, 10):\n"
        "        print('numba' in sys.modules)\n"
        "os.environ['NNFLOW_KERNELS'] = 'numpy'\n"
        "v, config = np.ones(2000), {}\n"
        "for step in range(20):\n"
        "    v, config = optim.adam(v, np.linspace(-1, 1, 2000) * step, config)\n"
        "print(np.array_equal(v, w))\n", NNFLOW_KERNELS="auto")
    assert out.split() == ["False", "False", "True", "True"]
    out = _python("import sys, numpy as np\nfrom nnflow.nn import optim\n"
                  "optim.adam(np.ones(2000), np.ones(2000))\nprint('numba' in sys.modules)\n",
                  NNFLOW_KERNELS="numba")
    assert out == "True"


def test_without_numba_the_numpy_rules_run():
    """Blocked numba (as if not installed): auto runs the NumPy rules and says so; numba fails."""
    code = (
        "import os, sys\nsys.modules['numba'] = None\n"
        "import numpy as np\nfrom nnflow.nn import optim, kernels\n"
        "kernels.AUTO_START_AFTER = 0\n"
        "w = optim.adam(np.ones(5000), np.linspace(-1, 1, 5000))[0]\n"
        "print(kernels._numba_missing)\n"
        "print(kernels.active_path())\n"
        "os.environ['NNFLOW_KERNELS'] = 'numpy'\n"
        "print(kernels.active_path())\n"
        "print(np.array_equal(w, optim.adam(np.ones(5000), np.linspace(-1, 1, 5000))[0]))\n"
        "os.environ['NNFLOW_KERNELS'] = 'numba'\n"
        "try:\n    optim.adam(np.ones(3), np.ones(3))\nexcept ValueError as err:\n    print(err)\n"
    )
    out = _python(code, NNFLOW_KERNELS="auto").splitlines()
    assert out == [
        "True",
        "{'path': 'numpy', 'reason': 'numba not installed'}",
        "{'path': 'numpy', 'reason': 'NNFLOW_KERNELS=numpy'}",
        "True",
        "environment variable NNFLOW_KERNELS=numba, but numba is not installed (pip install 'nnflow[fast]')",
    ]


def test_the_jobs_code_hash_covers_the_kernels():
    """A solver job's `code` param changes when the kernels it runs change."""
    assert "nnflow.nn.kernels" in sh.closure(["nnflow.train.trainers.solver"])



@pytest.mark.parametrize("rule", RULES)
def test_arrays_below_the_threshold_take_the_numpy_rules(rule, monkeypatch, fused_calls):
    monkeypatch.setattr(kernels, "NUMPY_BELOW", REAL_NUMPY_BELOW)
    monkeypatch.setenv("NNFLOW_KERNELS", "numba")
    size = REAL_NUMPY_BELOW[rule]
    for n in (size - 1, size):
        optim.UPDATE_RULES[rule](np.ones(n), np.ones(n), dict(HYPER[rule]))
    assert fused_calls == [False, True]


def test_without_a_writable_cache_the_kernels_compile_in_memory(monkeypatch):
    """numba raises at decoration when no cache directory is writable; the kernels still run."""
    njit = numba.njit

    def njit_without_cache(*args, **options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'sgd': no locator available for file 'kernels.py'")
        return njit(*args, **options)

    monkeypatch.setattr(numba, "njit", njit_without_cache)
    monkeypatch.setattr(kernels, "_compiled", None)
    monkeypatch.setenv("NNFLOW_KERNELS", "numba")
    w, dw = np.ones(100, np.float32), np.full(100, 0.5, np.float32)
    assert kernels.fused_sgd(w, dw, 0.1)
    assert set(kernels._compiled) == set(RULES)
    np.testing.assert_array_equal(w, np.float32(1) - np.float32(0.5) * np.float32(0.1), strict=False)


@pytest.mark.parametrize(("chosen", "layer"), [("", "workqueue"), ("omp", "omp")])
def test_the_kernels_run_on_numbas_workqueue_unless_a_layer_is_chosen(chosen, layer):
    out = _python("import numpy as np, numba\nfrom nnflow.nn import kernels\n"
                  "assert kernels.fused_adam(*(np.ones(50_000) for _ in range(4)), 0.9, 0.999, 1.0, 1e-8)\n"
                  "print(numba.threading_layer())\n",
                  NNFLOW_KERNELS="numba", NUMBA_THREADING_LAYER=chosen)
    assert out == layer


def test_the_recorded_blas_is_the_same_whether_or_not_the_kernels_started():
    """numba's OpenMP pool is not a BLAS: jobs that started it share the others' environment."""
    out = _python("from nnflow import runtime\nfrom nnflow.nn import kernels\n"
                  "before = runtime.blas_info()\nkernels._load()\nprint(runtime.blas_info() == before)\n")
    assert out == "True"


def test_calls_count_the_path_that_computed_each_update(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("NNFLOW_KERNELS", "numba")
    before = kernels.calls()
    big = np.zeros(kernels.NUMPY_BELOW["adam"] * 4, np.float32)
    optim.adam(big, np.ones_like(big), {})            # large: the fused kernel
    optim.adam(np.zeros(3, np.float32), np.ones(3, np.float32), {})  # small: NumPy
    assert kernels.calls_since(before) == {"numba": 1, "numpy": 1}
    monkeypatch.setenv("NNFLOW_KERNELS", "numpy")
    optim.adam(big, np.ones_like(big), {})
    assert kernels.calls_since(before) == {"numba": 1, "numpy": 2}


def test_updates_from_several_python_threads_take_turns_instead_of_aborting(tmp_path):
    # numba's workqueue layer terminates the process when parallel kernels are launched from
    # two Python threads at once (a user training models in a thread pool); run it apart
    pytest.importorskip("numba")
    script = tmp_path / "threads.py"
    script.write_text(
        "import threading\n"
        "import numpy as np\n"
        "from nnflow.nn import optim\n"
        "rng = np.random.default_rng(0)\n"
        "ws = [rng.standard_normal(300_000).astype(np.float32) for _ in range(4)]\n"
        "gs = [rng.standard_normal(300_000).astype(np.float32) for _ in range(4)]\n"
        "ref = [w.copy() for w in ws]\n"
        "def train(w, g):\n"
        "    config = {}\n"
        "    for _ in range(40):\n"
        "        optim.adam(w, g, config)\n"
        "for w, g in zip(ref, gs):\n"
        "    train(w, g)\n"
        "threads = [threading.Thread(target=train, args=(w, g)) for w, g in zip(ws, gs)]\n"
        "for t in threads:\n"
        "    t.start()\n"
        "for t in threads:\n"
        "    t.join()\n"
        "assert all(np.array_equal(a, b) for a, b in zip(ws, ref))\n"
        "print('ok')\n")
    env = {**os.environ, "NNFLOW_KERNELS": "numba", "OMP_NUM_THREADS": "2"}
    env.pop("NUMBA_THREADING_LAYER", None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
