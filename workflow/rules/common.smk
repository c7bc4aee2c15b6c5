# Config validation, run expansion and the target list of `rule all`.
import os
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from snakemake.utils import validate

from nnflow.train.grid import canonical_json, expand_runs
from nnflow.train.trainers import trainer_module
from nnflow.workflow.sourcehash import job_source_hash


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


# Each job's `code` param is the source hash of every nnflow module its script imports,
# directly or transitively (nnflow.workflow.sourcehash reads the imports): editing any
# module a job executes reruns exactly the jobs that execute it. Snakemake's own code
# trigger sees only the script. A training run adds its trainer, which run.py loads by name.
SCRIPTS_DIR = Path(workflow.current_basedir).parent / "scripts"


def code_hash(script, *modules):
    return job_source_hash(str(SCRIPTS_DIR / script), *modules)


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
    """Everything the default target builds, stage by stage."""
    return [
        *targets_data(),
        *targets_training(),
        *targets_aggregate(),
        *targets_theory(),
        *targets_pagerank(),
    ]


# --------------------------------------------------------------------------------------
# Data stage (rules in data.smk)
# --------------------------------------------------------------------------------------

from nnflow.data.fetch import FetchOptions


from nnflow.data.sources import DATASETS as _DATA_SOURCES


DOWNLOAD_DIR = config["data"].get("download_dir", "results/downloads")


def _data_cfg(key, default=None):
    return config["data"].get(key, default)


def fetch_options():
    """Transport settings of the fetch rules (not part of the rerun trigger, see above)."""
    return FetchOptions(
        mirror=data_mirror(),
        timeout=float(_data_cfg("timeout_seconds", 60)),
        retries=int(_data_cfg("retries", 4)),
    )


def accepts_mirror(dataset):
    return dataset in _data_cfg("accept_mirror_checksums", ["cifar10"])


def downloads(dataset):
    """Named outputs of fetch_<dataset>: the canonical files and the sources record."""
    files = {
        f.name.split(".")[0].replace("-", "_"): f"{DOWNLOAD_DIR}/{dataset}/{f.name}"
        for f in _DATA_SOURCES[dataset].files
    }
    files["record"] = f"{DOWNLOAD_DIR}/{dataset}/sources.json"
    return files


def prepare_settings(dataset):
    """The settings that change the prepared arrays (defaults as in the schema)."""
    from nnflow.data.prepare import DEFAULTS

    return {**DEFAULTS[dataset], **config["data"].get(dataset, {})}


def targets_data():
    """The prepared datasets that the enabled experiments use."""
    return [f for ds in sorted({r.dataset for r in RUNS.values()}) for f in prepared(ds)]


# --------------------------------------------------------------------------------------
# Training runs (rules in train.smk)
# --------------------------------------------------------------------------------------

RUN_OUTPUTS = {
    "metrics": "metrics.csv",
    "model": "model.npz",
    "model_meta": "model.json",
    "run_info": "run.json",
}


def run_outputs(prefix):
    return {key: f"{prefix}/{name}" for key, name in RUN_OUTPUTS.items()}


def run_input(wildcards):
    return prepared(run_of(wildcards).dataset)


def run_spec(wildcards):
    return canonical_json(run_of(wildcards).spec())


def run_threads(wildcards):
    return run_of(wildcards).resources.get("threads", 1)


def run_mem_mb(wildcards):
    return run_of(wildcards).resources.get("mem_mb", 2000)


def run_runtime(wildcards):
    return run_of(wildcards).resources.get("runtime", 30)


# Checkpoints live outside the declared outputs: Snakemake deletes the outputs of a
# killed job, the checkpoint survives, and the rerun resumes from it.
CHECKPOINTS = f"{RESULTS}/checkpoints"


def challenge_candidates(wildcards):
    return [f"{run_dir(r)}/run.json" for r in runs_of("cifar_challenge")]


CHALLENGE = f"{RESULTS}/experiments/cifar_challenge"


