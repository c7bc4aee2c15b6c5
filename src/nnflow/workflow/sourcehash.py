"""The source hash a job carries: the nnflow code it runs, derived from its imports.

A job's ``code`` param is the hash of every nnflow module its script imports,
directly or transitively, so editing any of them reruns exactly the jobs that
execute it (Snakemake's own code trigger sees only the script). The module set
is read from the sources themselves (``import`` statements, found with
:mod:`ast`), never from a hand-kept list that could fall behind the code.

Importing ``nnflow.a.b`` executes ``nnflow/__init__.py`` and
``nnflow/a/__init__.py`` too, so parent packages are part of the set. Imports
inside functions count as well: a function that runs imports them. A module
loaded by name at run time (a registry of module paths, as the trainers) is
added by the caller as an extra entry point.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "nnflow"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source file of the nnflow module ``name`` (``None`` if it is not one)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve_relative(module: str | None, level: int, importer: str, is_package: bool) -> str:
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def direct_imports(path: Path, name: str, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """The nnflow modules that the source file ``path`` (module ``name``) imports.

    Each file is parsed once per process and version (its modification time and size): a
    workflow's jobs hash ~20 closures of the same ~70 modules when the DAG is built."""
    stat = Path(path).stat()
    return set(_direct_imports(Path(path), name, package_dir, stat.st_mtime_ns, stat.st_size))


@functools.cache
def _direct_imports(path: Path, name: str, package_dir: Path, mtime_ns: int, size: int) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = _resolve_relative(node.module, node.level, name, is_package)
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from nnflow.nn import layers` imports a submodule
                found.add(f"{target}.{alias.name}")
    modules = set()
    for candidate in found:
        if module_file(candidate, package_dir) is not None:
            modules.add(candidate)
            modules.update(p for p in _parents(candidate) if module_file(p, package_dir) is not None)
    return frozenset(modules)


def closure(entries: Iterable[str], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every nnflow module that importing the modules ``entries`` executes, sorted."""
    todo = []
    for entry in entries:
        if module_file(entry, package_dir) is None:
            raise ModuleNotFoundError(f"{entry!r} is not a module of {package_dir}")
        todo += [entry, *(p for p in _parents(entry) if module_file(p, package_dir))]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(direct_imports(module_file(name, package_dir), name, package_dir) - seen)
    return sorted(seen)


def script_imports(script: str | os.PathLike, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The nnflow modules a workflow script imports itself (its entry points)."""
    path = Path(script)
    return sorted(direct_imports(path, "__main__", package_dir))


def source_hash(modules: Iterable[str], package_dir: Path = PACKAGE_DIR) -> str:
    """Short SHA-256 over the names and sources of ``modules`` (order does not matter)."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(module_file(name, package_dir).read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def job_source_hash(script: str, *extra_entries: str) -> str:
    """The source hash of a job running ``script`` (plus modules it loads by name)."""
    return source_hash(closure([*script_imports(script), *extra_entries]))
