"""The layout's rules, checked on the sources: dependencies point one way, the network
library needs NumPy only, scripts are one call, and the schema's enums are the registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnflow.data.prepare import FORMATS
from nnflow.nn import costs, fc_net, optim
from nnflow.pagerank.graphs import GENERATORS
from nnflow.report.kinds import FIGURE_KINDS
from nnflow.train.trainers import TRAINERS
from nnflow.workflow import sourcehash as sh
from nnflow.workflow.config import load_schema

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "nnflow"
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
DEFS = SCHEMA["definitions"]

# Each layer may import itself, the layers listed, and the shared helpers.
SHARED = {"nnflow", "nnflow.files", "nnflow.runtime"}
ALLOWED = {
    "nn": {"nn"},
    "data": {"data"},
    "train": {"train", "nn", "data"},
    "report": {"report", "train", "nn", "data"},
    "theory": {"theory", "report"},
    "pagerank": {"pagerank", "report"},
    "workflow": {"workflow", "data", "train", "report", "pagerank"},
    "compare": {"compare", "workflow", "train", "report", "pagerank"},
}
# Modules outside every layer and the layers they may import: `python -m nnflow` is the
# command line on top of the compare layer.
ENTRY_POINTS = {"nnflow.__main__": {"compare"}}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_dependencies_point_one_way():
    violations = []
    for name, path in _modules():
        layer = _layer(name)
        for target in sh.direct_imports(path, name):
            if target in SHARED or _layer(target) is None and target.count(".") <= 1:
                continue
            allowed = ALLOWED[layer] if layer is not None else ENTRY_POINTS.get(name, set())
            if _layer(target) not in allowed:
                violations.append(f"{name} -> {target}")
    assert violations == []


def test_every_layer_is_in_the_table():
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert layers == set(ALLOWED)


def test_package_files_import_nothing():
    """An __init__ that imports its siblings would make every job depend on all of them."""
    for path in PACKAGE.rglob("__init__.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
        assert sh.direct_imports(path, name) == set(), path


def test_the_network_library_needs_numpy_only():
    """nnflow.nn imports and trains with SciPy, pandas, matplotlib, yaml, Snakemake and numba
    (the optional fused update kernels) unavailable."""
    modules = [name for name, _ in _modules() if name.startswith("nnflow.nn")]
    code = (
        "import sys\n"
        "for blocked in ('scipy', 'pandas', 'matplotlib', 'yaml', 'snakemake', 'jsonschema', 'numba'):\n"
        "    sys.modules[blocked] = None\n"
        f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
        "from nnflow.nn import network2\nimport numpy as np\n"
        "net = network2.Network([4, 3, 2], seed=0)\n"
        "net.SGD((np.ones((6, 4)), np.zeros(6, dtype=int)), 1, 3, 0.1)\n"
        "from nnflow.nn import optim\nfor rule in optim.UPDATE_RULES.values():\n"
        "    rule(np.ones((6, 4)), np.ones((6, 4)))\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


@pytest.mark.parametrize("script", sorted((ROOT / "workflow" / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_workflow_scripts_are_one_call_into_the_package(script):
    lines = [line for line in script.read_text().splitlines() if line.strip()]
    assert len(lines) <= 25, f"{script.name}: {len(lines)} lines; move the logic into nnflow"
    assert "with job(snakemake) as smk:" in script.read_text()


def _registry_nodes(node, found):
    if isinstance(node, dict):
        if "x-registry" in node:
            found.append(node)
        for value in node.values():
            _registry_nodes(value, found)
    elif isinstance(node, list):
        for value in node:
            _registry_nodes(value, found)
    return found


def test_schema_names_come_from_the_package_registries():
    """Registry-backed keys say `x-registry` and hold no copy of the names."""
    nodes = _registry_nodes(SCHEMA, [])
    assert all("enum" not in node for node in nodes)
    refs = {node["x-registry"] for node in nodes}
    assert refs == {
        "nnflow.nn.costs:COSTS", "nnflow.nn.fc_net:ACTIVATIONS", "nnflow.nn.optim:UPDATE_RULES",
        "nnflow.nn.solver:SAMPLINGS", "nnflow.train.trainers:TRAINERS",
        "nnflow.train.trainers.network2:NETWORK2_INIT", "nnflow.train.trainers.solver:WEIGHT_INITS",
        "nnflow.train.trainers.solver:NORMALIZATIONS", "nnflow.report.kinds:FIGURE_KINDS",
        "nnflow.data.prepare:FORMATS", "nnflow.pagerank.graphs:GENERATORS",
        "nnflow.pagerank.graphs:DELIMITERS",
    }
    resolved = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    solver = resolved["definitions"]["solver_params"]["properties"]
    assert solver["update_rule"]["enum"] == list(optim.UPDATE_RULES)
    assert solver["activation"]["enum"] == list(fc_net.ACTIVATIONS)
    assert resolved["definitions"]["network2_params"]["properties"]["cost"]["enum"] == list(costs.COSTS)
    assert resolved["definitions"]["figure_kind"]["enum"] == list(FIGURE_KINDS)
    assert resolved["definitions"]["training_experiment"]["properties"]["trainer"]["enum"] == list(TRAINERS)
    scale = resolved["properties"]["pagerank"]["properties"]["scale"]["properties"]
    assert scale["generators"]["items"]["enum"] == list(GENERATORS)
    assert resolved["definitions"]["dataset"]["properties"]["format"]["enum"] == list(FORMATS)


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


def test_defaults_the_schema_shares_with_the_library_are_equal():
    """The damping factor has a library default (functions callable without a config) and a
    config default; they are one fact, so they must agree."""
    from nnflow.pagerank.ranking import DEFAULT_ALPHA

    assert SCHEMA["properties"]["pagerank"]["properties"]["alpha"]["default"] == DEFAULT_ALPHA


def test_only_the_drawing_module_chooses_the_backend_and_nothing_uses_pyplot():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.name != "drawing.py":
            assert "matplotlib.use(" not in text, path
        assert "import matplotlib.pyplot" not in text and "from matplotlib import pyplot" not in text, path
