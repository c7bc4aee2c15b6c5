"""The source hash a job carries is derived from the imports of the code it runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nnflow.train.trainers import TRAINERS
from nnflow.workflow import sourcehash as sh

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A throw-away package named nnflow under tmp_path; returns its directory."""
    pkg = tmp_path / "nnflow"
    for rel, text in {"__init__.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return pkg


def test_closure_follows_every_import_form(tmp_path):
    pkg = _package(tmp_path, {
        "lib/__init__.py": "",
        "lib/a.py": "from nnflow.lib import b\n",             # a submodule named in a from-import
        "lib/b.py": "from .c import helper\n",                # relative import
        "lib/c.py": "def helper():\n    import nnflow.deep.d\n",  # inside a function
        "deep/__init__.py": "",
        "deep/d.py": "import numpy as np\nfrom nnflow.lib.c import helper as h\n",  # a cycle, and numpy
        "unused.py": "",
    })
    assert sh.closure(["nnflow.lib.a"], pkg) == [
        "nnflow", "nnflow.deep", "nnflow.deep.d",
        "nnflow.lib", "nnflow.lib.a", "nnflow.lib.b", "nnflow.lib.c",
    ]


def test_hash_changes_exactly_with_the_modules_in_the_closure(tmp_path):
    pkg = _package(tmp_path, {"a.py": "from nnflow import b\n", "b.py": "x = 1\n", "c.py": "y = 2\n"})
    before = sh.source_hash(sh.closure(["nnflow.a"], pkg), pkg)
    (pkg / "c.py").write_text("y = 3\n")
    assert sh.source_hash(sh.closure(["nnflow.a"], pkg), pkg) == before
    (pkg / "b.py").write_text("x = 2\n")
    assert sh.source_hash(sh.closure(["nnflow.a"], pkg), pkg) != before


def test_an_entry_that_is_not_a_module_is_refused(tmp_path):
    pkg = _package(tmp_path, {})
    with pytest.raises(ModuleNotFoundError, match="nnflow.nope"):
        sh.closure(["nnflow.nope"], pkg)


def test_the_solver_path_includes_the_sigmoid_it_runs():
    """fc_net's sigmoid comes from network2 and costs: a hand-kept list once missed both."""
    modules = sh.closure([TRAINERS["solver"]])
    for needed in ("nnflow.nn.fc_net", "nnflow.nn.costs", "nnflow.nn.network2", "nnflow.nn.layers",
                   "nnflow.nn.solver", "nnflow.nn.optim", "nnflow.train.checkpoint"):
        assert needed in modules
    assert TRAINERS["network2"] not in modules  # the other trainer is loaded by name, not imported


def test_the_train_script_imports_no_trainer():
    """train_run.py reaches the trainers only through the registry: each run hashes its own."""
    modules = sh.closure(sh.script_imports(SCRIPTS / "train_run.py"))
    assert not set(TRAINERS.values()) & set(modules)
    assert "nnflow.nn.network2" not in modules and "nnflow.nn.solver" not in modules


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_every_script_imports_resolve(script):
    entries = sh.script_imports(SCRIPTS / script)
    assert entries, f"{script} imports nothing from nnflow"
    assert "nnflow.workflow.jobs" in sh.closure(entries)
