"""Tests for nnflow.report.tables.environment_table / environment_rst (the report's environment table)."""

from __future__ import annotations

import copy
import html

import pytest

from nnflow.report.tables import (
    ENVIRONMENT_COLUMNS,
    environment_rst,
    environment_table,
    lock_verdict,
    write_environment_html,
)

ENV = {
    "nnflow": "0.1.0",
    "python": "3.11.7",
    "platform": "Linux-6.8.0-x86_64-with-glibc2.36",
    "machine": "x86_64",
    "packages": {"numpy": "2.4.6", "scipy": "1.17.1", "pandas": "3.1.1"},
    "numpy": "2.4.6",
    "blas": [
        {
            "internal_api": "openblas",
            "version": "0.3.31",
            "architecture": "Haswell",
            "num_threads": 1,
            "threading_layer": "pthreads",
        }
    ],
    "thread_env": {
        "MKL_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_CORETYPE": None,
        "OPENBLAS_L2_SIZE": None,
        "OPENBLAS_NUM_THREADS": "1",
    },
    "git_commit": "6f390c9b28a6412ce5db2e1590bf2c5f62c287dc-dirty",
}


def info(experiment, seed, env=ENV, threads=1):
    return {
        "spec": {"experiment": experiment, "run_id": f"{experiment}/base/seed={seed}", "seed": seed},
        "status": "completed",
        "threads": threads,
        "environment": copy.deepcopy(env),
    }


def two_environments():
    other = copy.deepcopy(ENV)
    other["blas"] = [
        {"internal_api": "mkl", "version": "2024.0", "architecture": None, "num_threads": 4},
        {"internal_api": "openmp", "version": None, "architecture": None, "num_threads": 4},
    ]
    other["thread_env"] = {"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": None, "OPENBLAS_CORETYPE": "Zen"}
    other["git_commit"] = "0123456789abcdef0123456789abcdef01234567"
    infos = [
        info("mnist_cost", 1),
        info("unstable_gradients", 1),
        info("mnist_cost", 2),
        info("cifar_optimizers", 1, other, threads=4),
        info("cifar_optimizers", 2, other, threads=4),
    ]
    return environment_table(infos)


def test_environment_table_one_row_per_environment():
    table = two_environments()
    assert list(table.columns) == [*ENVIRONMENT_COLUMNS, "n_runs", "experiments"]
    assert len(table) == 2
    a, b = table.to_dict("records")
    assert a["n_runs"] == 3 and b["n_runs"] == 2
    assert a["experiments"] == "mnist_cost, unstable_gradients"
    assert b["experiments"] == "cifar_optimizers"
    assert a["blas"] == "openblas 0.3.31 Haswell, 1 thread"
    assert b["blas"] == "mkl 2024.0, 4 threads; openmp, 4 threads"
    assert a["thread_env"] == "OMP=1 OPENBLAS=1 MKL=1"
    assert b["thread_env"] == "OMP=4 OPENBLAS_CORETYPE=Zen"
    assert (a["threads"], b["threads"]) == ("1", "4")
    assert (a["numpy"], a["scipy"], a["python"], a["nnflow"]) == ("2.4.6", "1.17.1", "3.11.7", "0.1.0")
    assert a["git_commit"] == ENV["git_commit"]


def test_environment_table_threads_and_missing_fields_distinguish():
    infos = [info("a", 1), info("a", 2, threads=2), {"spec": {"experiment": "old"}, "status": "completed"}]
    table = environment_table(infos)
    assert len(table) == 3
    old = table.iloc[2]
    assert old["blas"] == "n/a" and old["thread_env"] == "none set" and old["threads"] == "n/a"
    assert environment_table([]).empty


def test_environment_rst_is_a_well_formed_list_table():
    table = two_environments()
    text = environment_rst(table)
    assert text.startswith(".. list-table:: Software environment of the runs\n   :header-rows: 1\n\n")
    rows = [line for line in text.splitlines() if line.startswith("   * - ")]
    assert len(rows) == 1 + len(table)
    cells = [line for line in text.splitlines() if line.lstrip().startswith(("* - ", "- "))]
    assert len(cells) == (1 + len(table)) * len(table.columns)
    assert "6f390c9b28a6-dirty" in text and "0123456789ab\n" in text
    assert r"OPENBLAS\_CORETYPE=Zen" in text

    docutils_core = pytest.importorskip("docutils.core")
    from docutils import nodes

    doctree = docutils_core.publish_doctree(text, settings_overrides={"report_level": 5, "halt_level": 5})
    assert not list(doctree.findall(nodes.system_message))
    (tbl,) = list(doctree.findall(nodes.table))
    parsed = [[entry.astext() for entry in row.findall(nodes.entry)] for row in tbl.findall(nodes.row)]
    assert parsed[0] == list(table.columns)
    assert parsed[1][table.columns.get_loc("thread_env")] == "OMP=1 OPENBLAS=1 MKL=1"
    assert parsed[2][table.columns.get_loc("thread_env")] == "OMP=4 OPENBLAS_CORETYPE=Zen"
    assert parsed[2][table.columns.get_loc("n_runs")] == "2"


def with_lock(env, **lock):
    env = copy.deepcopy(env)
    env["lock"] = {"file": "requirements/lock.txt", "sha256": "d387c5cb9e3e" + "0" * 52, "matches": True,
                   "differences": [], "unlocked": [], **lock}
    return env


