"""Fetching: download cache -> mirror -> URLs (a local HTTP server), always verified."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import logging
import threading

import numpy as np
import pytest

from nnflow.data import sources
from nnflow.data.fetch import (
    ChecksumError,
    FetchError,
    MirrorError,
    download,
    fetch_dataset,
    read_sha256sums,
)
from nnflow.data.synthetic import gzip_bytes, idx_bytes
from nnflow.files import read_json

MNIST_FILES = sources.DATASETS["mnist"].filenames


def _leftovers(directory):
    """Temporary files left in a directory (there must be none)."""
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


@pytest.fixture
def canonical_mnist(monkeypatch, rng):
    """Four small MNIST-format files, and a registry whose 'published' md5s match them."""
    contents = {
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (20, 28, 28), np.uint8)),
        "train-labels-idx1-ubyte.gz": idx_bytes(rng.integers(0, 10, 20, np.uint8)),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (5, 28, 28), np.uint8)),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(rng.integers(0, 10, 5, np.uint8)),
    }
    mnist = sources.DATASETS["mnist"]
    files = tuple(
        sources.SourceFile(name, hashlib.md5(raw).hexdigest(), "decompressed", mnist.file(name).role)
        for name, raw in contents.items()
    )
    monkeypatch.setitem(sources.DATASETS, "mnist", dataclasses.replace(mnist, files=files))
    return {name: gzip_bytes(raw) for name, raw in contents.items()}


class _Server:
    """A local HTTP server; ``routes[path]`` is a list of responses, one per request."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.requests.append(self.path)
                queue = server.routes.get(self.path) or [("status", 404)]
                kind, value = queue.pop(0) if len(queue) > 1 else queue[0]
                if kind == "status":
                    self.send_error(value)
                    return
                body = value
                ctype = "text/html" if kind == "html" else "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                length = len(body) * 2 if kind == "truncate" else len(body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)
                if kind == "truncate":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _fetch(tmp_path, server, bases, **kw):
    kw.setdefault("retries", 2)
    return fetch_dataset(
        "mnist", tmp_path / "dl", base_urls=[f"{server.url}/{b}/" for b in bases],
        timeout=5, backoff=0.001, **kw,
    )


# ------------------------------------------------------------------------- mirror


def test_mirror_noncanonical_rejected_without_accept(tmp_path, synthetic_mirror):
    dl = tmp_path / "dl"
    with pytest.raises(ChecksumError) as err:
        fetch_dataset("mnist", dl, mirror=synthetic_mirror)
    msg = str(err.value)
    src = synthetic_mirror / "mnist" / "train-images-idx3-ubyte.gz"
    assert f"{src}: checksum mismatch: expected md5 of the decompressed content" in msg
    assert "6bbc9ace898e44ae57da46a324031adb (published), got " in msg
    assert "set data.datasets.mnist.accept_mirror_checksums: true" in msg
    assert not (dl / "train-images-idx3-ubyte.gz").exists()
    assert _leftovers(dl) == []


def test_mirror_accepted_by_sha256sums(tmp_path, synthetic_mirror):
    dl = tmp_path / "dl"
    record = fetch_dataset("cifar10", dl, mirror=synthetic_mirror, accept_mirror_checksums=True)
    (entry,) = record["files"]
    sums = read_sha256sums(synthetic_mirror / "SHA256SUMS")
    assert entry["sha256"] == sums["cifar-10/cifar-10-binary.tar.gz"]
    assert entry["verified_by"] == "mirror SHA256SUMS"
    assert entry["canonical"] is False and record["canonical"] is False
    assert entry["source"] == str(synthetic_mirror / "cifar-10" / "cifar-10-binary.tar.gz")
    assert read_json(dl / "sources.json") == record
    assert (dl / "cifar-10-binary.tar.gz").read_bytes() == (
        synthetic_mirror / "cifar-10" / "cifar-10-binary.tar.gz"
    ).read_bytes()


