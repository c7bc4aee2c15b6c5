"""Edge lists, generators and closed classes (nnflow.pagerank.graphs)."""

import numpy as np
import pytest

from nnflow.pagerank import graphs

MODEL = [[1, 2], [1, 3], [2, 4], [3, 1], [3, 2], [3, 5], [4, 5], [5, 6], [6, 4]]


def test_edge_list_one_based_labels():
    g = graphs.edge_list(MODEL)
    assert g.n == 6 and g.m == 9 and g.index_base == 1
    assert g.src.dtype == np.int32 and g.src[0] == 0 and g.dst[0] == 1
    assert g.labels.tolist() == [1, 2, 3, 4, 5, 6]
    assert g.index_of(6) == 5
    with pytest.raises(ValueError, match="page 7 is not in this graph"):
        g.index_of(7)


def test_edge_list_n_pages_and_range_errors():
    g = graphs.edge_list([[1, 2]], n_pages=4)
    assert g.n == 4
    with pytest.raises(ValueError, match=r"link #2 \[0, 1\]: page id 0 < index_base 1"):
        graphs.edge_list([[1, 2], [0, 1]])
    with pytest.raises(ValueError, match="out of range: n_pages = 3"):
        graphs.edge_list([[1, 4]], n_pages=3)
    with pytest.raises(ValueError, match="pair of integer page ids"):
        graphs.edge_list([[1, 2, 3]])
    with pytest.raises(ValueError, match="pair of integer page ids"):
        graphs.edge_list([[1.5, 2]])


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("links.csv", "# model\nsource,target\n1,2\n1,3 # trailing comment\n\n2,3\n3,1\n"),
        ("links.tsv", "from\tto\n1\t2\n1\t3\n2\t3\n# c\n3\t1\n"),
        ("links.txt", "1 2\n1   3\n2 3\n3 1\n"),
    ],
)
def test_read_edge_list_formats(tmp_path, name, text):
    g = graphs.read_edge_list(write(tmp_path, name, text))
    assert g.n == 3
    assert list(zip(g.src.tolist(), g.dst.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2), (2, 0)]


def test_read_edge_list_zero_based_and_n_pages(tmp_path):
    g = graphs.read_edge_list(write(tmp_path, "a.csv", "0,1\n1,0\n"), index_base=0, n_pages=5)
    assert g.n == 5 and g.index_base == 0


def test_sparse_page_ids_are_numbered_densely_and_keep_their_ids(tmp_path):
    big = 2 * 10**9
    g = graphs.read_edge_list(write(tmp_path, "a.csv", f"1,7\n7,{big}\n{big},1\n"))
    assert g.n == 3 and g.labels.tolist() == [1, 7, big] and g.index_of(big) == 2
    assert list(zip(g.src.tolist(), g.dst.tolist(), strict=True)) == [(0, 1), (1, 2), (2, 0)]
    with pytest.raises(ValueError, match=r"page 2 is not in this graph \(its 3 pages are the ids"):
        g.index_of(2)
    # ids beyond the int32 range are names like any other; gaps in a short span, inline
    inline = graphs.edge_list([[10**12, 5], [5, 9], [9, 10**12]])
    assert inline.n == 3 and inline.labels.tolist() == [5, 9, 10**12]
    gappy = graphs.edge_list([[2, 4], [4, 6], [6, 2], [4, 2]])
    assert gappy.labels.tolist() == [2, 4, 6] and gappy.src.tolist() == [0, 1, 2, 1]
    # dense ids and a declared page range keep index = id - index_base
    assert graphs.edge_list(MODEL).ids is None
    declared = graphs.edge_list([[1, 3]], n_pages=4)  # pages 2 and 4 declared, without links
    assert declared.ids is None and declared.n == 4 and declared.dst.tolist() == [2]


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("1,2\n2,x\n", {}, r"a\.csv:2: page ids must be integers"),
        ("1,2\n# c\n2,3,4\n", {}, r"a\.csv:3: expected 2 fields"),
        ("1,2\n2,0\n", {}, r"a\.csv:2: page id 0 < index_base 1"),
        ("1,2\n2,9\n", {"n_pages": 5}, r"a\.csv:2: page id 9 out of range"),
        ("# nothing\n\n", {}, "no links found"),
        ("1,2\n3\n", {}, r"a\.csv:2: expected 2 fields"),
    ],
)
def test_read_edge_list_errors(tmp_path, text, kwargs, match):
    with pytest.raises(graphs.EdgeListError, match=match):
        graphs.read_edge_list(write(tmp_path, "a.csv", text), **kwargs)


