"""Downloading one file over HTTP(S), bounded in time.

The limits (fields of :class:`FetchOptions`, config keys ``data.timeout_seconds``,
``data.retries``, ``data.deadline_seconds``, ``data.deadline_seconds_per_mb``):

- ``timeout``: an attempt is abandoned when nothing arrives for this many seconds,
  whether it is resolving the name, connecting, waiting for the answer or
  mid-transfer. Such a stall, a network error or an HTTP 5xx/429 is retried on the
  same URL after ``backoff * 2**k`` seconds (k = 0, 1, ...), ``retries`` times; a 404
  or a bad file moves on to the next URL.
- ``deadline`` and ``deadline_per_mb``: one file may take at most
  ``deadline + deadline_per_mb * MB`` seconds over all its URLs, attempts and waits,
  where MB is the largest size (Content-Length, in 10^6 bytes) a server announced for
  it. A large file thus gets time in proportion to its size (CIFAR-10's 170 MB:
  1820 s with the defaults, so any link faster than 94 kB/s), while a server that
  trickles bytes, or a network where nothing answers, ends after ``deadline``
  seconds. Past it, :class:`DeadlineError` names the file, the URL and the deadline.

Each attempt's transfer runs in a worker thread that the caller waits for, so the
limits hold whatever blocks (name resolution, a connect to each of a host's
addresses, a server sending its headers byte by byte). An abandoned attempt's thread
writes nothing more and ends at its next read, at most ``timeout`` later.
:meth:`FetchOptions.dead_network_seconds` is the worst case before the error when
no server answers at all.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from nnflow.files import atomic_write

log = logging.getLogger("nnflow.data.fetch")

CHUNK = 1 << 20
PROGRESS_MIN_BYTES = 1 << 20
MB = 10**6


class FetchError(RuntimeError):
    """A file could not be obtained (the message says from where and why)."""


class ChecksumError(FetchError):
    """A file does not match its expected checksum (names file, expected, actual)."""


class DeadlineError(FetchError):
    """A file was not obtained within its deadline (names the file, the URL and the deadline)."""


@dataclass(frozen=True)
class FetchOptions:
    """How to fetch; none of this changes the verified bytes that end up in the cache.

    The workflow passes it as one parameter object, which Snakemake leaves out
    of its parameter rerun trigger: moving the mirror, or raising the timeout,
    does not refetch (and so does not recompute everything downstream).
    The time limits are described in the module docstring.
    """

    mirror: str | None = None
    timeout: float = 15.0
    retries: int = 2
    backoff: float = 1.0
    deadline: float = 120.0
    deadline_per_mb: float = 10.0

    @classmethod
    def from_config(cls, data: Mapping[str, Any], mirror: str | None = None) -> FetchOptions:
        """From config.yaml's ``data`` section (with the schema's defaults filled in)."""
        return cls(
            mirror=mirror,
            timeout=float(data["timeout_seconds"]),
            retries=int(data["retries"]),
            deadline=float(data["deadline_seconds"]),
            deadline_per_mb=float(data["deadline_seconds_per_mb"]),
        )

    def deadline_for(self, announced_bytes: int = 0) -> float:
        """Seconds allowed for one file of which a server announced ``announced_bytes``."""
        return self.deadline + self.deadline_per_mb * announced_bytes / MB

    def dead_network_seconds(self, n_urls: int) -> float:
        """The longest one file takes to fail when no server ever answers.

        Every attempt ends ``timeout`` seconds after it started; a URL gets
        ``retries + 1`` attempts with waits of ``backoff * (1 + 2 + ... + 2**(retries-1))``
        between them; nothing is announced, so the deadline is ``deadline``::

            min(deadline, n_urls * ((retries + 1) * timeout + backoff * (2**retries - 1)))
        """
        per_url = (self.retries + 1) * self.timeout + self.backoff * (2**self.retries - 1)
        return min(self.deadline_for(0), n_urls * per_url)


DEFAULTS = FetchOptions()


class _Retry(Exception):
    """A transient failure: try the same URL again after a backoff."""


class _NextURL(Exception):
    """This URL cannot deliver the file: try the next one."""


class _DeadlinePassed(Exception):
    """The file's deadline passed during an attempt (the message says how far it got)."""


class _FileClock:
    """The deadline of one file: ``deadline + deadline_per_mb * MB announced`` from the start."""

    def __init__(self, name: str, deadline: float, deadline_per_mb: float):
        self.name, self.deadline, self.deadline_per_mb = name, deadline, deadline_per_mb
        self.start = time.monotonic()
        self.announced = 0

    def announce(self, size: int) -> None:
        self.announced = max(self.announced, size)

    def limit(self) -> float:
        return self.deadline + self.deadline_per_mb * self.announced / MB

    def remaining(self) -> float:
        return self.start + self.limit() - time.monotonic()

    def error(self, url: str, detail: str, failures: Sequence[str]) -> DeadlineError:
        scaled = (f"{self.deadline:g} s + {self.deadline_per_mb:g} s per MB of the {self.announced} "
                  f"bytes announced" if self.announced else "nothing announced")
        earlier = "".join(f"\n  before: {f}" for f in failures)
        return DeadlineError(
            f"could not fetch {self.name} within its deadline of {self.limit():.4g} s "
            f"(data.deadline_seconds = {self.deadline:g}, data.deadline_seconds_per_mb = "
            f"{self.deadline_per_mb:g}; {scaled}): {url}: {detail}{earlier}"
        )