def test_mirror_sha256_mismatch(tmp_path, synthetic_mirror):
    target = synthetic_mirror / "cifar-10" / "cifar-10-binary.tar.gz"
    expected = read_sha256sums(synthetic_mirror / "SHA256SUMS")["cifar-10/cifar-10-binary.tar.gz"]
    target.write_bytes(target.read_bytes() + b"\x00")
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    dl = tmp_path / "dl"
    with pytest.raises(ChecksumError, match=f"{target}: checksum mismatch: expected sha256 "
                       f"{expected} .*SHA256SUMS.*, got {actual}"):
        fetch_dataset("cifar10", dl, mirror=synthetic_mirror, accept_mirror_checksums=True)
    assert not (dl / "cifar-10-binary.tar.gz").exists() and _leftovers(dl) == []


def test_missing_mirror_dir_is_an_error_not_a_download(tmp_path, server):
    missing = tmp_path / "nowhere"
    with pytest.raises(MirrorError, match=f"data mirror {missing} does not exist"):
        _fetch(tmp_path, server, ["a"], mirror=missing)
    assert server.requests == []


def test_mirror_missing_one_file(tmp_path, synthetic_mirror, server):
    gone = synthetic_mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"
    gone.unlink()
    with pytest.raises(MirrorError, match=f"file {gone} does not exist"):
        _fetch(tmp_path, server, ["a"], mirror=synthetic_mirror, accept_mirror_checksums=True)
    assert server.requests == []
    assert not (tmp_path / "dl" / gone.name).exists()


def test_mirror_without_sha256sums(tmp_path, synthetic_mirror):
    (synthetic_mirror / "SHA256SUMS").unlink()
    with pytest.raises(MirrorError, match="the mirror has no .*SHA256SUMS"):
        fetch_dataset("cifar10", tmp_path / "dl", mirror=synthetic_mirror,
                      accept_mirror_checksums=True)


def test_mirror_canonical_and_cache(tmp_path, canonical_mnist, server):
    mirror = tmp_path / "m"
    (mirror / "mnist").mkdir(parents=True)
    for name, data in canonical_mnist.items():
        (mirror / "mnist" / name).write_bytes(data)
    record = _fetch(tmp_path, server, ["a"], mirror=mirror)
    assert record["canonical"] is True
    assert {e["verified_by"] for e in record["files"]} == {"published md5"}
    # second call: everything from the verified download cache, nothing else consulted
    again = _fetch(tmp_path, server, ["a"], mirror=tmp_path / "m")
    assert again == record and server.requests == []
    # a corrupted cache file is replaced
    (tmp_path / "dl" / MNIST_FILES[0]).write_bytes(b"garbage")
    _fetch(tmp_path, server, ["a"], mirror=mirror)
    assert (tmp_path / "dl" / MNIST_FILES[0]).read_bytes() == canonical_mnist[MNIST_FILES[0]]


# ------------------------------------------------------------------------- download


def _serve_all(server, base, files):
    for name, data in files.items():
        server.routes[f"/{base}/{name}"] = [("file", data)]


def test_download_verified(tmp_path, canonical_mnist, server):
    _serve_all(server, "a", canonical_mnist)
    record = _fetch(tmp_path, server, ["a"])
    assert record["canonical"] is True
    assert [e["source"] for e in record["files"]] == [f"{server.url}/a/{n}" for n in MNIST_FILES]
    for name, data in canonical_mnist.items():
        assert (tmp_path / "dl" / name).read_bytes() == data
    assert _leftovers(tmp_path / "dl") == []


def test_404_moves_to_the_next_url(tmp_path, canonical_mnist, server):
    _serve_all(server, "b", canonical_mnist)
    record = _fetch(tmp_path, server, ["a", "b"])
    assert all(e["source"].startswith(f"{server.url}/b/") for e in record["files"])
    # no retries of a 404: exactly one request per file to the first URL
    assert sum(r.startswith("/a/") for r in server.requests) == 4


def test_500_is_retried_with_backoff(tmp_path, canonical_mnist, server):
    _serve_all(server, "a", canonical_mnist)
    name = MNIST_FILES[0]
    server.routes[f"/a/{name}"] = [("status", 500), ("status", 503), ("file", canonical_mnist[name])]
    record = _fetch(tmp_path, server, ["a"])
    assert record["files"][0]["source"] == f"{server.url}/a/{name}"
    assert server.requests.count(f"/a/{name}") == 3


