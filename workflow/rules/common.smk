# Input functions and targets. The configuration is resolved in the package
# (nnflow.workflow.config): validated against the schema (registry names from the
# package), defaults filled in from the schema, the runs expanded and validated.
import os
from pathlib import Path

from nnflow.data.fetch import FetchOptions
from nnflow.data.prepared import ARRAYS as PREPARED_ARRAYS
from nnflow.data.prepare import get_format
from nnflow.pagerank.cases import GRAPH_ANALYSIS_FILES, GRAPH_FIGURE_FILES, case_mem_mb, scale_cases
from nnflow.report.kinds import figure_kind
from nnflow.train.grid import canonical_json
from nnflow.train.trainers import trainer_module
from nnflow.workflow.config import (
    ConfigError,
    enabled_section,
    load_schema,
    resolve_config,
    resolve_datasets,
    theory_section,
)
from nnflow.workflow.sourcehash import job_source_hash

SCHEMA = Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
try:
    RUNS = resolve_config(config, load_schema(SCHEMA))
    DATASETS = resolve_datasets(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None

RESULTS = "results"
# Caption templates are read by the figure jobs; an absolute path keeps them
# found when the workflow runs in another directory (--directory).
REPORT_TEMPLATES = Path(workflow.basedir) / "workflow" / "report"
DATA_DIR = config["data"]["prepared_dir"]
PREPARED_FILES = [f"{name}.npy" for name in PREPARED_ARRAYS]


# Each job's `code` param is the source hash of every nnflow module its script imports,
# directly or transitively (nnflow.workflow.sourcehash reads the imports): editing any
# module a job executes reruns exactly the jobs that execute it. Snakemake's own code
# trigger sees only the script. A training run adds its trainer, which run.py loads by name.
SCRIPTS_DIR = Path(workflow.current_basedir).parent / "scripts"


def code_hash(script, *modules):
    return job_source_hash(str(SCRIPTS_DIR / script), *modules)


def report_item(path, caption, category, subcategory):
    """An output shown in the HTML report with the caption file written beside it."""
    return report(path, caption=str(Path(caption).resolve()), category=category, subcategory=subcategory)


def data_mirror():
    """The mirror directory: NNFLOW_DATA_MIRROR overrides config['data']['mirror']."""
    return os.environ.get("NNFLOW_DATA_MIRROR") or config["data"]["mirror"] or None


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


def all_outputs():
    """Everything the default target builds, stage by stage."""
    return [
        *targets_data(),
        *targets_training(),
        *targets_aggregate(),
        *targets_theory(),
        *targets_pagerank(),
    ]


# ---- Data stage (rules in data.smk)

DOWNLOAD_DIR = config["data"]["download_dir"]


def fetch_options():
    """Transport settings of the fetch rules (not part of the rerun trigger, see data.smk)."""
    return FetchOptions(
        mirror=data_mirror(),
        timeout=float(config["data"]["timeout_seconds"]),
        retries=int(config["data"]["retries"]),
    )


def dataset_source(name):
    """The declaration of dataset `name` as an object param (untracked, see data.smk)."""
    return lambda wildcards: DATASETS[name]


def declared_files(name):
    """The files of dataset `name` with their published checksums (a tracked param)."""
    return {f.role: {"name": f.name, "md5": f.md5, "md5_of": f.md5_of} for f in DATASETS[name].files}


def downloads(dataset):
    """Named outputs of fetch_<dataset>: its files by role and the sources record."""
    files = {f.role: f"{DOWNLOAD_DIR}/{dataset}/{f.name}" for f in DATASETS[dataset].files}
    files["record"] = f"{DOWNLOAD_DIR}/{dataset}/sources.json"
    return files


def prepare_settings(dataset):
    """The settings that change the prepared arrays: the format's defaults and the declaration's."""
    source = DATASETS[dataset]
    return {**get_format(source.format).defaults, **source.settings}


def targets_data():
    """The prepared datasets that the enabled experiments use."""
    return [f for ds in sorted({r.dataset for r in RUNS.values()}) for f in prepared(ds)]


# ---- Training runs (rules in train.smk)

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
    return run_of(wildcards).resources["threads"]


def run_mem_mb(wildcards):
    return run_of(wildcards).resources["mem_mb"]


def run_runtime(wildcards):
    return run_of(wildcards).resources["runtime"]


# Checkpoints live outside the declared outputs: Snakemake deletes the outputs of a
# killed job, the checkpoint survives, and the rerun resumes from it.
CHECKPOINTS = f"{RESULTS}/checkpoints"


def search_experiments():
    """Experiments whose random search is followed by a final retraining (`search` + `final`)."""
    return [
        e for e in dict.fromkeys(r.experiment for r in RUNS.values())
        if {"search", "final"} <= set(config["experiments"][e])
    ]


def search_candidates(wildcards):
    return [f"{run_dir(r)}/run.json" for r in runs_of(wildcards.experiment)]


def search_cfg(wildcards):
    return config["experiments"][wildcards.experiment]


def run_files(run):
    """Every declared output of a run (solver runs also keep each mini-batch's loss)."""
    names = list(RUN_OUTPUTS.values()) + (["iterations.csv"] if run.trainer == "solver" else [])
    return [f"{run_dir(run)}/{name}" for name in names]


def targets_training():
    return [path for run in RUNS.values() for path in run_files(run)]


# ---- Tables and figures (rules in aggregate.smk)

EXPERIMENTS_DIR = f"{RESULTS}/experiments"


def trained_experiments():
    """Experiments with runs, in config order: each gets its tables in metrics/summary.csv."""
    return list(dict.fromkeys(r.experiment for r in RUNS.values()))


def plotted_experiments():
    """Trained experiments that declare a figure kind (config `figure:`)."""
    return [e for e in trained_experiments() if "figure" in config["experiments"][e]]


def experiment_run_files(experiment):
    runs = runs_of(experiment)
    return {
        "metrics": [f"{run_dir(r)}/metrics.csv" for r in runs],
        "run_info": [f"{run_dir(r)}/run.json" for r in runs],
    }


# Files a figure kind may read beyond the experiment's tables (FigureKind.extra_inputs),
# written by the search rules of train.smk.
SEARCH_OUTPUTS = {
    "chosen": "chosen.json",
    "final_metrics": "final/metrics.csv",
    "final_test": "final/test.json",
}


def figure_inputs(experiment):
    kind = figure_kind(config["experiments"][experiment]["figure"])
    dataset = runs_of(experiment)[0].dataset
    return {
        "metrics": f"{EXPERIMENTS_DIR}/{experiment}/metrics.csv",
        "summary": f"{EXPERIMENTS_DIR}/{experiment}/summary.csv",
        "provenance": f"{DATA_DIR}/{dataset}/provenance.json",
        **{name: f"{EXPERIMENTS_DIR}/{experiment}/{SEARCH_OUTPUTS[name]}" for name in kind.extra_inputs},
    }


def targets_aggregate():
    if not trained_experiments():
        return []
    figures = [f"{EXPERIMENTS_DIR}/{e}/figure.png" for e in plotted_experiments()]
    tables = ["metrics.csv", "summary.csv", "environment.csv"]
    return figures + [f"{RESULTS}/{name}" for name in tables]


# ---- Theory stages (rules in theory.smk)

THEORY_DIR = f"{RESULTS}/theory"
UNSTABLE_DIR = f"{THEORY_DIR}/unstable"
COMPLEX_DIR = f"{THEORY_DIR}/complex_backprop"
THEORY_CATEGORY = "MNIST sheet (Blatt 10)"


UNSTABLE_THEORY_CFG = theory_section(config["experiments"])
COMPLEX_BACKPROP_CFG = enabled_section(config["experiments"], "complex_backprop")


def targets_theory():
    """Outputs of the theory rules for `rule all` (those of disabled/missing sections are skipped)."""
    out = []
    if UNSTABLE_THEORY_CFG is not None:
        out += [f"{UNSTABLE_DIR}/numbers.json", f"{UNSTABLE_DIR}/lognormal.png"]
    if COMPLEX_BACKPROP_CFG is not None:
        out += [f"{COMPLEX_DIR}/numbers.json", f"{COMPLEX_DIR}/training.png"]
    return out


# ---- PageRank stage (rules in pagerank.smk)

PR_CFG = config["pagerank"]
PR_DIR = f"{RESULTS}/pagerank"
PR_CATEGORY = "CIFAR sheet (Aufgabe 12): PageRank"
PR_TEMPLATES = {
    name: str(REPORT_TEMPLATES / f"pagerank_{name}.rst")
    for name in ("hyperlink_matrix", "eigenvalues", "iteration", "convergence", "ranking", "scale")
}


PR_SCALE_CASES = scale_cases(PR_CFG)


def pr_graphs():
    return PR_CFG["graphs"] if PR_CFG["enabled"] else {}


def _pr_graph_files(name):
    return {key: f"{PR_DIR}/{name}/{file}" for key, file in GRAPH_ANALYSIS_FILES.items()}


def _pr_figure_files(name):
    return {key: f"{PR_DIR}/{name}/{file}" for key, file in GRAPH_FIGURE_FILES.items()}


def targets_pagerank():
    """Everything the PageRank stage builds (empty when pagerank.enabled is false)."""
    if not PR_CFG["enabled"]:
        return []
    out = []
    for name in pr_graphs():
        out += list(_pr_graph_files(name).values()) + list(_pr_figure_files(name).values())
    if PR_SCALE_CASES:
        out += [f"{PR_DIR}/scale/scale.csv", f"{PR_DIR}/scale/scale.png", f"{PR_DIR}/scale/scale.pdf"]
        out.append(f"{PR_DIR}/scale/caption.rst")
    return out
