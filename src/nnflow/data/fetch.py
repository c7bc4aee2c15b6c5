"""Get the raw dataset files into the download cache, verified.

Where a file comes from, in this order:

1. the download cache (``<download_dir>/<name>``): used when it verifies;
2. a local mirror (``<mirror>/mnist/<name>``, ``<mirror>/cifar-10/<name>``),
   checked against the published checksum or, only when the caller accepts it
   for this dataset, against the mirror's ``SHA256SUMS`` (then recorded as
   non-canonical). A mirror that was given but is missing or incomplete is an
   error: we never fall back to the network behind the user's back;
3. the URLs of :mod:`nnflow.data.sources`, in order (:mod:`nnflow.data.download`:
   a timeout for stalls, retries with exponential backoff for network errors and
   5xx only, a 404 or a bad file moves on to the next URL, and a deadline per
   file), streamed to a temporary file in the destination directory, verified,
   then renamed atomically.

Nothing unverified is ever visible under a final name. What was fetched from
where, and how it was verified, is written to ``<download_dir>/sources.json``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnflow.data.download import (
    CHUNK,
    DEFAULTS,
    ChecksumError,
    DeadlineError,
    FetchError,
    FetchOptions,
    download,
)
from nnflow.data.formats import describe_garbage
from nnflow.data.sources import DatasetSource, SourceFile, get_source
from nnflow.files import atomic_write, read_json, write_json

log = logging.getLogger("nnflow.data.fetch")

RECORD_NAME = "sources.json"
VERIFIED_PUBLISHED = "published md5"
VERIFIED_MIRROR = "mirror SHA256SUMS"


class MirrorError(FetchError):
    """The configured mirror is missing, incomplete or has no usable checksum."""


# --------------------------------------------------------------------------- checksums


def file_digests(path: str | os.PathLike) -> tuple[str, str]:
    """(md5, sha256) of the file as stored."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def gunzipped_md5(path: str | os.PathLike, name: str) -> str:
    """md5 of the decompressed content of a gzip file, streaming."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
    except EOFError as exc:
        raise ChecksumError(f"{name}: truncated gzip file ({exc})") from exc
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise ChecksumError(f"{name}: not a valid gzip file ({exc})") from exc
    return md5.hexdigest()


def _sniff(path: Path, name: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(512)
    msg = describe_garbage(head, name)
    if msg:
        raise ChecksumError(msg)


def check_published(path: str | os.PathLike, sf: SourceFile, name: str) -> dict[str, Any]:
    """Verify against the published md5; returns the digests, raises ChecksumError."""
    path = Path(path)
    _sniff(path, name)
    md5_file, sha256 = file_digests(path)
    actual = gunzipped_md5(path, name) if sf.md5_of == "decompressed" else md5_file
    if actual != sf.md5:
        what = "md5 of the decompressed content" if sf.md5_of == "decompressed" else "md5"
        if sf.md5_of == "file" and sf.name.endswith(".gz"):
            gunzipped_md5(path, name)  # a truncated archive says so rather than "mismatch"
        raise ChecksumError(
            f"{name}: checksum mismatch: expected {what} {sf.md5} (published), got {actual}"
        )
    return {"md5": actual, "md5_of": sf.md5_of, "sha256": sha256}


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """Parse a SHA256SUMS file (``<hex>  <relative path>`` per line)."""
    sums: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise MirrorError(f"{path}:{lineno}: not a 'sha256  path' line: {line!r}")
        rel = parts[1].strip().lstrip("*")
        sums[rel.removeprefix("./")] = parts[0].lower()
    return sums


# --------------------------------------------------------------------------- fetch


def _entry(name: str, result: dict[str, Any], verified_by: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": result["source"],
        "md5": result["md5"],
        "md5_of": result["md5_of"],
        "sha256": result["sha256"],
        "verified_by": verified_by,
        "canonical": verified_by == VERIFIED_PUBLISHED,
    }


def _from_cache(dest: Path, sf: SourceFile, accept_mirror: bool, previous: dict | None):
    """The record entry of a usable cached file, or None (a bad one is deleted)."""
    if not dest.exists():
        return None
    try:
        result = check_published(dest, sf, str(dest))
        source = (previous or {}).get("source", "download cache (origin not recorded)")
        log.info("%s: in the download cache, matches the published md5", dest)
        return _entry(sf.name, {**result, "source": source}, VERIFIED_PUBLISHED)
    except ChecksumError as exc:
        if (
            accept_mirror
            and previous
            and previous.get("verified_by") == VERIFIED_MIRROR
            and file_digests(dest)[1] == previous.get("sha256")
        ):
            log.info("%s: in the download cache, matches the recorded mirror sha256", dest)
            return dict(previous)
        log.warning("%s: cached file not usable (%s); fetching it again", dest, exc)
        dest.unlink()
        return None


def _from_mirror(
    mirror: Path, subdir: str, dest: Path, sf: SourceFile, accept_mirror: bool, dataset: str
) -> dict[str, Any]:
    src = mirror / subdir / sf.name
    if not src.is_file():
        raise MirrorError(f"mirror {mirror}: file {src} does not exist")
    with atomic_write(dest) as tmp:
        shutil.copyfile(src, tmp)
        try:
            result = check_published(tmp, sf, str(src))
            verified_by = VERIFIED_PUBLISHED
        except ChecksumError as exc:
            if not accept_mirror:
                raise ChecksumError(
                    f"{exc}; this mirror copy is not the canonical file. To accept it by the "
                    f"mirror's SHA256SUMS (recorded as non-canonical), set "
                    f"data.datasets.{dataset}.accept_mirror_checksums: true"
                ) from None
            sums_path = mirror / "SHA256SUMS"
            if not sums_path.is_file():
                raise MirrorError(
                    f"{exc}; and the mirror has no {sums_path} to verify it against"
                ) from None
            rel = f"{subdir}/{sf.name}"
            expected = read_sha256sums(sums_path).get(rel)
            if expected is None:
                raise MirrorError(f"{sums_path}: no entry for {rel}") from None
            _, sha256 = file_digests(tmp)
            if sha256 != expected:
                raise ChecksumError(
                    f"{src}: checksum mismatch: expected sha256 {expected} ({sums_path}), "
                    f"got {sha256}"
                ) from None
            md5_file, _ = file_digests(tmp)
            result = {"md5": md5_file, "md5_of": "file", "sha256": sha256}
            verified_by = VERIFIED_MIRROR
    log.info("%s: copied from %s, verified by %s", dest, src, verified_by)
    return _entry(sf.name, {**result, "source": str(src)}, verified_by)


def fetch_dataset(
    dataset: str | DatasetSource,
    download_dir: str | os.PathLike,
    *,
    mirror: str | os.PathLike | None = None,
    accept_mirror_checksums: bool | None = None,
    timeout: float = DEFAULTS.timeout,
    retries: int = DEFAULTS.retries,
    backoff: float = DEFAULTS.backoff,
    deadline: float = DEFAULTS.deadline,
    deadline_per_mb: float = DEFAULTS.deadline_per_mb,
    base_urls: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Put the verified files of ``dataset`` into ``download_dir``; return the record.

    ``dataset`` is a declaration (:class:`DatasetSource`) or a built-in name;
    ``accept_mirror_checksums`` defaults to the declaration's; the time limits
    are those of :class:`FetchOptions` (per file). ``base_urls``
    replaces the declared URLs (tests). The record (also written
    to ``<download_dir>/sources.json``) lists per file: name, source (URL or
    mirror path), md5 (and ``md5_of``: "decompressed" or "file"), sha256 of the
    file as stored, verified_by ("published md5" / "mirror SHA256SUMS") and
    canonical; plus the dataset and a top-level ``canonical``.
    """
    src = get_source(dataset)
    dataset = src.name
    if accept_mirror_checksums is None:
        accept_mirror_checksums = src.accept_mirror_checksums
    download_dir = Path(download_dir)
    download_dir.mkdir(parents=True, exist_ok=True)
    record_path = download_dir / RECORD_NAME
    previous: dict[str, dict] = {}
    if record_path.exists():
        try:
            previous = {f["name"]: f for f in read_json(record_path).get("files", [])}
        except (ValueError, KeyError, TypeError, AttributeError):
            previous = {}
    mirror_path = Path(mirror) if mirror else None
    if mirror_path is not None and not mirror_path.is_dir():
        raise MirrorError(
            f"data mirror {mirror_path} does not exist or is not a directory "
            "(set by data.mirror or NNFLOW_DATA_MIRROR); fix or unset it to download instead"
        )
    bases = list(base_urls) if base_urls is not None else list(src.base_urls)
    entries = []
    for sf in src.files:
        dest = download_dir / sf.name
        entry = _from_cache(dest, sf, accept_mirror_checksums, previous.get(sf.name))
        if entry is None and mirror_path is not None:
            entry = _from_mirror(
                mirror_path, src.mirror_subdir, dest, sf, accept_mirror_checksums, dataset
            )
        if entry is None:
            result = download(
                [b + sf.name for b in bases],
                dest,
                lambda tmp, sf=sf: check_published(tmp, sf, sf.name),
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                deadline=deadline,
                deadline_per_mb=deadline_per_mb,
            )
            entry = _entry(sf.name, result, VERIFIED_PUBLISHED)
        entries.append(entry)
    record = {
        "dataset": dataset,
        "files": entries,
        "canonical": all(e["canonical"] for e in entries),
    }
    write_json(record_path, record)
    return record


def fetch(dataset: str | DatasetSource, download_dir: str | os.PathLike,
          options: FetchOptions | None = None) -> dict[str, Any]:
    """:func:`fetch_dataset` with the transport settings of a :class:`FetchOptions`."""
    o = options or DEFAULTS
    return fetch_dataset(
        dataset,
        download_dir,
        mirror=o.mirror,
        timeout=o.timeout,
        retries=o.retries,
        backoff=o.backoff,
        deadline=o.deadline,
        deadline_per_mb=o.deadline_per_mb,
    )


__all__ = [
    "ChecksumError",
    "DeadlineError",
    "FetchError",
    "FetchOptions",
    "MirrorError",
    "check_published",
    "download",
    "fetch",
    "fetch_dataset",
    "read_sha256sums",
]