def test_500_gives_up_after_retries(tmp_path, canonical_mnist, server):
    name = MNIST_FILES[0]
    server.routes[f"/a/{name}"] = [("status", 500)]
    with pytest.raises(FetchError, match=f"could not fetch {name}:\n.*HTTP 500.*gave up after 3"):
        _fetch(tmp_path, server, ["a"])
    assert server.requests.count(f"/a/{name}") == 3
    assert not (tmp_path / "dl" / name).exists() and _leftovers(tmp_path / "dl") == []


def test_connection_closed_halfway_is_retried(tmp_path, canonical_mnist, server):
    _serve_all(server, "a", canonical_mnist)
    name = MNIST_FILES[0]
    data = canonical_mnist[name]
    server.routes[f"/a/{name}"] = [("truncate", data), ("file", data)]
    _fetch(tmp_path, server, ["a"])
    assert server.requests.count(f"/a/{name}") == 2
    assert (tmp_path / "dl" / name).read_bytes() == data


def test_connection_always_closed_halfway(tmp_path, canonical_mnist, server):
    name = MNIST_FILES[0]
    server.routes[f"/a/{name}"] = [("truncate", canonical_mnist[name])]
    with pytest.raises(FetchError, match=rf"(?s)could not fetch {name}:.*(closed|broken) after"):
        _fetch(tmp_path, server, ["a"], retries=1)
    assert not (tmp_path / "dl" / name).exists() and _leftovers(tmp_path / "dl") == []


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (("html", b"<html><body>Service moved</body></html>"), "got an HTML page"),
        (("file", b"<!DOCTYPE html>\n<html>error</html>"), "got an HTML page instead"),
        (("file", b""), "file is empty"),
        (("file", None), "truncated gzip file"),
        (("file", gzip_bytes(b"not the real content")), "checksum mismatch: expected md5"),
    ],
)
def test_bad_downloads(tmp_path, canonical_mnist, server, response, message):
    name = MNIST_FILES[0]
    kind, body = response
    if body is None:
        body = canonical_mnist[name][:-30]
    server.routes[f"/a/{name}"] = [(kind, body)]
    server.routes[f"/b/{name}"] = [(kind, body)]
    with pytest.raises(FetchError) as err:
        _fetch(tmp_path, server, ["a", "b"])
    msg = str(err.value)
    assert message in msg
    assert f"{server.url}/a/{name}" in msg and f"{server.url}/b/{name}" in msg  # both tried
    if "checksum" in message:
        expected = sources.get_source("mnist").file(name).md5
        actual = hashlib.md5(b"not the real content").hexdigest()
        assert f"expected md5 of the decompressed content {expected} (published), got {actual}" in msg
    assert not (tmp_path / "dl" / name).exists() and _leftovers(tmp_path / "dl") == []


def test_progress_is_logged(tmp_path, server, caplog):
    body = np.random.default_rng(1).bytes(3 << 20)
    server.routes["/big.bin"] = [("file", body)]
    with caplog.at_level(logging.INFO, logger="nnflow.data.fetch"):
        result = download([f"{server.url}/big.bin"], tmp_path / "big.bin",
                          lambda p: {"size": p.stat().st_size}, timeout=5, retries=0)
    assert result == {"size": 3 << 20, "source": f"{server.url}/big.bin"}
    progress = [r.getMessage() for r in caplog.records if "% of" in r.getMessage()]
    assert progress and progress[-1].startswith("big.bin: 100% of 3145728 bytes")


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'fashion'; allowed: cifar10, mnist"):
        fetch_dataset("fashion", tmp_path)


def test_gzip_helper_is_deterministic():
    assert gzip_bytes(b"abc") == gzip_bytes(b"abc")
    assert gzip.decompress(gzip_bytes(b"abc")) == b"abc"


def test_truncated_archive_download_says_truncated(tmp_path, server, synthetic_mirror):
    data = (synthetic_mirror / "cifar-10" / "cifar-10-binary.tar.gz").read_bytes()
    server.routes["/a/cifar-10-binary.tar.gz"] = [("file", data[: len(data) // 2])]
    with pytest.raises(FetchError, match="cifar-10-binary.tar.gz: truncated gzip file"):
        fetch_dataset("cifar10", tmp_path / "dl", base_urls=[f"{server.url}/a/"], retries=0)
    assert _leftovers(tmp_path / "dl") == []
    assert not (tmp_path / "dl" / "cifar-10-binary.tar.gz").exists()