def test_read_edge_list_missing_file(tmp_path):
    with pytest.raises(graphs.EdgeListError, match="not found"):
        graphs.read_edge_list(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="delimiter"):
        graphs.read_edge_list(write(tmp_path, "a.csv", "1,2\n"), delimiter="semicolon")


@pytest.mark.parametrize("kind", ["erdos_renyi", "scale_free"])
def test_generators_deterministic_and_counts(kind):
    kw = dict(mean_out_degree=8, dangling_fraction=0.1, seed=7)
    a = graphs.generate(kind, 20000, **kw)
    b = graphs.generate(kind, 20000, **kw)
    c = graphs.generate(kind, 20000, **{**kw, "seed": 8})
    assert np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)
    assert not np.array_equal(a.dst, c.dst)
    assert a.src.dtype == a.dst.dtype == np.int32
    assert a.n == 20000 and a.dst.min() >= 0 and a.dst.max() < a.n
    # mean out-degree d over all pages (Poisson: sd of the total ~ sqrt(d n))
    assert abs(a.m - 8 * 20000) < 5 * np.sqrt(8 * 20000)
    deg = np.bincount(a.src, minlength=a.n)
    assert np.count_nonzero(deg == 0) == 2000  # exactly round(f n) dangling pages
    assert not np.any(a.src == a.dst)  # no self-links
    assert np.all(np.diff(a.src) >= 0)  # sorted by source


def test_scale_free_has_heavy_tailed_in_degree():
    er = graphs.generate("erdos_renyi", 50000, mean_out_degree=10, dangling_fraction=0, seed=1)
    sf = graphs.generate("scale_free", 50000, mean_out_degree=10, dangling_fraction=0, seed=1)
    assert np.bincount(sf.dst).max() > 20 * np.bincount(er.dst).max()


def test_generator_errors():
    with pytest.raises(ValueError, match="unknown generator"):
        graphs.generate("small_world", 10, mean_out_degree=2, dangling_fraction=0, seed=1)
    with pytest.raises(ValueError, match="dangling_fraction"):
        graphs.generate("erdos_renyi", 10, mean_out_degree=2, dangling_fraction=1.0, seed=1)
    with pytest.raises(ValueError, match="exponent"):
        graphs.generate("scale_free", 10, mean_out_degree=2, dangling_fraction=0, seed=1, exponent=2)
    with pytest.raises(ValueError, match="n >= 2"):
        graphs.generate("erdos_renyi", 1, mean_out_degree=2, dangling_fraction=0, seed=1)


def test_closed_classes_of_model_internet():
    s = graphs.class_structure(graphs.edge_list(MODEL))
    assert [(c.pages, c.period) for c in s["closed"]] == [((3, 4, 5), 3)]
    assert s["transient"].tolist() == [0, 1, 2]
    assert s["dangling"].size == 0


def test_closed_classes_periods_dangling_and_self_loops():
    # {1,2} period 2; {3,4,5,6} with cycles of length 4 and 2 -> period 2;
    # {7} self-loop -> period 1; 8 dangling; 9 transient -> 8
    edges = [[1, 2], [2, 1], [3, 4], [4, 5], [5, 6], [6, 3], [4, 3], [7, 7], [9, 8], [9, 1]]
    s = graphs.class_structure(graphs.edge_list(edges))
    assert [(c.pages, c.period) for c in s["closed"]] == [
        ((0, 1), 2),
        ((2, 3, 4, 5), 2),
        ((6,), 1),
    ]
    assert s["dangling"].tolist() == [7]
    assert s["transient"].tolist() == [8]


def test_period_gcd_of_cycle_lengths():
    # cycles of length 3 and 5 sharing page 1 -> aperiodic
    edges = [[1, 2], [2, 3], [3, 1], [1, 4], [4, 5], [5, 6], [6, 7], [7, 1]]
    (c,) = graphs.closed_classes(graphs.edge_list(edges))
    assert c.period == 1
    # cycles of length 4 and 6 -> period 2
    edges = [[1, 2], [2, 3], [3, 4], [4, 1], [1, 5], [5, 6], [6, 7], [7, 8], [8, 9], [9, 1]]
    (c,) = graphs.closed_classes(graphs.edge_list(edges))
    assert c.period == 2