class _Transfer:
    """One attempt: GET ``url`` into ``out``; run in a worker thread (see :func:`_attempt`)."""

    def __init__(self, url: str, out: BinaryIO, timeout: float, clock: _FileClock):
        self.url, self.out, self.timeout, self.clock = url, out, timeout, clock
        self.started = self.last_activity = time.monotonic()
        self.received = 0
        self.total: int | None = None
        self.responded = False
        self.cancelled = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._stream()
        except BaseException as exc:  # handed to the waiting caller, never lost in the thread
            self.error = exc

    def describe(self) -> str:
        if not self.responded:
            return "no answer"
        of = f" of {self.total}" if self.total is not None else ""
        return f"{self.received}{of} bytes received"

    def _stream(self) -> None:
        name = self.clock.name
        try:
            resp = urllib.request.urlopen(self.url, timeout=self.timeout)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code >= 500 or exc.code == 429:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
            raise _NextURL(f"HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _Retry(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc
        with resp:
            if self.cancelled:
                return
            self.responded, self.last_activity = True, time.monotonic()
            ctype = resp.headers.get("Content-Type", "") or ""
            if ctype.lower().startswith("text/html"):
                raise _NextURL(f"{name}: got an HTML page (Content-Type {ctype}) instead of the file")
            length = resp.headers.get("Content-Length")
            self.total = int(length) if length and length.isdigit() else None
            if self.total is not None:
                self.clock.announce(self.total)
            next_report = 10
            try:
                # read1: return what has arrived, so the caller sees every byte as progress
                while chunk := resp.read1(CHUNK):
                    if self.cancelled:
                        return
                    self.out.write(chunk)
                    self.received += len(chunk)
                    self.last_activity = time.monotonic()
                    next_report = self._report(next_report)
            except (OSError, http.client.HTTPException) as exc:
                raise _Retry(
                    f"connection broken after {self.received} bytes ({type(exc).__name__}: {exc})"
                ) from exc
        if self.total is not None and self.received < self.total:
            raise _Retry(f"connection closed after {self.received} of {self.total} bytes")

    def _report(self, next_report: int) -> int:
        total, done = self.total, self.received
        if total and total >= PROGRESS_MIN_BYTES and done * 100 >= next_report * total:
            rate = done / max(time.monotonic() - self.started, 1e-9) / 1e6
            log.info("%s: %d%% of %d bytes (%.1f MB/s)", self.clock.name, 100 * done // total, total, rate)
            return 10 * (100 * done // total // 10 + 1)
        return next_report


def _attempt(url: str, dest: Path, timeout: float, clock: _FileClock) -> None:
    """GET ``url`` into ``dest`` within the limits: the transfer runs in a worker thread.

    The caller wakes when the worker ends, when ``timeout`` passed without a byte
    (-> _Retry) or when the file's deadline passed (-> _DeadlinePassed); an
    abandoned worker is cancelled: it writes nothing more (``dest`` is closed here).
    """
    with open(dest, "wb") as out:
        transfer = _Transfer(url, out, timeout, clock)
        worker = threading.Thread(target=transfer.run, name=f"download {clock.name}", daemon=True)
        worker.start()
        try:
            while True:
                wake = min(transfer.last_activity + timeout, clock.start + clock.limit())
                worker.join(max(wake - time.monotonic(), 0.0))
                if not worker.is_alive():
                    break
                if clock.remaining() <= 0:
                    raise _DeadlinePassed(f"{transfer.describe()} after "
                                          f"{time.monotonic() - clock.start:.1f} s")
                if time.monotonic() - transfer.last_activity >= timeout:
                    raise _Retry(f"timed out: nothing received for {timeout:g} s ({transfer.describe()})")
        finally:
            transfer.cancelled = True
    if transfer.error is not None:
        raise transfer.error


def download(
    urls: Sequence[str],
    dest: str | os.PathLike,
    verify: Callable[[Path], dict[str, Any]],
    *,
    timeout: float = DEFAULTS.timeout,
    retries: int = DEFAULTS.retries,
    backoff: float = DEFAULTS.backoff,
    deadline: float = DEFAULTS.deadline,
    deadline_per_mb: float = DEFAULTS.deadline_per_mb,
) -> dict[str, Any]:
    """Download to ``dest`` from the first URL that delivers a file that ``verify`` accepts.

    ``verify(tmp_path) -> dict`` raises ChecksumError for a bad file. Returns the
    verification result plus ``source`` (the URL). Time limits: see the module
    docstring. On failure: FetchError listing what each URL did (DeadlineError when
    the deadline ended it); no file under ``dest``, no temporary file left.
    """
    dest = Path(dest)
    clock = _FileClock(dest.name, deadline, deadline_per_mb)
    failures: list[str] = []
    for url in urls:
        for attempt in range(retries + 1):
            if clock.remaining() <= 0:
                raise clock.error(url, "no time left to try it", failures)
            try:
                with atomic_write(dest) as tmp:
                    log.info("downloading %s (attempt %d)", url, attempt + 1)
                    _attempt(url, tmp, timeout, clock)
                    result = verify(tmp)
                log.info("%s: verified, saved as %s", url, dest)
                return {**result, "source": url}
            except _DeadlinePassed as exc:
                raise clock.error(url, str(exc), failures) from None
            except _Retry as exc:
                msg = f"{url}: {exc}"
                if attempt < retries:
                    wait = backoff * 2**attempt
                    if wait >= clock.remaining():
                        raise clock.error(
                            url, f"{exc}; the retry in {wait:.2g} s would start after the deadline", failures
                        ) from None
                    log.warning("%s; retrying in %.2g s", msg, wait)
                    time.sleep(wait)
                    continue
                failures.append(f"{msg} (gave up after {retries + 1} attempts)")
            except (_NextURL, ChecksumError) as exc:
                failures.append(f"{url}: {exc}")
                log.warning("%s: %s; trying the next URL", url, exc)
            break
    raise FetchError(f"could not fetch {dest.name}:\n  " + "\n  ".join(failures))
