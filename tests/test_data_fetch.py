"""Fetching: download cache -> mirror -> URLs (a local HTTP server), always verified."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnflow.data import sources
from nnflow.data.fetch import (
    ChecksumError,
    DeadlineError,
    FetchError,
    FetchOptions,
    MirrorError,
    download,
    fetch_dataset,
    read_sha256sums,
)
from nnflow.data.synthetic import gzip_bytes
from nnflow.files import read_json
from nnflow.workflow.config import fill_defaults, load_schema

ROOT = Path(__file__).resolve().parents[1]
MNIST_FILES = sources.DATASETS["mnist"].filenames


def _leftovers(directory):
    """Temporary files left in a directory (there must be none)."""
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


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


# ------------------------------------------------------------------------- time limits


@contextlib.contextmanager
def _paced_server(response: bytes, at_once: int, step: int, interval: float):
    """A server answering every GET with the raw ``response``: its first ``at_once`` bytes
    at once, then ``step`` bytes every ``interval`` seconds (a trickle when ``step`` is 1)."""
    stop = threading.Event()

    class Paced(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            try:
                self.wfile.write(response[:at_once])
                for i in range(at_once, len(response), step):
                    if stop.wait(interval):
                        return
                    self.wfile.write(response[i : i + step])
            except OSError:
                pass  # the client hung up

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Paced)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _answer(body: bytes) -> bytes:
    head = f"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


@pytest.mark.parametrize("trickled", ["headers", "body"])
def test_a_trickling_server_is_cut_off_at_the_deadline(tmp_path, trickled):
    """One byte every 0.2 s never trips the per-read timeout; the file's deadline ends it."""
    name = "t10k-labels-idx1-ubyte.gz"
    response = _answer(bytes(30))
    at_once = 0 if trickled == "headers" else response.index(b"\r\n\r\n") + 4
    with _paced_server(response, at_once, step=1, interval=0.2) as base:
        url = f"{base}/{name}"
        started = time.monotonic()
        with pytest.raises(DeadlineError) as err:
            download([url], tmp_path / name, lambda p: {}, timeout=5, retries=2, deadline=1)
        elapsed = time.monotonic() - started
    msg = str(err.value)
    assert f"could not fetch {name} within its deadline of 1 s (data.deadline_seconds = 1" in msg
    assert f"{url}: " in msg
    # sending the whole answer takes over 6 s: it was cut off, not waited for
    assert elapsed < 3
    assert list(tmp_path.iterdir()) == []


def test_a_large_file_gets_time_in_proportion_to_its_announced_size(tmp_path):
    """2 MB at about 2 MB/s: within 0.5 s + 1.5 s per MB announced, beyond 0.5 s alone."""
    body = np.random.default_rng(2).bytes(2 * 10**6)
    response = _answer(body)
    with _paced_server(response, 0, step=100_000, interval=0.05) as base:
        url = f"{base}/big.bin"
        result = download([url], tmp_path / "big.bin", lambda p: {"size": p.stat().st_size},
                          timeout=5, retries=0, deadline=0.5, deadline_per_mb=1.5)
        assert result == {"size": len(body), "source": url}
        assert (tmp_path / "big.bin").read_bytes() == body
        with pytest.raises(DeadlineError, match=r"deadline of 0.5 s .*per MB of the 2000000 bytes announced"):
            download([url], tmp_path / "again.bin", lambda p: {}, timeout=5, retries=0, deadline=0.5,
                     deadline_per_mb=0)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "again.bin").exists()


@pytest.fixture(params=["never answers", "refuses"])
def dead_endpoint(request):
    """A port that accepts connections (into the kernel's backlog) but never answers,
    or one that refuses them."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/train-images-idx3-ubyte.gz"
    if request.param == "refuses":
        sock.close()
    yield url
    sock.close()


def test_a_dead_endpoint_fails_within_the_stated_bound(tmp_path, dead_endpoint):
    """6 attempts of 0.3 s plus 3.1 s of backoff would take 4.9 s: the 1 s deadline ends them."""
    options = FetchOptions(timeout=0.3, retries=5, backoff=0.1, deadline=1.0)
    bound = options.dead_network_seconds(1)
    assert bound == 1.0
    started = time.monotonic()
    with pytest.raises(DeadlineError) as err:
        download([dead_endpoint], tmp_path / "train-images-idx3-ubyte.gz", lambda p: {},
                 timeout=options.timeout, retries=options.retries, backoff=options.backoff,
                 deadline=options.deadline)
    elapsed = time.monotonic() - started
    msg = str(err.value)
    assert "could not fetch train-images-idx3-ubyte.gz within its deadline of 1 s" in msg
    assert dead_endpoint in msg
    assert elapsed < bound + 1.5
    assert list(tmp_path.iterdir()) == []


def test_shipped_settings_fail_a_dead_network_within_two_minutes():
    """The schema's defaults, config.yaml and FetchOptions agree, and with them a file
    fails after at most 120 s (MNIST, 3 URLs) or 48 s (CIFAR-10, 1 URL) when nothing
    answers, while CIFAR-10's 170 MB archive may take 1820 s (any link above 94 kB/s)."""
    config = {"data": {}}
    fill_defaults(config, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())["data"]
    options = FetchOptions.from_config(config["data"])
    assert options == FetchOptions() == FetchOptions.from_config(shipped)
    mnist, cifar = sources.DATASETS["mnist"], sources.DATASETS["cifar10"]
    assert options.dead_network_seconds(len(mnist.base_urls)) == 120
    assert options.dead_network_seconds(len(cifar.base_urls)) == 48
    assert round(options.deadline_for(170_052_171)) == 1821
