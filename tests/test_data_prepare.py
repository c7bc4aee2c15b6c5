"""Splits, scaling, provenance and determinism of the prepared arrays (synthetic mirror)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import replace

import numpy as np
import pytest

from nnflow.data import sources
from nnflow.data.cache import CachedFileError
from nnflow.data.fetch import fetch_dataset
from nnflow.data.formats import read_cifar_records, read_idx, read_tar_members
from nnflow.data.prepare import SplitSizeError, pixel_stats, prepare_dataset
from nnflow.data.prepared import ARRAYS, load_prepared
from nnflow.data.sources import BUILTIN_DECLARATIONS, CIFAR_TEST_MEMBER, CIFAR_TRAIN_MEMBERS
from nnflow.data.synthetic import gzip_bytes, idx_bytes, write_mirror


@pytest.fixture
def downloads(tmp_path, synthetic_mirror):
    out = {}
    for ds in ("mnist", "cifar10"):
        out[ds] = tmp_path / "dl" / ds
        fetch_dataset(ds, out[ds], mirror=synthetic_mirror, accept_mirror_checksums=True)
    return out


def _raw_mnist(mirror):
    def r(name):
        return read_idx(gzip.decompress((mirror / "mnist" / name).read_bytes()))

    return (r("train-images-idx3-ubyte.gz"), r("train-labels-idx1-ubyte.gz"),
            r("t10k-images-idx3-ubyte.gz"), r("t10k-labels-idx1-ubyte.gz"))


def _raw_cifar(mirror):
    members = read_tar_members(
        mirror / "cifar-10" / "cifar-10-binary.tar.gz",
        dict.fromkeys((*CIFAR_TRAIN_MEMBERS, CIFAR_TEST_MEMBER), 10**7),
    )
    train = [read_cifar_records(members[m]) for m in CIFAR_TRAIN_MEMBERS]
    test = read_cifar_records(members[CIFAR_TEST_MEMBER])
    return np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), *test


def test_mnist_split_as_nielsen(tmp_path, downloads, synthetic_mirror):
    prov = prepare_dataset("mnist", downloads["mnist"], tmp_path / "mnist", validation_size=100)
    d = load_prepared(tmp_path / "mnist")
    xi, yi, xt, yt = _raw_mnist(synthetic_mirror)
    assert d["X_train"].shape == (500, 784) and d["X_train"].dtype == np.float64
    assert d["X_val"].shape == (100, 784) and d["X_test"].shape == (100, 784)
    for k in ("y_train", "y_val", "y_test"):
        assert d[k].dtype == np.uint8 and d[k].ndim == 1
    np.testing.assert_array_equal(d["X_train"], xi[:500].reshape(500, -1) / 255.0)
    np.testing.assert_array_equal(d["X_val"], xi[500:].reshape(100, -1) / 255.0)  # the LAST 100
    np.testing.assert_array_equal(d["y_val"], yi[500:])
    np.testing.assert_array_equal(d["X_test"], xt.reshape(100, -1) / 255.0)
    np.testing.assert_array_equal(d["y_test"], yt)
    assert 0.0 <= d["X_train"].min() and d["X_train"].max() <= 1.0
    assert prov == d["provenance"]
    assert prov["canonical"] is False and "non-canonical" in prov["note"]
    assert prov["splits"] == {"train": 500, "val": 100, "test": 100}
    assert prov["dtype"] == "float64"
    assert {f["verified_by"] for f in prov["files"]} == {"mirror SHA256SUMS"}
    assert [f["name"] for f in prov["files"]][0] == "train-images-idx3-ubyte.gz"
    assert prov["train_pixel_mean"] == pytest.approx(d["X_train"].mean(), rel=1e-12)
    assert prov["train_pixel_std"] == pytest.approx(d["X_train"].std(), rel=1e-12)
    assert "timestamp" not in str(prov)


def test_mnist_float32(tmp_path, downloads):
    prepare_dataset("mnist", downloads["mnist"], tmp_path / "m", validation_size=100,
                    dtype="float32")
    d = load_prepared(tmp_path / "m")
    assert all(d[k].dtype == np.float32 for k in ("X_train", "X_val", "X_test"))


def test_cifar_split_as_cs231n(tmp_path, downloads, synthetic_mirror):
    prov = prepare_dataset("cifar10", downloads["cifar10"], tmp_path / "c",
                           num_training=400, num_validation=50, num_test=80)
    d = load_prepared(tmp_path / "c")
    x, y, xt, yt = _raw_cifar(synthetic_mirror)
    mean = np.load(tmp_path / "c" / "mean_image.npy")
    assert mean.shape == (3072,) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, x[:400].mean(axis=0), rtol=1e-6)
    assert d["X_train"].shape == (400, 3072) and d["X_train"].dtype == np.float32
    np.testing.assert_allclose(d["X_train"], x[:400] - mean, atol=1e-4)
    np.testing.assert_allclose(d["X_val"], x[400:450] - mean, atol=1e-4)
    np.testing.assert_allclose(d["X_test"], xt[:80] - mean, atol=1e-4)
    np.testing.assert_array_equal(d["y_train"], y[:400])
    np.testing.assert_array_equal(d["y_val"], y[400:450])
    np.testing.assert_array_equal(d["y_test"], yt[:80])
    assert prov["note"] == BUILTIN_DECLARATIONS["cifar10"]["mirror_note"] and prov["canonical"] is False
    assert prov["classes"][0] == "airplane" and len(prov["classes"]) == 10
    assert prov["splits"] == {"train": 400, "val": 50, "test": 80}
    assert "channel-first" in prov["layout"]


def test_cifar_without_mean_subtraction_keeps_0_255(tmp_path, downloads, synthetic_mirror):
    prepare_dataset("cifar10", downloads["cifar10"], tmp_path / "c", num_training=100,
                    num_validation=10, num_test=10, subtract_mean=False, dtype="float64")
    d = load_prepared(tmp_path / "c", mmap=False)
    x = _raw_cifar(synthetic_mirror)[0]
    assert d["X_train"].dtype == np.float64
    np.testing.assert_array_equal(d["X_train"], x[:100])
    assert d["X_train"].max() > 1.5  # no /255


def test_outputs_are_deterministic(tmp_path, downloads):
    for out in ("a", "b"):
        prepare_dataset("cifar10", downloads["cifar10"], tmp_path / out, num_training=100,
                        num_validation=10, num_test=10)
    for name in [*ARRAYS, "mean_image", "provenance"]:
        suffix = ".json" if name == "provenance" else ".npy"
        a = (tmp_path / "a" / f"{name}{suffix}").read_bytes()
        assert a == (tmp_path / "b" / f"{name}{suffix}").read_bytes(), name


@pytest.mark.parametrize(
    ("dataset", "settings", "key"),
    [
        ("mnist", {"validation_size": 600}, "data.datasets.mnist.validation_size = 600"),
        ("cifar10", {"num_training": 590, "num_validation": 20}, "data.datasets.cifar10.num_training"),
        ("cifar10", {"num_training": 10, "num_validation": 5, "num_test": 101}, "num_test = 101"),
    ],
)
def test_split_sizes_too_large(tmp_path, downloads, dataset, settings, key):
    with pytest.raises(SplitSizeError, match=key):
        prepare_dataset(dataset, downloads[dataset], tmp_path / "out", **settings)
    assert not (tmp_path / "out").exists()


def test_unknown_setting_and_dataset(tmp_path, downloads):
    with pytest.raises(ValueError, match="data.datasets.mnist: unknown setting.*num_test"):
        prepare_dataset("mnist", downloads["mnist"], tmp_path / "o", num_test=5)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; allowed: cifar10, mnist"):
        prepare_dataset("imagenet", downloads["mnist"], tmp_path / "o")


def test_pixel_stats_exact():
    x = np.array([[0, 255], [255, 255]], np.uint8)
    mean, std = pixel_stats(x, 255)
    assert mean == 0.75 and std == pytest.approx(np.sqrt(0.1875), rel=1e-15)


def test_synthetic_data_is_learnable(tmp_path, downloads):
    """A nearest-class-mean classifier beats chance by far on the synthetic data."""
    prepare_dataset("mnist", downloads["mnist"], tmp_path / "m", validation_size=100)
    d = load_prepared(tmp_path / "m")
    means = np.stack([d["X_train"][d["y_train"] == c].mean(axis=0) for c in range(10)])
    dist = ((d["X_test"][:, None, :] - means[None]) ** 2).sum(axis=2)
    assert (dist.argmin(axis=1) == d["y_test"]).mean() > 0.5


def test_a_declared_feature_count_is_checked_against_the_prepared_data(tmp_path, downloads):
    from nnflow.data.sources import BUILTIN_DECLARATIONS, DatasetSource

    wrong = DatasetSource.from_declaration("mnist", {**BUILTIN_DECLARATIONS["mnist"], "features": 785})
    with pytest.raises(ValueError, match=r"data\.datasets\.mnist: the prepared data have features=784, "
                                         r"the declaration says 785"):
        prepare_dataset(wrong, downloads["mnist"], tmp_path / "m", validation_size=100)


def test_what_is_known_of_a_shape_before_and_after_preparing(tmp_path, downloads):
    from nnflow.data.sources import DATASETS
    from nnflow.workflow.config import dataset_shapes

    datasets = {"mnist": DATASETS["mnist"]}
    assert dataset_shapes(datasets, tmp_path) == {"mnist": {"classes": 10, "features": 784}}
    prepare_dataset("mnist", downloads["mnist"], tmp_path / "mnist", validation_size=100)
    # prepared with other settings (validation_size 100, the declaration says 10,000): not used
    assert dataset_shapes(datasets, tmp_path) == {"mnist": {"classes": 10, "features": 784}}
    small = {"mnist": replace(DATASETS["mnist"], settings={**DATASETS["mnist"].settings,
                                                           "validation_size": 100})}
    assert dataset_shapes(small, tmp_path) == {"mnist": {"classes": 10, "features": 784, "train": 500}}


# ------------------------------------------------------------------ the download cache is rechecked


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def canonical_download(tmp_path, canonical_mnist):
    """MNIST-format files fetched (from a mirror) as canonical: verified by their published md5."""
    mirror = tmp_path / "canonical-mirror"
    (mirror / "mnist").mkdir(parents=True)
    for name, data in canonical_mnist.items():
        (mirror / "mnist" / name).write_bytes(data)
    dl = tmp_path / "dl" / "mnist"
    assert fetch_dataset("mnist", dl, mirror=mirror)["canonical"] is True
    return dl


@pytest.mark.parametrize("replacement", ["shuffled labels", "same labels recompressed"])
def test_a_replaced_cached_file_is_refused_naming_it_and_both_checksums(
    tmp_path, canonical_download, replacement
):
    """A valid IDX file put in the cache after the fetch is not parsed as if verified."""
    dl = canonical_download
    prov = prepare_dataset("mnist", dl, tmp_path / "before", validation_size=10)
    assert prov["canonical"] is True
    assert [f["sha256"] for f in prov["files"]] == [_sha256(dl / f["name"]) for f in prov["files"]]

    target = dl / "t10k-labels-idx1-ubyte.gz"
    labels = read_idx(target)
    published = sources.get_source("mnist").file(target.name).md5
    recorded = _sha256(target)
    if replacement == "shuffled labels":
        content = idx_bytes(np.roll(labels, 1))
        target.write_bytes(gzip_bytes(content))
        expected = (f"expected md5 of the decompressed content {published} (published), "
                    f"got {hashlib.md5(content).hexdigest()}")
    else:
        target.write_bytes(gzip.compress(idx_bytes(labels), compresslevel=1, mtime=1))
        expected = f"expected sha256 {recorded} (recorded in sources.json when the fetch verified it "
        expected += f"by its published md5), got {_sha256(target)}"
    with pytest.raises(CachedFileError) as err:
        prepare_dataset("mnist", dl, tmp_path / "after", validation_size=10)
    assert f"{target}: not the file the fetch verified: {expected}" in str(err.value)
    assert "delete it to fetch it again" in str(err.value)
    assert not (tmp_path / "after").exists()


def test_a_replaced_mirror_copy_is_refused_by_its_recorded_sha256(tmp_path, downloads):
    """CIFAR-10 accepted by the mirror's SHA256SUMS: another valid archive in its place is refused."""
    archive = downloads["cifar10"] / "cifar-10-binary.tar.gz"
    recorded = _sha256(archive)
    other = write_mirror(tmp_path / "other", np.random.default_rng(99), 600, 100, datasets=("cifar10",))
    archive.write_bytes((other / "cifar-10" / archive.name).read_bytes())
    with pytest.raises(CachedFileError) as err:
        prepare_dataset("cifar10", downloads["cifar10"], tmp_path / "c", num_training=100,
                        num_validation=10, num_test=10)
    assert (f"{archive}: not the file the fetch verified: expected sha256 {recorded} (recorded in "
            f"sources.json when the fetch verified it by the mirror's SHA256SUMS), "
            f"got {_sha256(archive)}") in str(err.value)
    assert not (tmp_path / "c").exists()


