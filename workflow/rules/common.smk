# Shared input functions and the default target. The configuration is resolved in the
# package (nnflow.workflow.config: validated against the schema, registry names from the
# package, defaults filled in, runs expanded and checked), and every path a rule reads or
# writes comes from one nnflow.workflow.layout.Layout; what is left here needs Snakemake
# itself (wildcards, report(), the workflow's directories).
import os
from pathlib import Path

from nnflow.data.download import FetchOptions
from nnflow.data.prepare import get_format
from nnflow.pagerank.cases import case_mem_mb
from nnflow.report.kinds import figure_kind
from nnflow.train.grid import canonical_json
from nnflow.train.trainers import trainer_module
from nnflow.workflow.config import (
    ConfigError,
    apply_overrides,
    check_config_file,
    check_run_shapes,
    dataset_shapes,
    load_schema,
    resolve_config,
    resolve_datasets,
)
from nnflow.workflow.layout import Layout
from nnflow.workflow.sourcehash import job_source_hash

SCHEMA = Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
try:
    for path in workflow.configfiles:
        check_config_file(path)
    apply_overrides(config, workflow.config_settings.overwrite_config)
    RUNS = resolve_config(config, load_schema(SCHEMA))
    DATASETS = resolve_datasets(config)
    L = Layout(config, RUNS, DATASETS)
    check_run_shapes(RUNS, dataset_shapes(DATASETS, L.data_dir))
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None

RESULTS = L.results
# What the short jobs (tables, figures, the search's selection) ask a scheduler for. Every
# computing rule declares mem_mb and runtime itself, so a command line's
# --default-resources (e.g. slurm_partition=..., which replaces the profile's whole list)
# leaves no job without them.
SMALL_JOB = {"mem_mb": 1000, "runtime": 10}
# Caption templates are read by the figure jobs; an absolute path keeps them
# found when the workflow runs in another directory (--directory).
REPORT_TEMPLATES = Path(workflow.basedir) / "workflow" / "report"
# Each job's `code` param is the source hash of every nnflow module its script imports,
# directly or transitively (nnflow.workflow.sourcehash reads the imports): editing any
# module a job executes reruns exactly the jobs that execute it. Snakemake's own code
# trigger sees only the script. A training run adds its trainer, which run.py loads by name.
SCRIPTS_DIR = Path(workflow.current_basedir).parent / "scripts"
THEORY_CATEGORY = "MNIST sheet (Blatt 10)"
PR_CATEGORY = "CIFAR sheet (Aufgabe 12)"
PR_TEMPLATES = {
    name: str(REPORT_TEMPLATES / f"pagerank_{name}.rst")
    for name in ("hyperlink_matrix", "eigenvalues", "iteration", "convergence", "ranking", "scale")
}


def code_hash(script, *modules):
    return job_source_hash(str(SCRIPTS_DIR / script), *modules)


def item_labels(label):
    """The report's label of an item: its name in the list of its subcategory, which the
    report sorts by it (the sheets' lettered parts are labelled "(a) ...", "(b) ...")."""
    return {"item": label}


def report_item(path, caption, category, subcategory, label):
    """An output shown in the HTML report with the caption file written beside it."""
    return report(
        path,
        caption=str(Path(caption).resolve()),
        category=category,
        subcategory=subcategory,
        labels=item_labels(label),
    )


def experiment_report(experiment):
    """Where an experiment's items go in the report: its config ``report`` (category,
    subcategory), or, for an experiment without a figure, the Tables category."""
    spec = config["experiments"][experiment].get("report")
    if spec:
        return spec
    return {"category": "Tables", "subcategory": f"runs of {experiment}"}


def wildcard_alternatives(names):
    """A regex matching exactly these names (and nothing if the list is empty)."""
    return "|".join(names) if names else "(?!x)x"


def fetch_options():
    """Transport settings of the fetch rules (not part of the rerun trigger, see data.smk)."""
    mirror = os.environ.get("NNFLOW_DATA_MIRROR") or config["data"]["mirror"] or None
    return FetchOptions.from_config(config["data"], mirror=mirror)


def dataset_source(name):
    """The declaration of dataset `name` as an object param (untracked, see data.smk)."""
    return lambda wildcards: DATASETS[name]


def run_of(wildcards):
    return RUNS[f"{wildcards.experiment}/{wildcards.run}"]


def run_input(wildcards):
    return L.prepared(run_of(wildcards).dataset)


def run_spec(wildcards):
    return canonical_json(run_of(wildcards).spec())


# A search's candidates, its selection and its final retraining are the reproduction's critical
# path (the retraining is its longest job and waits for every candidate): they go first whenever
# they are ready, so the grid runs fill the cores around them instead of the retraining running
# alone at the end. (A rule's priority is not passed on to the jobs it depends on.)
SEARCH_PRIORITY = 10


def run_priority(wildcards):
    """A training job's priority: SEARCH_PRIORITY for a search's candidates, else 0."""
    return SEARCH_PRIORITY if wildcards.experiment in L.search_experiments() else 0


def run_resource(name):
    """The resource `name` (threads, runtime) of the run a training job computes."""
    return lambda wildcards: run_of(wildcards).resources[name]


def run_mem_mb(wildcards):
    """The memory of a training job: the experiment's resources.mem_mb, else the run's estimate."""
    return L.run_mem_mb(run_of(wildcards))


def search_cfg(wildcards):
    return config["experiments"][wildcards.experiment]


def search_candidates(wildcards):
    return [f"{L.run_dir(r)}/run.json" for r in L.runs_of(wildcards.experiment)]
