"""Parsers of the raw dataset formats (IDX, CIFAR-10 binary records, tar.gz).

Parsers take bytes and return NumPy arrays (``np.frombuffer``: no copies, no
pickle). The only functions that touch the file system are :func:`read_idx`
(a path or bytes) and :func:`read_tar_members` (reads the wanted members of a
tar archive, from a path or a stream, straight into memory: nothing is ever
extracted to disk).
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnflow.data.sources import CIFAR_RECORD_BYTES

GZIP_MAGIC = b"\x1f\x8b"
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_NDIM = {IDX_LABELS_MAGIC: 1, IDX_IMAGES_MAGIC: 3}


class DataFormatError(ValueError):
    """A file is not in the format it should be in (the message names the file)."""


def looks_like_html(data: bytes) -> bool:
    """True for what a web server sends as an error page instead of the file."""
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml"))


def describe_garbage(data: bytes, name: str) -> str | None:
    """A clear message if ``data`` is empty or an HTML page, else None."""
    if len(data) == 0:
        return f"{name}: file is empty (0 bytes)"
    if looks_like_html(data):
        return (
            f"{name}: got an HTML page instead of the data file "
            "(an error or login page of the server?)"
        )
    return None


def gunzip(data: bytes, name: str = "<bytes>") -> bytes:
    """Decompress gzip ``data``; a clear error for an empty, HTML, non-gzip or truncated file."""
    msg = describe_garbage(data, name)
    if msg:
        raise DataFormatError(msg)
    if not data.startswith(GZIP_MAGIC):
        raise DataFormatError(f"{name}: not a gzip file (starts with {data[:4]!r})")
    try:
        return gzip.decompress(data)
    except EOFError as exc:
        raise DataFormatError(
            f"{name}: truncated gzip file ({len(data)} bytes; {exc}); delete it and download again"
        ) from exc
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataFormatError(f"{name}: corrupt gzip file ({exc})") from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an uncompressed IDX file (labels 0x00000801 or images 0x00000803).

    Returns a read-only uint8 array of the dimensions in the header.
    """
    if len(data) < 4:
        raise DataFormatError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic not in _IDX_NDIM:
        raise DataFormatError(
            f"{name}: wrong IDX magic number 0x{magic:08x} "
            f"(expected 0x{IDX_LABELS_MAGIC:08x} for labels or 0x{IDX_IMAGES_MAGIC:08x} for images)"
        )
    ndim = _IDX_NDIM[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(
            f"{name}: header of {header} bytes expected for {ndim} dimensions, "
            f"file has {len(data)} bytes"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise DataFormatError(f"{name}: wrong dimensions {dims} in the IDX header")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) < expected:
        raise DataFormatError(
            f"{name}: header claims dimensions {dims} ({expected - header} data bytes), "
            f"but only {len(data) - header} data bytes follow (truncated file)"
        )
    if len(data) > expected:
        raise DataFormatError(
            f"{name}: {len(data) - expected} bytes of trailing garbage after the "
            f"{expected - header} data bytes of dimensions {dims}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Read an IDX file from a path or bytes; gzip (by its magic bytes) is decompressed."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = name or "<bytes>"
    else:
        name = name or str(source)
        data = Path(source).read_bytes()
    if data.startswith(GZIP_MAGIC) or len(data) == 0 or looks_like_html(data):
        data = gunzip(data, name)
    return parse_idx(data, name)


def read_cifar_records(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Parse CIFAR-10 binary records: 1 label byte + 3072 pixel bytes each.

    Returns ``X`` uint8 of shape (N, 3072) in the file's channel-first order
    (1024 red, 1024 green, 1024 blue values, each a row-major 32x32 image: so
    ``X.reshape(N, 3, 32, 32)`` gives NCHW) and ``y`` uint8 of shape (N,).
    """
    if len(data) == 0 or len(data) % CIFAR_RECORD_BYTES:
        raise DataFormatError(
            f"{name}: length {len(data)} is not a positive multiple of the record size "
            f"{CIFAR_RECORD_BYTES} (1 label byte + 3072 pixel bytes)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    y = records[:, 0]
    bad = np.flatnonzero(y > 9)
    if bad.size:
        raise DataFormatError(
            f"{name}: label {int(y[bad[0]])} outside 0..9 in record {int(bad[0])} "
            f"({bad.size} bad records)"
        )
    return records[:, 1:], y.copy()


def read_tar_members(
    archive: str | os.PathLike | BinaryIO, limits: Mapping[str, int], name: str | None = None
) -> dict[str, bytes]:
    """Read the members named in ``limits`` (name -> maximum size) into memory.

    ``archive`` is a path or a binary stream (read once, front to back: a tar
    stream, compressed or not). Nothing is extracted. Every member header is
    checked: an absolute path, a ``..`` component, a symlink, a hard link or a
    device/FIFO anywhere in the archive is refused; a wanted member must be a
    regular file no larger than its limit. Other regular files and directories
    are skipped unread. A missing wanted member, a truncated or corrupt archive:
    clear errors.
    """
    is_path = isinstance(archive, str | os.PathLike)
    name = name or (str(archive) if is_path else "<stream>")
    found: dict[str, bytes] = {}
    try:
        opened = tarfile.open(archive, mode="r:*") if is_path else tarfile.open(fileobj=archive, mode="r|*")
        with opened as tar:
            for member in tar:
                _check_member(member, name)
                if member.name not in limits:
                    continue
                if not member.isreg():
                    raise DataFormatError(f"{name}: member {member.name!r} is not a regular file")
                limit = limits[member.name]
                if member.size > limit:
                    raise DataFormatError(
                        f"{name}: member {member.name!r} is {member.size} bytes, "
                        f"more than the expected maximum of {limit}"
                    )
                fh = tar.extractfile(member)
                assert fh is not None
                data = fh.read(limit + 1)
                if len(data) != member.size:
                    raise DataFormatError(
                        f"{name}: member {member.name!r}: read {len(data)} bytes, "
                        f"header says {member.size}"
                    )
                found[member.name] = data
    except DataFormatError:
        raise
    except EOFError as exc:
        raise DataFormatError(f"{name}: truncated archive ({exc})") from exc
    except (tarfile.TarError, OSError, zlib.error) as exc:
        msg = None
        if is_path:
            with open(archive, "rb") as fh:
                msg = describe_garbage(fh.read(512), name)
        raise DataFormatError(msg or f"{name}: corrupt or truncated tar archive ({exc})") from exc
    missing = sorted(set(limits) - set(found))
    if missing:
        raise DataFormatError(f"{name}: archive lacks the member(s) {', '.join(missing)}")
    return found


def _check_member(member: tarfile.TarInfo, archive: str) -> None:
    path = member.name
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise DataFormatError(f"{archive}: refusing member with an absolute path {path!r}")
    if ".." in path.replace("\\", "/").split("/"):
        raise DataFormatError(f"{archive}: refusing member with '..' in its path {path!r}")
    if member.issym():
        raise DataFormatError(f"{archive}: refusing symlink member {path!r} -> {member.linkname!r}")
    if member.islnk():
        raise DataFormatError(f"{archive}: refusing hard link member {path!r} -> {member.linkname!r}")
    if not (member.isreg() or member.isdir()):
        raise DataFormatError(f"{archive}: refusing special member {path!r} (device, FIFO, ...)")
