"""The locked software environment: read the lock file, check it against pyproject.toml,
and compare it with what is installed.

``requirements/lock.txt`` pins every distribution that nnflow with its ``workflow`` and
``test`` extras needs, with the sha256 of every file PyPI has for that version. It is
written by ``make lock`` (``uv pip compile --universal --generate-hashes``, then
:func:`stamp_lock`) and installed by ``make venv`` with ``pip install --require-hashes``.

Three questions are answered here:

- *Is the lock the one for this pyproject.toml?* The lock carries a line
  ``# nnflow-requirements-sha256: <hex>``: the digest of the requirements it was
  compiled from (:func:`requirements_digest`). :func:`check_lock` reports a lock whose
  digest is not that of the current requirements (any edit, even one the old pins still
  satisfy) and every requirement the lock lacks or pins outside its range.
- *Did this process run in the locked environment?* :func:`lock_record` compares the
  installed distributions (as Python would import them: the first of a name on
  ``sys.path``) with the pins that apply here (markers evaluated for this interpreter),
  so a venv that drifted from the lock is reported, whatever any marker file claims.
- *What exactly was installed?* :func:`installed_packages`: ``name==version`` of every
  distribution, sorted.

Only the standard library is imported at module level (``make lock`` runs this module
with nothing but uv and packaging installed); :mod:`packaging` is imported where
specifiers or markers are evaluated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import nnflow

LOCK_PATH = Path("requirements") / "lock.txt"
CONTAINER_DIR = Path("container")
LOCK_ENV_VARIABLE = "NNFLOW_LOCK"
LOCKED_EXTRAS = ("workflow", "test")
STAMP_PREFIX = "# nnflow-requirements-sha256:"
# What the lock is compiled and checked for (`make lock` passes --python-version 3.11);
# markers in the lock are universal, these values decide which pins a check looks at.
TARGET_ENVIRONMENT = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
}
# Installed by `python -m venv` and pip themselves, not by the lock: listed in
# `installed`, never counted as packages beyond the lock.
INSTALLER_DISTRIBUTIONS = frozenset({"pip", "setuptools", "wheel"})

_PIN = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==(?P<version>[^\s;]+)")


class LockFileError(ValueError):
    """A lock file or pyproject.toml that cannot be read as one."""


@dataclass(frozen=True)
class Pin:
    """One ``name==version ; marker`` line of the lock (``marker`` is ``None`` if unconditional)."""

    name: str
    version: str
    marker: str | None
    line: int


@dataclass(frozen=True)
class Lock:
    """A parsed lock file: its pins by normalised name, its sha256 and its requirements stamp."""

    path: Path
    sha256: str
    requirements_sha256: str | None
    pins: dict[str, tuple[Pin, ...]]


def normalize_name(name: str) -> str:
    """The PEP 503 form of a distribution name: ``PyYAML`` and ``pyyaml`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def file_sha256(path: str | os.PathLike) -> str:
    # not nnflow.files.file_sha256: this module runs under a bare Python (make container), without NumPy
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each line with its backslash continuations joined."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        out.append((start, " ".join(p for p in pending if p)))
        pending = []
    if pending:
        out.append((start, " ".join(p for p in pending if p)))
    return out


def read_lock(path: str | os.PathLike) -> Lock:
    """Parse a ``--generate-hashes`` lock file: ``name==version [; marker] --hash=...`` lines.

    Anything else that is not a comment (an editable, a URL, an option, a range) is
    refused naming the file and line: a lock pins exact versions and nothing else.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LockFileError(f"{path}: cannot read the lock file ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockFileError(f"{path}: not UTF-8 text ({exc})") from exc
    stamp = None
    pins: dict[str, list[Pin]] = {}
    for number, line in _logical_lines(text):
        if line.startswith(STAMP_PREFIX):
            words = line[len(STAMP_PREFIX) :].split()
            stamp = words[0] if words else ""
            continue
        line = line.split(" #", 1)[0].strip() if not line.startswith("#") else ""
        if not line:
            continue
        requirement, *hashes = line.split(" --hash=")
        requirement, _, marker = (part.strip() for part in requirement.partition(";"))
        match = _PIN.fullmatch(requirement)
        if match is None:
            raise LockFileError(
                f"{path}, line {number}: expected 'name==version [; marker] --hash=sha256:...', "
                f"got {line[:80]!r}"
            )
        if not hashes:
            raise LockFileError(f"{path}, line {number}: {requirement} has no --hash (run `make lock`)")
        pin = Pin(match["name"], match["version"], marker or None, number)
        pins.setdefault(normalize_name(pin.name), []).append(pin)
    if not pins:
        raise LockFileError(f"{path}: no pinned requirement found (is it a lock file?)")
    sha256 = hashlib.sha256(data).hexdigest()
    return Lock(path, sha256, stamp, {name: tuple(p) for name, p in pins.items()})


# ----------------------------------------------------------------------------- pyproject


def locked_requirements(pyproject: str | os.PathLike) -> dict[str, list[str]]:
    """The requirement strings the lock is compiled from, by group: ``dependencies`` and
    each of :data:`LOCKED_EXTRAS`, and ``requires-python`` (a one-element list)."""
    path = Path(pyproject)
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise LockFileError(f"{path}: cannot read its [project] table ({exc})") from exc
    extras = project.get("optional-dependencies", {})
    missing = [extra for extra in LOCKED_EXTRAS if extra not in extras]
    if missing:
        raise LockFileError(
            f"{path}: [project.optional-dependencies] has no {', '.join(missing)} "
            f"(the lock covers {', '.join(LOCKED_EXTRAS)}; it has {', '.join(sorted(extras)) or 'none'})"
        )
    groups = {"dependencies": list(project.get("dependencies", []))}
    groups.update({extra: list(extras[extra]) for extra in LOCKED_EXTRAS})
    groups["requires-python"] = [project.get("requires-python", "")]
    return groups


def requirements_digest(pyproject: str | os.PathLike) -> str:
    """sha256 of :func:`locked_requirements`, each group sorted and stripped of whitespace,
    so reordering or reformatting a requirement keeps the digest and any other edit
    changes it."""
    groups = {
        group: sorted("".join(req.split()) for req in reqs)
        for group, reqs in locked_requirements(pyproject).items()
    }
    return hashlib.sha256(json.dumps(groups, sort_keys=True).encode()).hexdigest()


def _applicable(pins: tuple[Pin, ...], environment: dict[str, str] | None) -> list[Pin]:
    """The pins whose marker holds in ``environment`` (``None``: this interpreter)."""
    if all(pin.marker is None for pin in pins):
        return list(pins)
    from packaging.markers import Marker

    return [pin for pin in pins if pin.marker is None or Marker(pin.marker).evaluate(environment)]


def check_lock(pyproject: str | os.PathLike, lock_path: str | os.PathLike) -> list[str]:
    """Every way in which the lock disagrees with pyproject.toml (empty if it does not).

    The lock must carry the digest of pyproject.toml's current requirements, and pin each
    requirement (of ``dependencies`` and the extras in :data:`LOCKED_EXTRAS`) to a version
    inside its range, for :data:`TARGET_ENVIRONMENT`.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    lock = read_lock(lock_path)
    problems = []
    expected = requirements_digest(pyproject)
    if lock.requirements_sha256 is None:
        problems.append(f"{lock.path} has no '{STAMP_PREFIX} ...' line: regenerate it with `make lock`")
    elif lock.requirements_sha256 != expected:
        problems.append(
            f"{lock.path} was compiled from other requirements (sha256 {lock.requirements_sha256[:12]}) "
            f"than {pyproject}'s current ones ({expected[:12]}): run `make lock`"
        )
    for group, strings in locked_requirements(pyproject).items():
        if group == "requires-python":
            continue
        for text in strings:
            try:
                requirement = Requirement(text)
            except InvalidRequirement as exc:
                problems.append(f"{pyproject}: {group} requirement {text!r} is not valid ({exc})")
                continue
            if requirement.marker is not None and not requirement.marker.evaluate(TARGET_ENVIRONMENT):
                continue
            pins = _applicable(lock.pins.get(normalize_name(requirement.name), ()), TARGET_ENVIRONMENT)
            if not pins:
                problems.append(f"{text!r} ({group}) is not pinned in {lock.path}")
            for pin in pins:
                if not requirement.specifier.contains(pin.version, prereleases=True):
                    problems.append(
                        f"{text!r} ({group}) but {lock.path} line {pin.line} pins {pin.name}=={pin.version}"
                    )
    return problems


def stamp_lock(lock_path: str | os.PathLike, pyproject: str | os.PathLike) -> str:
    """Write the digest of pyproject.toml's requirements into the lock's header (replacing
    an older stamp) and return it. The lock must parse (:func:`read_lock`)."""
    lock_path = Path(lock_path)
    read_lock(lock_path)
    digest = requirements_digest(pyproject)
    text = lock_path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith(STAMP_PREFIX)]
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    stamp = f"{STAMP_PREFIX} {digest} (dependencies, extras {'+'.join(LOCKED_EXTRAS)}, requires-python)"
    lines.insert(header, stamp)
    fd, tmp = tempfile.mkstemp(dir=lock_path.parent, prefix=f".{lock_path.name}.tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, lock_path)
    return digest


# ----------------------------------------------------------------------------- installed


def _name_and_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and Version from the metadata headers only: the full email parse of ~80
    METADATA files costs ~40 ms per job, reading up to the first blank line ~4 ms."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:
            break
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    return name, version


def installed_distributions() -> dict[str, tuple[str, str]]:
    """``{normalised name: (name, version)}`` of the distributions importable here: the
    first one of each name on ``sys.path``, as ``import`` would find it."""
    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name, version = _name_and_version(dist)
        if name and version:
            found.setdefault(normalize_name(name), (name, version))
    return found


def installed_packages(installed: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """``name==version`` of every installed distribution, sorted by normalised name."""
    installed = installed_distributions() if installed is None else installed
    return [f"{name}=={version}" for _, (name, version) in sorted(installed.items())]


def compare_with_lock(lock: Lock, installed: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """How ``installed`` differs from the pins of ``lock`` that apply to this interpreter.

    ``differences``: a locked distribution missing or at another version (the environment
    is not the locked one); ``unlocked``: distributions installed beyond the lock (other
    than nnflow itself and pip/setuptools/wheel), which the lock says nothing about.
    """
    differences = []
    wanted: set[str] = set()
    for key, pins in sorted(lock.pins.items()):
        applicable = _applicable(pins, None)
        if not applicable:
            continue
        wanted.add(key)
        pin = applicable[0]
        have = installed.get(key)
        if have is None:
            differences.append(f"{pin.name} missing (lock: {pin.version})")
        elif have[1] != pin.version:
            differences.append(f"{pin.name} {have[1]} (lock: {pin.version})")
    ignored = wanted | INSTALLER_DISTRIBUTIONS | {"nnflow"}
    unlocked = [
        f"{name}=={version}" for key, (name, version) in sorted(installed.items()) if key not in ignored
    ]
    return {"matches": not differences, "differences": differences, "unlocked": unlocked}


def find_lock() -> Path | None:
    """The lock this process should have been installed from: ``$NNFLOW_LOCK`` if set (the
    container sets it), else ``requirements/lock.txt`` of the checkout nnflow is imported
    from; ``None`` for an install without a checkout (``pip install nnflow[workflow]``)."""
    configured = os.environ.get(LOCK_ENV_VARIABLE)
    if configured:
        return Path(configured)
    candidate = Path(nnflow.__file__).resolve().parents[2] / LOCK_PATH
    return candidate if candidate.is_file() else None


def lock_record(installed: dict[str, tuple[str, str]] | None = None) -> dict[str, Any] | None:
    """The ``lock`` entry of a run's environment: the lock file and its sha256, and how the
    installed distributions compare with it (:func:`compare_with_lock`); ``None`` if there
    is no lock. A lock that cannot be read is recorded with the error, not raised: the
    record of a finished computation must not fail on it."""
    path = find_lock()
    if path is None:
        return None
    installed = installed_distributions() if installed is None else installed
    try:
        lock = read_lock(path)
    except LockFileError as exc:
        return {"file": str(path), "sha256": None, "matches": False, "differences": [str(exc)],
                "unlocked": []}
    return {"file": str(path), "sha256": lock.sha256, **compare_with_lock(lock, installed)}


def container_image(checkout: str | os.PathLike = ".") -> Path:
    """The Apptainer image of the checkout's lock: ``container/nnflow-<sha256[:12]>.sif``.

    Named by the lock's digest, so that an image never outlives its lock: after
    ``make lock`` the Snakefile's ``container:`` names an image not built yet, and the jobs
    of an ``--sdm apptainer`` run rerun (Snakemake's software-env trigger hashes the name).
    """
    checkout = Path(checkout)
    return checkout / CONTAINER_DIR / f"nnflow-{file_sha256(checkout / LOCK_PATH)[:12]}.sif"


def main(argv: list[str] | None = None) -> int:
    """``python -m nnflow.lockfile stamp|check [LOCK [PYPROJECT]]`` (``make lock``) and
    ``python -m nnflow.lockfile image`` (``make container``)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["image"]:
        print(container_image())
        return 0
    if not args or args[0] not in ("stamp", "check") or len(args) > 3:
        print("usage: python -m nnflow.lockfile stamp|check [LOCK [PYPROJECT]] | image", file=sys.stderr)
        return 2
    lock_path = Path(args[1]) if len(args) > 1 else LOCK_PATH
    pyproject = Path(args[2]) if len(args) > 2 else Path("pyproject.toml")
    try:
        if args[0] == "stamp":
            print(f"{lock_path}: requirements sha256 {stamp_lock(lock_path, pyproject)}")
        problems = check_lock(pyproject, lock_path)
    except LockFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{lock_path} (sha256 {file_sha256(lock_path)}) agrees with {pyproject}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
