"""Where every output of the workflow lives and what each job reads, from the resolved config.

The rules (``workflow/rules/*.smk``) name their inputs and outputs through one
:class:`Layout`; the default target is :meth:`Layout.all_outputs`. Paths are
relative to the work directory (``results/...``), as Snakemake wants them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnflow.data.prepare import declared_shapes, get_format
from nnflow.data.prepared import ARRAYS as PREPARED_ARRAYS
from nnflow.data.sources import DatasetSource
from nnflow.pagerank.cases import GRAPH_ANALYSIS_FILES, GRAPH_FIGURE_FILES, scale_cases
from nnflow.report.kinds import figure_kind
from nnflow.train.grid import Run
from nnflow.train.memory import run_mem_mb
from nnflow.workflow.config import enabled_section, theory_section

RUN_OUTPUTS = {
    "metrics": "metrics.csv", "model": "model.npz", "model_meta": "model.json", "run_info": "run.json",
}
# Files a figure kind may read beyond the experiment's tables (FigureKind.extra_inputs),
# written by the random-search rules (challenge_select, challenge_final).
SEARCH_OUTPUTS = {
    "chosen": "chosen.json", "final_metrics": "final/metrics.csv", "final_test": "final/test.json",
}
# The study's summary: one row per run of the config the workflow last aggregated.
SUMMARY_TABLE = "summary.csv"
TABLES = ("metrics.csv", SUMMARY_TABLE, "environment.csv")
# Solver runs also keep the loss of every mini-batch (large; not needed to compare results).
SOLVER_OUTPUTS = {"iterations": "iterations.csv"}
THEORY_NUMBERS = "numbers.json"
# A job's log and its Snakemake benchmark file share one stem below these directories
# (ResultTree.log / .benchmark): nnflow.compare.stages finds a benchmark's log by it.
LOG_DIR = "logs"
BENCHMARK_DIR = "benchmarks"


@dataclass(frozen=True)
class ResultTree:
    """The directories of one results tree: the part of the layout that needs no config.

    The workflow writes below ``root``; ``python -m nnflow runs/snapshot/compare``
    read a finished tree (or a snapshot, which mirrors it) through the same names.
    """

    root: str = "results"

    @property
    def runs(self) -> str:
        return f"{self.root}/runs"

    @property
    def experiments(self) -> str:
        return f"{self.root}/experiments"

    @property
    def checkpoints(self) -> str:
        return f"{self.root}/checkpoints"

    @property
    def theory(self) -> str:
        return f"{self.root}/theory"

    @property
    def unstable(self) -> str:
        return f"{self.theory}/unstable"

    @property
    def complex_backprop(self) -> str:
        return f"{self.theory}/complex_backprop"

    @property
    def pagerank(self) -> str:
        return f"{self.root}/pagerank"

    @property
    def snapshots(self) -> str:
        return f"{self.root}/snapshots"

    def run_dir(self, run_id: str) -> str:
        return f"{self.runs}/{run_id}"

    def log(self, stem: str) -> str:
        """The log of the job named ``stem`` (a path below the logs directory, no suffix)."""
        return f"{self.root}/{LOG_DIR}/{stem}.log"

    def benchmark(self, stem: str) -> str:
        """The benchmark file of the job whose log is :meth:`log` of the same ``stem``."""
        return f"{self.root}/{BENCHMARK_DIR}/{stem}.tsv"


@dataclass
class Layout:
    config: Mapping[str, Any]
    runs: Mapping[str, Run]
    datasets: Mapping[str, DatasetSource]
    results: str = "results"

    def __post_init__(self) -> None:
        data = self.config["data"]
        self.download_dir = data["download_dir"]
        self.data_dir = data["prepared_dir"]
        self.tree = ResultTree(self.results)
        self.experiments_dir = self.tree.experiments
        # outside the declared outputs: Snakemake deletes the outputs of a killed job,
        # the checkpoint survives and the rerun resumes from it
        self.checkpoints = self.tree.checkpoints
        self.unstable_dir = self.tree.unstable
        self.complex_dir = self.tree.complex_backprop
        self.pagerank_dir = self.tree.pagerank
        experiments = self.config["experiments"]
        self.unstable_theory = theory_section(experiments)
        self.complex_backprop = enabled_section(experiments, "complex_backprop")
        self.pagerank = self.config["pagerank"]
        self.scale_cases = scale_cases(self.pagerank)

    # ------------------------------------------------------------------ data

    def downloads(self, dataset: str) -> dict[str, str]:
        """Named outputs of fetch_<dataset>: its files by role and the sources record."""
        files = {f.role: f"{self.download_dir}/{dataset}/{f.name}" for f in self.datasets[dataset].files}
        files["record"] = f"{self.download_dir}/{dataset}/sources.json"
        return files

    def declared_files(self, dataset: str) -> dict[str, dict[str, str]]:
        """The files of ``dataset`` with their published checksums (the fetch rule's tracked param)."""
        files = self.datasets[dataset].files
        return {f.role: {"name": f.name, "md5": f.md5, "md5_of": f.md5_of} for f in files}

    def prepare_settings(self, dataset: str) -> dict[str, Any]:
        """The settings that change the prepared arrays: the format's defaults, then the declaration's."""
        source = self.datasets[dataset]
        return {**get_format(source.format).defaults, **source.settings}

    def prepared(self, dataset: str) -> list[str]:
        """The prepared arrays and provenance of ``dataset`` (what a training job reads)."""
        d = f"{self.data_dir}/{dataset}"
        return [f"{d}/{name}.npy" for name in PREPARED_ARRAYS] + [f"{d}/provenance.json"]

    def targets_data(self) -> list[str]:
        return [f for ds in sorted({r.dataset for r in self.runs.values()}) for f in self.prepared(ds)]

    # ------------------------------------------------------------------ training

    def runs_of(self, experiment: str) -> list[Run]:
        return [r for r in self.runs.values() if r.experiment == experiment]

    def experiments_with(self, trainer: str) -> list[str]:
        return sorted({r.experiment for r in self.runs.values() if r.trainer == trainer})

    def run_dir(self, run: Run) -> str:
        return self.tree.run_dir(run.run_id)

    @staticmethod
    def run_outputs(prefix: str) -> dict[str, str]:
        return {key: f"{prefix}/{name}" for key, name in RUN_OUTPUTS.items()}

    def run_files(self, run: Run) -> list[str]:
        """Every declared output of a run (solver runs also keep each mini-batch's loss)."""
        names = [*RUN_OUTPUTS.values(), *(SOLVER_OUTPUTS.values() if run.trainer == "solver" else [])]
        return [f"{self.run_dir(run)}/{name}" for name in names]

    def targets_training(self) -> list[str]:
        return [path for run in self.runs.values() for path in self.run_files(run)]

    def run_mem_mb(self, run: Run) -> int:
        """The memory (MB) the training job of ``run`` asks for: its experiment's
        ``resources.mem_mb`` if set, else the estimate from the run's sizes
        (:mod:`nnflow.train.memory`; the dataset's shapes come from its declaration)."""
        if run.resources.get("mem_mb") is not None:
            return int(run.resources["mem_mb"])
        try:
            return run_mem_mb(run.trainer, run.params, declared_shapes(self.datasets[run.dataset]),
                              threads=run.resources["threads"])
        except ValueError as exc:
            raise ValueError(f"experiments.{run.experiment} (run {run.run_id}): {exc}") from None

    def final_mem_mb(self, experiment: str) -> int:
        """The memory (MB) of the random search's final run: ``resources.mem_mb`` if set, else
        the largest estimate over the candidates (any may be chosen) with the final settings,
        which also predict the test split."""
        resources = self.config["experiments"][experiment]["resources"]
        if resources.get("mem_mb") is not None:
            return int(resources["mem_mb"])
        final = self.config["experiments"][experiment]["final"]
        return max(
            run_mem_mb(run.trainer, {**run.params, **final}, declared_shapes(self.datasets[run.dataset]),
                       threads=resources["threads"], evaluate_test=True)
            for run in self.runs_of(experiment)
        )

    def search_experiments(self) -> list[str]:
        """Experiments whose random search is followed by a final retraining (``search`` + ``final``)."""
        experiments = self.config["experiments"]
        return [e for e in self.trained_experiments() if {"search", "final"} <= set(experiments[e])]

    # ------------------------------------------------------------------ tables and figures

    def trained_experiments(self) -> list[str]:
        """Experiments with runs, in config order: each gets its rows in metrics/summary.csv."""
        return list(dict.fromkeys(r.experiment for r in self.runs.values()))

    def plotted_experiments(self) -> list[str]:
        """Trained experiments that declare a figure kind (config ``figure:``)."""
        return [e for e in self.trained_experiments() if "figure" in self.config["experiments"][e]]

    def experiment_run_files(self, experiment: str) -> dict[str, list[str]]:
        runs = self.runs_of(experiment)
        return {
            "metrics": [f"{self.run_dir(r)}/metrics.csv" for r in runs],
            "run_info": [f"{self.run_dir(r)}/run.json" for r in runs],
        }

    def figure_inputs(self, experiment: str) -> dict[str, str]:
        """What the figure job of ``experiment`` reads: its tables, provenance and its kind's extras."""
        kind = figure_kind(self.config["experiments"][experiment]["figure"])
        d = f"{self.experiments_dir}/{experiment}"
        return {
            "metrics": f"{d}/metrics.csv",
            "summary": f"{d}/summary.csv",
            "provenance": f"{self.data_dir}/{self.runs_of(experiment)[0].dataset}/provenance.json",
            **{name: f"{d}/{SEARCH_OUTPUTS[name]}" for name in kind.extra_inputs},
        }

    def targets_aggregate(self) -> list[str]:
        if not self.trained_experiments():
            return []
        figures = [f"{self.experiments_dir}/{e}/figure.png" for e in self.plotted_experiments()]
        return figures + [f"{self.results}/{name}" for name in TABLES]

    # ------------------------------------------------------------------ theory

    def targets_theory(self) -> list[str]:
        out = []
        if self.unstable_theory is not None:
            out += [f"{self.unstable_dir}/{THEORY_NUMBERS}", f"{self.unstable_dir}/lognormal.png"]
        if self.complex_backprop is not None:
            out += [f"{self.complex_dir}/{THEORY_NUMBERS}", f"{self.complex_dir}/training.png"]
        return out

    # ------------------------------------------------------------------ PageRank

    def pagerank_graphs(self) -> dict[str, Any]:
        return dict(self.pagerank["graphs"]) if self.pagerank["enabled"] else {}

    def graph_files(self, name: str) -> dict[str, str]:
        return {key: f"{self.pagerank_dir}/{name}/{file}" for key, file in GRAPH_ANALYSIS_FILES.items()}

    def graph_figure_files(self, name: str) -> dict[str, str]:
        return {key: f"{self.pagerank_dir}/{name}/{file}" for key, file in GRAPH_FIGURE_FILES.items()}

    def targets_pagerank(self) -> list[str]:
        out = []
        for name in self.pagerank_graphs():
            out += [*self.graph_files(name).values(), *self.graph_figure_files(name).values()]
        if self.scale_cases:
            out += [f"{self.pagerank_dir}/scale/{name}" for name in ("scale.csv", "scale.png", "scale.pdf",
                                                                     "caption.rst")]
        return out

    def all_outputs(self) -> list[str]:
        """Everything the default target builds, stage by stage."""
        return [*self.targets_data(), *self.targets_training(), *self.targets_aggregate(),
                *self.targets_theory(), *self.targets_pagerank()]