def run_files(run):
    """Every declared output of a run (solver runs also keep each mini-batch's loss)."""
    names = list(RUN_OUTPUTS.values()) + (["iterations.csv"] if run.trainer == "solver" else [])
    return [f"{run_dir(run)}/{name}" for name in names]


def targets_training():
    return [path for run in RUNS.values() for path in run_files(run)]


# --------------------------------------------------------------------------------------
# Tables and figures (rules in aggregate.smk)
# --------------------------------------------------------------------------------------

EXPERIMENTS_DIR = f"{RESULTS}/experiments"


REPORT_CATEGORY = {
    "mnist_cost": ("MNIST sheet (Blatt 10)", "25a cost functions"),
    "mnist_overfitting": ("MNIST sheet (Blatt 10)", "25b/c overfitting and L2"),
    "unstable_gradients": ("MNIST sheet (Blatt 10)", "26 unstable gradients"),
    "cifar_overfitting": ("CIFAR sheet (Aufgabe 11)", "11a overfitting 2,500 pairs"),
    "cifar_optimizers": ("CIFAR sheet (Aufgabe 11)", "11b update rules"),
    "cifar_challenge": ("CIFAR sheet (Aufgabe 11)", "11c accuracy challenge"),
}


def experiment_run_files(experiment):
    runs = runs_of(experiment)
    return {
        "metrics": [f"{run_dir(r)}/metrics.csv" for r in runs],
        "run_info": [f"{run_dir(r)}/run.json" for r in runs],
    }


def plotted_experiments():
    return [name for name in REPORT_CATEGORY if runs_of(name)]


def _figure_inputs(experiment):
    inputs = {
        "metrics": f"{EXPERIMENTS_DIR}/{experiment}/metrics.csv",
        "summary": f"{EXPERIMENTS_DIR}/{experiment}/summary.csv",
    }
    if experiment == "cifar_challenge":
        inputs["chosen"] = f"{EXPERIMENTS_DIR}/cifar_challenge/chosen.json"
        inputs["final_metrics"] = f"{EXPERIMENTS_DIR}/cifar_challenge/final/metrics.csv"
        inputs["final_test"] = f"{EXPERIMENTS_DIR}/cifar_challenge/final/test.json"
    dataset = runs_of(experiment)[0].dataset
    inputs["provenance"] = f"{DATA_DIR}/{dataset}/provenance.json"
    return inputs


def targets_aggregate():
    if not plotted_experiments():
        return []
    figures = [f"{EXPERIMENTS_DIR}/{e}/figure.png" for e in plotted_experiments()]
    tables = ["metrics.csv", "summary.csv", "environment.csv"]
    return figures + [f"{RESULTS}/{name}" for name in tables]


# --------------------------------------------------------------------------------------
# Theory stages (rules in theory.smk)
# --------------------------------------------------------------------------------------

THEORY_DIR = f"{RESULTS}/theory"


UNSTABLE_DIR = f"{THEORY_DIR}/unstable"


COMPLEX_DIR = f"{THEORY_DIR}/complex_backprop"


THEORY_CATEGORY = "MNIST sheet (Blatt 10)"


def _unstable_theory_cfg():
    return config["experiments"].get("unstable_gradients", {}).get("theory")


def _complex_backprop_cfg():
    return config["experiments"].get("complex_backprop")


def _theory_report(path, caption, subcategory):
    return report(
        path,
        caption=str(Path(caption).resolve()),
        category=THEORY_CATEGORY,
        subcategory=subcategory,
    )


def targets_theory():
    """Outputs of the theory rules for `rule all` (those of disabled/missing sections are skipped)."""
    out = []
    ug = config["experiments"].get("unstable_gradients", {})
    if _unstable_theory_cfg() is not None and ug.get("enabled", True):
        out += [f"{UNSTABLE_DIR}/numbers.json", f"{UNSTABLE_DIR}/lognormal.png"]
    cb = _complex_backprop_cfg()
    if cb is not None and cb.get("enabled", True):
        out += [f"{COMPLEX_DIR}/numbers.json", f"{COMPLEX_DIR}/training.png"]
    return out