def test_a_damaged_cached_archive_is_reported_as_a_checksum_mismatch(tmp_path, downloads):
    """Cut in half after the fetch: the error is the mismatch (the cause), not only a parse error."""
    archive = downloads["cifar10"] / "cifar-10-binary.tar.gz"
    recorded = _sha256(archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(CachedFileError, match=f"expected sha256 {recorded} .*got {_sha256(archive)}") as err:
        prepare_dataset("cifar10", downloads["cifar10"], tmp_path / "c", num_training=100,
                        num_validation=10, num_test=10)
    assert "truncated" in str(err.value.__cause__)


@pytest.mark.parametrize("rows", [1, 5, 12])
def test_row_wise_splits_are_written_as_np_save_writes_the_whole(tmp_path, monkeypatch, rows):
    """The prepared splits are converted and written a block of rows at a time (the 602 MB
    CIFAR-10 training split never in memory whole): the same bytes as np.save of the whole
    array, also when the rows do not fill the last block."""
    from nnflow.data import prepare
    from nnflow.files import save_npy

    monkeypatch.setattr(prepare, "WRITE_ROWS", 4)
    raw = np.random.default_rng(0).integers(0, 256, (rows, 2, 3), dtype=np.uint8)
    mean = np.linspace(0, 200, 6, dtype=np.float32)
    split = prepare.RowWise(raw, lambda r: r.reshape(r.shape[0], -1).astype(np.float32) - mean)
    assert split.shape == (rows, 6) and split.dtype == np.float32
    save_npy(tmp_path / "rows.npy", split)
    np.save(tmp_path / "whole.npy", raw.reshape(rows, -1).astype(np.float32) - mean, allow_pickle=False)
    assert (tmp_path / "rows.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    np.testing.assert_array_equal(np.asarray(split), np.load(tmp_path / "rows.npy"), strict=True)
