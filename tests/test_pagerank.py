"""Hyperlink matrix, spectrum, plain iteration and PageRank (nnflow.pagerank.ranking)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from nnflow.pagerank import graphs
from nnflow.pagerank import ranking as P
from nnflow.workflow.config import ConfigError, fill_defaults, load_schema, validate_config

MODEL = [[1, 2], [1, 3], [2, 4], [3, 1], [3, 2], [3, 5], [4, 5], [5, 6], [6, 4]]


@pytest.fixture
def nx():
    return pytest.importorskip("networkx")


@pytest.fixture
def model():
    return graphs.edge_list(MODEL)


def test_hyperlink_matrix_of_model_internet(model):
    h = P.link_matrix(model).dense()
    expected = np.zeros((6, 6))
    expected[0, [1, 2]] = 1 / 2
    expected[1, 3] = 1
    expected[2, [0, 1, 4]] = 1 / 3
    expected[3, 4] = expected[4, 5] = expected[5, 3] = 1
    np.testing.assert_array_equal(h, expected)
    assert np.allclose(h.sum(axis=1), 1)


def test_hyperlink_matrix_duplicates_count_once_and_dangling_rows_zero():
    # 1 -> 2 given twice, 3 dangling, 2 -> 2 self-link counts as a link
    g = graphs.edge_list([[1, 2], [1, 2], [1, 3], [2, 2], [2, 1]], n_pages=4)
    link = P.link_matrix(g)
    h = link.dense()
    np.testing.assert_array_equal(h[0], [0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(h[1], [0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(h[2], 0)
    np.testing.assert_array_equal(h[3], 0)
    assert link.n_duplicates == 1 and link.n_links == 4 and link.n_dangling == 2
    np.testing.assert_array_equal(link.dangling, [0, 0, 1, 1])
    assert isinstance(link.HT, sp.csr_array)
    np.testing.assert_array_equal(link.H().toarray(), h)


def test_unsorted_and_sorted_construction_agree():
    g = graphs.generate("erdos_renyi", 3000, mean_out_degree=5, dangling_fraction=0.2, seed=3)
    rng = np.random.default_rng(0)
    perm = rng.permutation(g.m)
    shuffled = graphs.EdgeList(g.src[perm], g.dst[perm], g.n, 0)
    a, b = P.link_matrix(g), P.link_matrix(shuffled)
    assert (a.HT != b.HT).nnz == 0
    assert a.HT.indices.dtype == np.int32


def test_eigenvalues_three_on_unit_circle(model):
    lam = P.eigenvalues(P.link_matrix(model).dense())
    assert P.count_unit_modulus(lam, 1e-9) == 3
    unit = lam[np.abs(np.abs(lam) - 1) <= 1e-9]
    np.testing.assert_allclose(np.sort_complex(unit**3), [1, 1, 1], atol=1e-12)  # cube roots of 1
    with pytest.raises(ValueError):
        P.count_unit_modulus(lam, 0)


def test_unit_eigenvalues_equal_sum_of_periods():
    edges = [[1, 2], [2, 1], [3, 4], [4, 5], [5, 6], [6, 3], [4, 3], [7, 7], [9, 8], [9, 1]]
    g = graphs.edge_list(edges)
    lam = P.eigenvalues(P.link_matrix(g).dense())
    periods = [c.period for c in graphs.closed_classes(g)]
    assert P.count_unit_modulus(lam, 1e-9) == sum(periods) == 5


def test_plain_iteration_from_e6_has_period_3(model):
    link = P.link_matrix(model)
    hist = P.plain_iteration(link, 5, 30)
    assert P.detect_period(hist) == 3
    # e_6 -> e_4 -> e_5 -> e_6 -> ...: every step moves all mass, never converges
    assert np.argmax(hist[1]) == 3 and np.argmax(hist[2]) == 4 and np.argmax(hist[3]) == 5
    assert np.all(np.abs(np.diff(hist, axis=0)).sum(axis=1) == 2)
    np.testing.assert_array_equal(hist[::3], np.tile(hist[0], (11, 1)))


def test_detect_period_converged_and_none():
    conv = np.tile([0.5, 0.5], (10, 1))
    assert P.detect_period(conv) == 1
    rng = np.random.default_rng(1)
    assert P.detect_period(rng.random((10, 3))) is None


def test_google_matrix_is_stochastic_and_lambda2_bounded(model):
    h = P.link_matrix(model).dense()
    for alpha in (0.5, 0.85, 0.99):
        g = P.google_matrix(h, alpha)
        assert np.all(g > 0)
        np.testing.assert_allclose(g.sum(axis=1), 1)
        lam2 = P.second_eigenvalue_modulus(g)
        # the period-3 class gives S eigenvalues of modulus 1, so |lambda_2(G)| = alpha
        assert lam2 <= alpha + 1e-12 and lam2 == pytest.approx(alpha, abs=1e-9)


def test_pagerank_converges_with_residual_bound(model):
    res = P.pagerank(P.link_matrix(model), alpha=0.85, tol=1e-13)
    assert res.converged and res.x.sum() == pytest.approx(1)
    r = res.residuals
    assert r[-1] < 1e-13
    assert np.all(r <= 0.85 ** np.arange(r.size) * r[0] * (1 + 1e-9) + 1e-15)
    # PageRank is the fixed point of G^T
    g = P.google_matrix(P.link_matrix(model).dense(), 0.85)
    np.testing.assert_allclose(g.T @ res.x, res.x, atol=1e-12)


def test_pagerank_max_iter_raises(model):
    with pytest.raises(P.ConvergenceError, match="did not converge"):
        P.pagerank(P.link_matrix(model), tol=1e-13, max_iter=5)
    res = P.pagerank(P.link_matrix(model), tol=1e-13, max_iter=5, strict=False)
    assert not res.converged and res.iterations == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 1.0}, r"alpha .* \(0, 1\)"),
        ({"alpha": 0.0}, r"alpha .* \(0, 1\)"),
        ({"alpha": -0.1}, r"alpha .* \(0, 1\)"),
        ({"tol": 0.0}, "tol must be > 0"),
        ({"max_iter": 0}, "max_iter"),
        ({"personalization": np.zeros(6)}, "positive entry"),
        ({"personalization": -np.ones(6)}, "non-negative"),
        ({"personalization": np.ones(5)}, "length n = 6"),
    ],
)
def test_pagerank_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.pagerank(P.link_matrix(model), **kwargs)


def test_agrees_with_networkx_on_model_internet(model, nx):
    res = P.pagerank(P.link_matrix(model), alpha=0.85, tol=1e-14)
    ref = P.networkx_pagerank(model, 0.85)
    assert np.abs(res.x - ref).max() < 1e-10


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", ["erdos_renyi", "scale_free"])
def test_agrees_with_networkx_on_random_graphs_with_dangling_nodes(kind, seed, nx):
    g = graphs.generate(kind, 300, mean_out_degree=3, dangling_fraction=0.2, seed=seed)
    link = P.link_matrix(g)
    assert link.n_dangling == 60
    res = P.pagerank(link, alpha=0.85, tol=1e-14)
    ref = P.networkx_pagerank(g, 0.85)
    assert np.abs(res.x - ref).max() < 1e-10


@pytest.mark.parametrize("alpha", [0.5, 0.85, 0.95])
def test_personalization_agrees_with_networkx(alpha, nx):
    g = graphs.generate("erdos_renyi", 200, mean_out_degree=3, dangling_fraction=0.15, seed=5)
    rng = np.random.default_rng(11)
    v = rng.random(g.n) * (rng.random(g.n) < 0.3)
    res = P.pagerank(P.link_matrix(g), alpha=alpha, personalization=v, tol=1e-14)
    ref = P.networkx_pagerank(g, alpha, v / v.sum())
    assert np.abs(res.x - ref).max() < 1e-10
    # dense Google matrix with the same semantics (dangling rows = v)
    gm = P.google_matrix(P.link_matrix(g).dense(), alpha, v)
    np.testing.assert_allclose(gm.T @ res.x, res.x, atol=1e-12)


def test_separate_dangling_distribution_matches_networkx(nx):
    g = graphs.edge_list([[1, 2], [2, 3], [3, 1], [1, 4]], n_pages=5)
    w = np.array([0, 0, 1.0, 0, 0])
    res = P.pagerank(P.link_matrix(g), alpha=0.85, dangling=w, tol=1e-14)
    gn = nx.DiGraph()
    gn.add_nodes_from(range(5))
    gn.add_edges_from(zip(g.src.tolist(), g.dst.tolist(), strict=True))
    ref = nx.pagerank(gn, alpha=0.85, dangling={2: 1.0}, tol=1e-15, max_iter=10000)
    assert np.abs(res.x - np.array([ref[i] for i in range(5)])).max() < 1e-10


def test_matvec_into_matches_operator():
    g = graphs.generate("scale_free", 1000, mean_out_degree=4, dangling_fraction=0.1, seed=2)
    ht = P.link_matrix(g).HT
    x = np.random.default_rng(0).random(g.n)
    out = np.full(g.n, 7.0)
    np.testing.assert_allclose(P.matvec_into(ht, x, out), ht @ x, rtol=1e-14)


def test_analyse_graph_model_internet(model):
    a = P.analyse_graph(model, alpha=0.85, steps=30, start_page=6)
    assert a["n_unit"] == 3 and a["period"] == 3 and a["start"] == 5
    assert a["bound_holds"] and a["result"].converged
    assert a["lambda2_G"] == pytest.approx(0.85)
    assert [c.period for c in a["structure"]["closed"]] == [3]
    assert a["observed_rate"] <= 0.85 + 1e-6
    with pytest.raises(ValueError, match="dense_max_pages"):
        P.analyse_graph(model, dense_max_pages=5)
    with pytest.raises(ValueError, match="page 9 is not in this graph"):
        P.analyse_graph(model, start_page=9)


def test_personalization_vector_from_labels(model):
    v = P.personalization_vector(model, {1: 1.0, "6": 3.0})
    np.testing.assert_allclose(v, [0.25, 0, 0, 0, 0, 0.75])
    assert P.personalization_vector(model, None) is None


def test_run_scale_case_reports():
    row, res = P.run_scale_case(
        lambda: graphs.generate("erdos_renyi", 5000, mean_out_degree=5, dangling_fraction=0.05, seed=1),
        tol=1e-10,
    )
    assert res.converged and row["n"] == 5000 and row["dangling"] == 250
    assert row["links"] + row["duplicates"] == row["links_given"]
    assert row["peak_traced_mb"] > 0 and row["per_iteration_s"] > 0


SCALE_CASE_PEAK = """
import json, resource, sys
# the address space is capped so that the bug this guards against (a vector per page id
# up to the largest id: 2e9 ids allocate gigabytes) fails here instead of filling the machine
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
from nnflow.pagerank.analysis import scale_case_job
row = scale_case_job("sparse", json.loads(sys.argv[1]), sys.argv[2], alpha=0.85, tol=1e-10, max_iter=100)
print(json.dumps(row))
"""


def test_a_sparse_id_file_is_ranked_in_memory_of_its_links(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from nnflow.pagerank.cases import case_mem_mb

    path = tmp_path / "sparse.csv"
    path.write_text("1,7\n7,2000000000\n2000000000,1\n")
    spec = {"kind": "file", "path": str(path), "index_base": 1, "n_pages": None, "delimiter": "auto"}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCALE_CASE_PEAK, json.dumps(spec), str(tmp_path / "c.json")],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads(done.stdout)
    assert row["n"] == 3 and row["links"] == 3
    assert row["peak_traced_mb"] < 1.0  # numpy and scipy buffers of the whole job
    assert row["maxrss_mb"] <= case_mem_mb(spec)  # the job's peak RSS, interpreter included


def test_analysis_names_the_pages_of_a_sparse_graph_by_their_ids(tmp_path):
    import csv
    import json
    from types import SimpleNamespace

    from nnflow.pagerank.analysis import analyse_graph_job
    from nnflow.pagerank.cases import GRAPH_ANALYSIS_FILES

    outputs = SimpleNamespace(**{key: str(tmp_path / name) for key, name in GRAPH_ANALYSIS_FILES.items()})
    spec = {"edges": [[10, 20], [20, 30], [30, 10], [30, 10**6]], "personalization": {"20": 1.0},
            "start_page": 30}
    summary = analyse_graph_job("sparse", spec, outputs, alpha=0.85, unit_tolerance=1e-9, steps=10,
                                tol=1e-12, max_iter=1000, dense_max_pages=2000)
    assert summary["n"] == 4 and summary["dangling"] == [10**6] and summary["start_page"] == 30
    assert list(summary["pagerank"]) == ["10", "20", "30", "1000000"]
    with open(outputs.pagerank, encoding="utf-8") as fh:
        assert [row["page"] for row in csv.DictReader(fh)] == ["10", "20", "30", "1000000"]
    assert "S1000000" in (tmp_path / GRAPH_ANALYSIS_FILES["table"]).read_text()
    assert json.loads((tmp_path / GRAPH_ANALYSIS_FILES["summary"]).read_text())["transient"] == [10, 20, 30]


# --------------------------------------------------------------------------- config and report pieces

ROOT = Path(__file__).resolve().parents[1]


def _pagerank_config(**changes):
    import yaml

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["pagerank"].update(changes)
    return cfg


def _validate(cfg):
    schema = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    validate_config(cfg, schema)
    fill_defaults(cfg, schema)


def test_config_pagerank_section_is_valid_and_describes_the_model_internet():
    cfg = _pagerank_config()
    _validate(cfg)
    g = cfg["pagerank"]["graphs"]["model_internet"]
    assert sorted(map(tuple, g["edges"])) == sorted(map(tuple, MODEL))
    assert g["start_page"] == 6 and cfg["pagerank"]["alpha"] == 0.85


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": 0}, "alpha"),
        ({"unit_tolerance": 0}, "unit_tolerance"),
        ({"iteration_steps": 1}, "iteration_steps"),
        ({"typo_key": 1}, "typo_key"),
        ({"graphs": {"g": {"edges": [[1, 2]], "file": "x.csv"}}}, "graphs"),
        ({"graphs": {"g": {"edges": [[1, 2, 3]]}}}, "graphs"),
        ({"scale": {"dangling_fraction": 1.0}}, "dangling_fraction"),
        ({"scale": {"generators": ["small_world"]}}, "generators"),
    ],
)
def test_config_bad_pagerank_values_are_rejected(changes, match):
    with pytest.raises(ConfigError, match=match):
        _validate(_pagerank_config(**changes))


def test_matrix_rst_table_uses_fractions():
    from nnflow.pagerank.analysis import fraction, matrix_rst_table

    assert fraction(1 / 3) == "1/3" and fraction(1.0) == "1" and fraction(0.0) == "0"
    assert fraction(np.pi) == "3.14159"
    table = matrix_rst_table(np.array([[0, 0.5], [1 / 3, 1]]), [1, 2])
    assert "1/2" in table and "1/3" in table and table.count("\n+=") == 1


def test_figures_written_as_png_and_pdf(tmp_path, model):
    from nnflow.pagerank import figures as plots

    a = P.analyse_graph(model)
    plots.plot_eigenvalues(a["eigenvalues"], 1e-9, a["n_unit"], out=tmp_path / "eig")
    plots.plot_iteration(a["history"], model.labels, 6, a["period"], out=tmp_path / "it.png")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{s}.{e}" for s in ("eig", "it") for e in ("png", "pdf"))
