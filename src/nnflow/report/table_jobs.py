"""The table jobs of the workflow: read the runs' files, write the CSV tables, their HTML
pages for the report and the environment caption (one call per job script)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from nnflow.files import read_json, write_text
from nnflow.report.html_table import write_table_html
from nnflow.report.tables import (
    environment_rst,
    environment_table,
    experiment_tables,
    study_tables,
    summary_for_reading,
    write_environment_html,
    write_frame,
)

Path = str | os.PathLike

EXPERIMENT_INTRO = ("One row per run: parameters, status, then final and best values of every metric "
                    "(accuracies are fractions). The same table is summary.csv beside this page.")
SUMMARY_INTRO = (
    "One row per training run (and per random search its retrained winner, whose test_accuracy is "
    "its single test-set evaluation): parameters, status, then final and best values of every "
    "metric. Accuracies are fractions. The same table is results/summary.csv."
)


def write_experiment_tables(experiment: str, metrics: Sequence[Path], run_infos: Sequence[Path],
                            outputs: Mapping[str, str]) -> None:
    """One experiment's tidy ``metrics``, its ``summary`` and the summary's ``summary_html`` page."""
    tidy, summary = experiment_tables(list(metrics), list(run_infos))
    write_frame(outputs["metrics"], tidy)
    write_frame(outputs["summary"], summary)
    write_table_html(outputs["summary_html"], summary_for_reading(summary).drop(columns="experiment"),
                     f"Runs of {experiment}", EXPERIMENT_INTRO)


def write_study_tables(metrics: Sequence[Path], summaries: Sequence[Path], final_metrics: Sequence[Path],
                       final_runs: Sequence[Path], final_tests: Sequence[Path],
                       outputs: Mapping[str, str]) -> None:
    """The study's tidy ``metrics``, ``summary`` and ``summary_html``: the experiments' tables and,
    per random search, its retrained winner (its metrics, run record and test, in the same order)."""
    finals = list(zip(final_metrics, final_runs, final_tests, strict=True))
    tidy, summary = study_tables(list(metrics), list(summaries), finals)
    write_frame(outputs["metrics"], tidy)
    write_frame(outputs["summary"], summary)
    write_table_html(outputs["summary_html"], summary_for_reading(summary), "Summary: one row per run",
                     SUMMARY_INTRO)


def write_environment_tables(run_infos: Sequence[Path], outputs: Mapping[str, str]) -> None:
    """The environments of the runs: ``csv``, the report's ``html`` page and its ``caption``."""
    table = environment_table([read_json(path) for path in run_infos])
    write_frame(outputs["csv"], table)
    write_text(outputs["caption"], environment_rst(table))
    write_environment_html(outputs["html"], table)
