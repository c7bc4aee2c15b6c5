"""Reading the download cache: the bytes prepared are the bytes the fetch verified.

The fetch step verifies each file as it enters the download cache and records in
``sources.json`` how (the published md5, or a mirror's ``SHA256SUMS``) together with
the file's sha256. Snakemake never reruns a fetch job because a cached file changed
afterwards (the job has no inputs), so a replaced or damaged file would otherwise be
parsed unchecked while the provenance still claimed the fetch's verification.

So the prepare step reads every raw file through :class:`VerifiedRead`: each byte is
hashed as the parser reads it, the rest of the file (what a parser leaves unread, e.g.
the padding after a tar archive's end) is hashed when the parser is done, and then

- the sha256 of the whole file must be the one in the fetch record (the bytes are those
  whose verification the record describes; for a mirror copy accepted by its
  ``SHA256SUMS`` this is that verification), and
- for a canonical file, its md5 (of the file, or of the decompressed content, as the
  dataset declares) must be the declared published md5.

A mismatch raises :class:`CachedFileError` naming the file, the expected and the actual
checksum. A file whose parsing fails and whose checksums do not match reports the
mismatch (the cause), chained to the parse error. Each file is read once: verifying the
170 MB CIFAR-10 archive this way costs the hashing alone (about 0.5 s), no second read.

A mismatch is refused, not refetched: prepare jobs run where the data are prepared
(on a cluster, compute nodes that may have no network; the fetch jobs are local rules
for that reason), a job must not rewrite the files another job produced, and a cache
changed behind the workflow's back is something the user should hear about. Deleting
the file makes the workflow fetch it again.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from nnflow.data.download import CHUNK
from nnflow.data.fetch import RECORD_NAME, VERIFIED_PUBLISHED
from nnflow.data.sources import DatasetSource, SourceFile
from nnflow.files import read_json


class CachedFileError(ValueError):
    """A cached raw file is not the one the fetch verified (names the file and both checksums)."""


class DigestReader:
    """A read-only binary stream that hashes every byte read through it."""

    def __init__(self, stream: BinaryIO, *algorithms: str):
        self._stream = stream
        self.hashes = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        for h in self.hashes.values():
            h.update(data)
        return data

    def drain(self) -> None:
        """Read (and hash) the rest of the stream."""
        while self.read(CHUNK):
            pass

    def hexdigest(self, name: str) -> str:
        return self.hashes[name].hexdigest()


def fetch_record(download_dir: str | os.PathLike, source: DatasetSource) -> dict[str, dict[str, Any]]:
    """The fetch record's entry of each declared file, by file name.

    ValueError naming ``sources.json`` if the record is for another dataset or lacks a file.
    """
    path = Path(download_dir) / RECORD_NAME
    record = read_json(path)
    if record.get("dataset") != source.name:
        raise ValueError(f"{path}: record is for {record.get('dataset')!r}, not {source.name!r}")
    entries = {entry["name"]: entry for entry in record.get("files", [])}
    missing = [name for name in source.filenames if name not in entries]
    if missing:
        raise ValueError(f"{path}: no entry for {', '.join(missing)}; fetch {source.name} again")
    return entries


class VerifiedRead:
    """``with VerifiedRead(path, declared, entry) as stream:`` read a cached file, verified.

    ``stream`` yields the file's bytes, or its decompressed content when the file is
    canonical and its published md5 is of the decompressed content (MNIST), so that
    md5 is computed on what the parser reads. On leaving the block the digests are
    compared (see the module docstring) and :attr:`provenance` is set: the fetch
    record's entry with the md5 and sha256 of the bytes actually read.
    """

    def __init__(self, path: str | os.PathLike, declared: SourceFile, entry: dict[str, Any]):
        self.path = Path(path)
        self.declared = declared
        self.entry = entry
        self.canonical = entry.get("verified_by") == VERIFIED_PUBLISHED
        self.provenance: dict[str, Any] | None = None

    def __enter__(self) -> DigestReader:
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed in __exit__)
        self._raw = DigestReader(self._file, "md5", "sha256")
        self._gzip = None
        self._content = self._raw
        if self.canonical and self.declared.md5_of == "decompressed":
            self._gzip = gzip.GzipFile(fileobj=self._raw, mode="rb")
            self._content = DigestReader(self._gzip, "md5")
        return self._content

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc is not None:
                self._check_after_failure(exc)
                return
            try:
                self._content.drain()
            except Exception as drain_exc:
                self._check_after_failure(drain_exc)
                raise
            self._raw.drain()
            self._check(whole=True)
        finally:
            if self._gzip is not None:
                self._gzip.close()
            self._file.close()

    def _check_after_failure(self, exc: BaseException) -> None:
        """The parser failed: if the file is not the fetched one, say that (the cause)."""
        if not isinstance(exc, Exception):
            return
        try:
            self._raw.drain()
        except OSError:
            return
        self._check(whole=False, cause=exc)

    def _check(self, whole: bool, cause: BaseException | None = None) -> None:
        sha256 = self._raw.hexdigest("sha256")
        md5 = self._content.hexdigest("md5")
        if whole and self.canonical and md5 != self.declared.md5:
            what = "md5 of the decompressed content" if self.declared.md5_of == "decompressed" else "md5"
            self._refuse(f"expected {what} {self.declared.md5} (published), got {md5}", cause)
        if sha256 != self.entry.get("sha256"):
            how = "its published md5" if self.canonical else "the mirror's SHA256SUMS"
            self._refuse(
                f"expected sha256 {self.entry.get('sha256')} (recorded in {RECORD_NAME} when the "
                f"fetch verified it by {how}), got {sha256}", cause,
            )
        if whole:
            self.provenance = {**self.entry, "md5": md5, "sha256": sha256}

    def _refuse(self, checksums: str, cause: BaseException | None) -> None:
        raise CachedFileError(
            f"{self.path}: not the file the fetch verified: {checksums}. The cached file was "
            "replaced or damaged after it was fetched; delete it to fetch it again "
            "(the workflow's fetch job then reruns)"
        ) from cause