def test_environment_table_shows_the_lock_and_flags_a_run_that_did_not_use_it():
    differences = ["numpy 2.5.5 (lock: 2.4.6)", "scipy missing (lock: 1.17.1)"]
    drifted = with_lock(ENV, matches=False, differences=differences)
    unlocked = copy.deepcopy(ENV)
    unlocked["lock"] = None
    infos = [
        info("mnist_cost", 1, with_lock(ENV)),
        info("mnist_cost", 2, with_lock(ENV, unlocked=["torch==2.13.0+cpu"])),
        info("mnist_cost", 3, drifted),
        info("mnist_cost", 4, unlocked),
        info("mnist_cost", 5),
    ]
    table = environment_table(infos)
    assert list(table["lock"]) == ["d387c5cb9e3e", "d387c5cb9e3e", "d387c5cb9e3e", "none", "n/a"]
    assert list(table["lock_status"]) == [
        "exact",
        "exact, plus torch==2.13.0+cpu",
        "DIFFERS: numpy 2.5.5 (lock: 2.4.6); scipy missing (lock: 1.17.1)",
        "no lock: installed from pyproject.toml's ranges",
        "not recorded",
    ]
    text = environment_rst(table)
    assert text.rstrip().endswith(
        r"NOT all runs used one locked environment: 2 runs lock d387c5cb9e3e exactly; "
        r"1 run an environment that differs from lock d387c5cb9e3e; 1 run no lock; "
        r"1 run an environment recorded without its lock (see the lock\_status column)."
    )


def test_environment_rst_states_that_all_runs_used_the_same_lock():
    infos = [info("a", seed, with_lock(ENV)) for seed in (1, 2, 3)]
    infos.append(info("b", 1, with_lock(ENV, unlocked=["torch==2.13.0+cpu"])))
    text = environment_rst(environment_table(infos))
    assert text.rstrip().endswith(
        "All 4 runs used the locked environment d387c5cb9e3e exactly "
        "(1 of them with packages installed beyond the lock)."
    )
    other_lock = with_lock(ENV, sha256="0123456789ab" + "0" * 52)
    text = environment_rst(environment_table([info("a", 1, with_lock(ENV)), info("a", 2, other_lock)]))
    assert (
        "NOT all runs used one locked environment: 1 run lock d387c5cb9e3e exactly; 1 run lock 0123456789ab"
    ) in text
    docutils_core = pytest.importorskip("docutils.core")
    from docutils import nodes

    doctree = docutils_core.publish_doctree(text, settings_overrides={"report_level": 5, "halt_level": 5})
    assert not list(doctree.findall(nodes.system_message))
    (paragraph,) = [p for p in doctree.findall(nodes.paragraph) if p.astext().startswith("NOT all")]
    assert "lock_status" in paragraph.astext()


def test_environment_html_is_a_table_of_every_environment(tmp_path):
    table = two_environments()
    text = write_environment_html(tmp_path / "environment.html", table)
    assert (tmp_path / "environment.html").read_text(encoding="utf-8") == text
    assert text.count("<tr>") == 1 + len(table)  # the header and one row per environment
    header = text[text.index("<thead>"):text.index("</thead>")]
    assert [h.split("</th>")[0] for h in header.split("<th>")[1:]] == list(table.columns)
    assert "openblas 0.3.31 Haswell, 1 thread" in text and "mkl 2024.0, 4 threads; openmp, 4 threads" in text
    assert "results/environment.csv" in text and html.escape(lock_verdict(table)) in text


def test_one_environment_is_one_row_whatever_order_its_blas_libraries_loaded_in():
    from nnflow.report.tables import environment_table

    numpy_blas = {"internal_api": "openblas", "version": "0.3.31", "architecture": "Haswell",
                  "num_threads": 1}
    scipy_blas = {**numpy_blas, "version": "0.3.30"}
    infos = [{"spec": {"experiment": e}, "threads": 1,
              "environment": {"nnflow": "1", "python": "3.11", "blas": blas}}
             for e, blas in (("a", [numpy_blas, scipy_blas]), ("b", [scipy_blas, numpy_blas]))]
    table = environment_table(infos)
    assert len(table) == 1 and table["n_runs"].tolist() == [2]


def test_environment_table_shows_which_update_kernels_ran():
    fused, plain = copy.deepcopy(ENV), copy.deepcopy(ENV)
    fused["update_kernels"] = {"path": "numba", "numba": "0.68.1", "threads": 2}
    plain["update_kernels"] = {"path": "numpy", "reason": "numba not installed"}
    table = environment_table([info("a", 1, fused), info("a", 2, plain), info("a", 3)])
    assert list(table["update_kernels"]) == ["numba 0.68.1, 2 threads", "numpy (numba not installed)", "n/a"]


def test_environment_table_says_what_the_run_did_not_what_the_process_could_do():
    # the process would choose numba; run.json's update_calls say what computed the steps
    env = copy.deepcopy(ENV)
    env["update_kernels"] = {"path": "numba", "numba": "0.68.1", "threads": 1}
    runs = [info("a", 1, env), info("a", 2, env), info("a", 3, env)]
    runs[0]["update_calls"] = {"numba": 0, "numpy": 0}      # no call recorded (older network2 runs)
    runs[1]["update_calls"] = {"numba": 0, "numpy": 120}    # short run under auto
    runs[2]["update_calls"] = {"numba": 900, "numpy": 1300}  # started numba (biases: NumPy)
    table = environment_table(runs)
    assert list(table["update_kernels"]) == [
        "none (no update rule called)", "numpy (numba not started: too little update work)",
        "numba 0.68.1, 1 thread"]