# --------------------------------------------------------------------------------------
# PageRank stage (rules in pagerank.smk)
# --------------------------------------------------------------------------------------

PR_CFG = config.get("pagerank", {})


PR_DIR = f"{RESULTS}/pagerank"


PR_CATEGORY = "CIFAR sheet (Aufgabe 12): PageRank"


PR_TEMPLATES = {
    name: str(REPORT_TEMPLATES / f"pagerank_{name}.rst")
    for name in ("hyperlink_matrix", "eigenvalues", "iteration", "convergence", "ranking", "scale")
}


def _pr_enabled():
    return bool(PR_CFG.get("enabled", True))


def _pr_graphs():
    return PR_CFG.get("graphs", {}) if _pr_enabled() else {}


def _pr_scale_cfg():
    return PR_CFG.get("scale", {})


def _pr_scale_specs():
    """case name -> everything that defines the case (generated graphs and edge-list files)."""
    scale = _pr_scale_cfg()
    if not (_pr_enabled() and scale.get("enabled", True)):
        return {}
    specs = {}
    for kind in scale.get("generators", ["erdos_renyi", "scale_free"]):
        for n in scale.get("sizes", [100000, 1000000]):
            specs[f"{kind}_{n}"] = {
                "kind": kind,
                "n": int(n),
                "mean_out_degree": scale.get("mean_out_degree", 10),
                "dangling_fraction": scale.get("dangling_fraction", 0.05),
                "exponent": scale.get("exponent", 2.5),
                "seed": scale.get("seed", 2026),
            }
    for name, f in scale.get("files", {}).items():
        specs[f"file_{name}"] = {
            "kind": "file",
            "path": f["path"],
            "index_base": f.get("index_base", 1),
            "n_pages": f.get("n_pages"),
            "delimiter": f.get("delimiter", "auto"),
        }
    return specs


def _pr_case_links(case):
    spec = _pr_scale_specs()[case]
    if spec["kind"] == "file":
        return max(1, os.path.getsize(spec["path"]) // 8) if os.path.exists(spec["path"]) else 10**7
    return int(spec["n"] * spec["mean_out_degree"])


def _pr_report(path, caption, subcategory):
    return report(
        path, caption=str(Path(caption).resolve()), category=PR_CATEGORY, subcategory=subcategory
    )


def _pr_graph_files(name):
    return {
        "matrix": f"{PR_DIR}/{name}/hyperlink_matrix.csv",
        "table": f"{PR_DIR}/{name}/hyperlink_matrix_table.rst",
        "eigenvalues": f"{PR_DIR}/{name}/eigenvalues.csv",
        "iteration": f"{PR_DIR}/{name}/iteration.csv",
        "pagerank": f"{PR_DIR}/{name}/pagerank.csv",
        "convergence": f"{PR_DIR}/{name}/convergence.csv",
        "summary": f"{PR_DIR}/{name}/summary.json",
    }


def _pr_figure_files(name):
    out = {}
    for fig in ("eigenvalues", "iteration", "convergence", "ranking"):
        out[fig] = f"{PR_DIR}/{name}/{fig}.png"
        out[f"{fig}_pdf"] = f"{PR_DIR}/{name}/{fig}.pdf"
    for cap in ("matrix", "eigenvalues", "iteration", "convergence", "ranking"):
        out[f"cap_{cap}"] = f"{PR_DIR}/{name}/captions/{cap}.rst"
    return out


def targets_pagerank():
    """Everything the PageRank stage builds (empty when pagerank.enabled is false)."""
    if not _pr_enabled():
        return []
    out = []
    for name in _pr_graphs():
        out += list(_pr_graph_files(name).values()) + list(_pr_figure_files(name).values())
    if _pr_scale_specs():
        out += [f"{PR_DIR}/scale/scale.csv", f"{PR_DIR}/scale/scale.png", f"{PR_DIR}/scale/scale.pdf"]
        out.append(f"{PR_DIR}/scale/caption.rst")
    return out
