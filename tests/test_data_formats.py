"""Parsers of the raw formats: IDX (+gzip), CIFAR-10 records, tar members."""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pytest

from nnflow.data.formats import (
    DataFormatError,
    gunzip,
    parse_idx,
    read_cifar_records,
    read_idx,
    read_tar_members,
)
from nnflow.data.sources import CIFAR_BATCH_BYTES, get_source
from nnflow.data.synthetic import cifar_tar_bytes, idx_bytes


def test_idx_roundtrip_bytes_and_gzip_file(tmp_path, rng):
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    raw = idx_bytes(images)
    assert raw[:4] == b"\x00\x00\x08\x03"
    np.testing.assert_array_equal(read_idx(raw), images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (5,)
    np.testing.assert_array_equal(out, labels)


def test_idx_wrong_magic():
    data = (0x00000802).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"abc"
    with pytest.raises(DataFormatError, match=r"f\.idx: wrong IDX magic number 0x00000802"):
        parse_idx(data, "f.idx")


def test_idx_wrong_dimensions_and_short_header():
    zero = (0x00000803).to_bytes(4, "big") + b"\x00\x00\x00\x02" + b"\x00" * 8
    with pytest.raises(DataFormatError, match=r"img: wrong dimensions \(2, 0, 0\)"):
        parse_idx(zero, "img")
    with pytest.raises(DataFormatError, match="header of 16 bytes expected"):
        parse_idx((0x00000803).to_bytes(4, "big") + b"\x00\x00\x00\x01", "img")


def test_idx_short_data_and_trailing_garbage():
    good = idx_bytes(np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(DataFormatError, match=r"x: header claims dimensions \(2, 3, 4\).*only 23"):
        parse_idx(good[:-1], "x")
    with pytest.raises(DataFormatError, match="x: 2 bytes of trailing garbage"):
        parse_idx(good + b"\x00\x00", "x")


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))[:-40])
    with pytest.raises(DataFormatError, match=f"{path}: truncated gzip file"):
        read_idx(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file is empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "got an HTML page instead of the data"),
        (b"PK\x03\x04junk", "not a gzip file"),
    ],
)
def test_gunzip_garbage(data, message):
    with pytest.raises(DataFormatError, match=f"name.gz: {message}"):
        gunzip(data, "name.gz")


def test_read_idx_html_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"  <html><head><title>Moved</title></head></html>")
    with pytest.raises(DataFormatError, match="HTML page"):
        read_idx(path)


def test_cifar_records_channel_order():
    rec = np.zeros((2, 3073), np.uint8)
    rec[:, 0] = [3, 9]
    rec[0, 1 : 1 + 1024] = 10  # red plane
    rec[0, 1 + 1024 : 1 + 2048] = 20  # green
    rec[0, 1 + 2048 :] = 30  # blue
    rec[1, 1 + 33] = 200  # red, row 1, column 1
    x, y = read_cifar_records(rec.tobytes())
    assert x.shape == (2, 3072) and x.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_array_equal(y, [3, 9])
    nchw = x.reshape(2, 3, 32, 32)
    assert (nchw[0, 0] == 10).all() and (nchw[0, 1] == 20).all() and (nchw[0, 2] == 30).all()
    assert nchw[1, 0, 1, 1] == 200


def test_cifar_wrong_length_and_label():
    with pytest.raises(DataFormatError, match=r"b\.bin: length 3072 is not a positive multiple of"):
        read_cifar_records(b"\x00" * 3072, "b.bin")
    with pytest.raises(DataFormatError, match="length 0"):
        read_cifar_records(b"", "b.bin")
    rec = np.zeros((3, 3073), np.uint8)
    rec[2, 0] = 10
    with pytest.raises(DataFormatError, match=r"b\.bin: label 10 outside 0\.\.9 in record 2"):
        read_cifar_records(rec.tobytes(), "b.bin")


# ------------------------------------------------------------------------- tar


def _tar(path, members, compress=True):
    """members: list of TarInfo-or-(name, bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    data = buf.getvalue()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _info(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_tar_reads_only_wanted_members(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(cifar_tar_bytes({"d/a.bin": b"abc", "d/b.bin": b"xyz", "d/skip": b"!"}))
    out = read_tar_members(path, {"d/a.bin": 10, "d/b.bin": 3})
    assert out == {"d/a.bin": b"abc", "d/b.bin": b"xyz"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]  # nothing extracted


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (("../evil.bin", b"x"), r"member with '\.\.' in its path '\.\./evil\.bin'"),
        (("d/../../evil.bin", b"x"), r"member with '\.\.' in its path"),
        (("/etc/evil", b"x"), "member with an absolute path '/etc/evil'"),
        (_info("d/a.bin", tarfile.SYMTYPE, "/etc/passwd"), "symlink member 'd/a.bin'"),
        (_info("d/a.bin", tarfile.LNKTYPE, "d/other"), "hard link member 'd/a.bin'"),
        (_info("d/dev", tarfile.CHRTYPE), "special member 'd/dev'"),
        (_info("d/fifo", tarfile.FIFOTYPE), "special member 'd/fifo'"),
    ],
)
def test_tar_refuses_unsafe_members(tmp_path, member, message):
    path = _tar(tmp_path / "bad.tar.gz", [member, ("d/a.bin", b"abc")])
    with pytest.raises(DataFormatError, match=f"bad.tar.gz: refusing {message}"):
        read_tar_members(path, {"d/a.bin": 10})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_tar_oversized_and_missing_member(tmp_path):
    path = _tar(tmp_path / "a.tar.gz", [("d/a.bin", b"x" * 11)])
    with pytest.raises(DataFormatError, match="'d/a.bin' is 11 bytes, more than the expected maximum of 10"):
        read_tar_members(path, {"d/a.bin": 10})
    with pytest.raises(DataFormatError, match="lacks the member.*d/b.bin"):
        read_tar_members(path, {"d/a.bin": 20, "d/b.bin": 5})


def test_tar_truncated_and_html(tmp_path):
    data = cifar_tar_bytes({"d/a.bin": np.random.default_rng(0).bytes(200_000)})
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="cut.tar.gz: (truncated|corrupt)"):
        read_tar_members(path, {"d/a.bin": 300_000})
    path.write_bytes(b"<!doctype html><title>Error</title>")
    with pytest.raises(DataFormatError, match="cut.tar.gz: got an HTML page"):
        read_tar_members(path, {"d/a.bin": 300_000})


def test_cifar_limits():
    assert CIFAR_BATCH_BYTES == 30_730_000


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'svhn'; allowed: cifar10, mnist"):
        get_source("svhn")
