# Config validation, run expansion and the target list of `rule all`.
import functools
import hashlib
import os
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from snakemake.utils import validate

import nnflow
from nnflow.runs import canonical_json, expand_runs


validate(config, schema="../schemas/config.schema.yaml")

SCHEMA_PATH = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
if not SCHEMA_PATH.exists():  # Snakefile inside workflow/
    SCHEMA_PATH = Path(workflow.basedir) / "schemas" / "config.schema.yaml"


def _validate_run_params(runs):
    """Grid and search values are checked against the same schema as `params`."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    for run in runs.values():
        sub = dict(schema["definitions"][f"{run.trainer}_params"])
        sub["definitions"] = schema["definitions"]
        errors = sorted(Draft202012Validator(sub).iter_errors(run.params), key=str)
        if errors:
            e = errors[0]
            key = ".".join(str(p) for p in e.absolute_path) or "(params)"
            raise ValueError(f"experiments.{run.experiment} (run {run.run_id}): {key}: {e.message}")


try:
    RUNS = expand_runs(config["experiments"])
    _validate_run_params(RUNS)
except ValueError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None

RESULTS = "results"
# Caption templates are read by the figure jobs; an absolute path keeps them
# found when the workflow runs in another directory (--directory).
REPORT_TEMPLATES = Path(workflow.basedir) / "workflow" / "report"
DATA_DIR = config["data"]["prepared_dir"]
PREPARED_FILES = ["X_train.npy", "y_train.npy", "X_val.npy", "y_val.npy", "X_test.npy", "y_test.npy"]


NNFLOW_SOURCE = Path(nnflow.__file__).parent

# The package modules each kind of job computes with. Their source hash is a
# param of the job, so editing e.g. network2.py reruns exactly the network2
# runs and what aggregates them (Snakemake's own code trigger sees only scripts).
CODE_MODULES = {
    "network2": ["network2", "costs", "init", "layers", "experiments", "model_io"],
    "solver": ["fc_net", "solver", "optim", "init", "layers", "experiments", "model_io"],
    "tables": ["aggregate"],
    "figures": ["figures", "report", "aggregate"],
}


@functools.cache
def code_hash(kind):
    """Short SHA-256 of the source of the modules in CODE_MODULES[kind]."""
    digest = hashlib.sha256()
    for module in sorted(CODE_MODULES[kind]):
        digest.update(module.encode())
        digest.update((NNFLOW_SOURCE / f"{module}.py").read_bytes())
    return digest.hexdigest()[:16]


def data_mirror():
    """The mirror directory: NNFLOW_DATA_MIRROR overrides config['data']['mirror']."""
    return os.environ.get("NNFLOW_DATA_MIRROR") or config["data"].get("mirror") or None


def prepared(dataset):
    """The prepared arrays and provenance of one dataset (inputs of a training job)."""
    files = [f"{DATA_DIR}/{dataset}/{name}" for name in PREPARED_FILES]
    return files + [f"{DATA_DIR}/{dataset}/provenance.json"]


def experiments_with(trainer):
    return sorted({r.experiment for r in RUNS.values() if r.trainer == trainer})


def wildcard_alternatives(names):
    """A regex matching exactly these names (and nothing if the list is empty)."""
    return "|".join(names) if names else "(?!x)x"


def runs_of(experiment):
    return [r for r in RUNS.values() if r.experiment == experiment]


def run_of(wildcards):
    return RUNS[f"{wildcards.experiment}/{wildcards.run}"]


def run_dir(run):
    return f"{RESULTS}/runs/{run.run_id}"


def enabled_experiments():
    return [name for name, cfg in config["experiments"].items() if cfg.get("enabled", True)]


def all_outputs():
    """Everything `rule all` builds: each stage's rule file defines its targets_* helper."""
    return [
        *targets_data(),
        *targets_training(),
        *targets_aggregate(),
        *targets_theory(),
        *targets_pagerank(),
    ]
