"""The study's summary table (column order, the random search's test accuracy) and its HTML page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_figures import network2_wide, solver_wide, write_run

from nnflow.files import write_json
from nnflow.report.html_table import cell_text, table_html, write_table_html
from nnflow.report.tables import (
    experiment_tables,
    study_tables,
    summary_columns,
    summary_for_reading,
    write_frame,
)


def test_summary_columns_put_identity_params_and_headline_metrics_first():
    columns = ["experiment", "run_id", "seed", "status", "diverged_epoch", "epochs_completed",
               "seconds", "final_train_cost", "param_sizes", "final_grad_norm_layer1",
               "best_test_accuracy_epoch", "final_test_accuracy", "best_test_accuracy", "param_eta",
               "final_val_accuracy", "test_accuracy"]
    assert summary_columns(columns) == [
        "experiment", "run_id", "seed", "status", "diverged_epoch", "param_eta", "param_sizes",
        "test_accuracy", "final_test_accuracy", "best_test_accuracy", "best_test_accuracy_epoch",
        "final_val_accuracy", "final_train_cost", "epochs_completed", "seconds", "final_grad_norm_layer1",
    ]


def write_study(root):
    """Two experiments' tables and one random search's final run, as the workflow writes them."""
    tables = []
    for experiment, wide, params in (
        ("costs", network2_wide([0.8, 0.9], [0.85, 0.95]), {"cost": "quadratic", "eta": 3.0}),
        ("search", solver_wide([0.1, 0.5], [0.1, 0.4], [1.2]), {"learning_rate": 1e-3}),
    ):
        run = write_run(root, experiment, "base", 1, params, wide)
        tidy, summary = experiment_tables([run[0]], [run[1]])
        paths = root / f"{experiment}_metrics.csv", root / f"{experiment}_summary.csv"
        write_frame(paths[0], tidy)
        write_frame(paths[1], summary)
        tables.append(paths)
    final = write_run(root / "final", "search", "final", 1, {"learning_rate": 1e-3},
                      solver_wide([0.1, 0.6, 0.7], [0.1, 0.5, 0.45], [1.2, 0.9]))
    write_json(root / "test.json", {"test_accuracy": 0.432, "num_test": 10000})
    return tables, (final[0], final[1], root / "test.json")


def test_study_tables_add_the_search_winner_with_its_test_accuracy(tmp_path):
    tables, final = write_study(tmp_path)
    tidy, summary = study_tables([m for m, _ in tables], [s for _, s in tables], [final])
    assert list(summary["run_id"]) == ["costs/base/seed=1", "search/base/seed=1", "search/final/seed=1"]
    assert summary["test_accuracy"].tolist()[:2] == [pytest.approx(np.nan, nan_ok=True)] * 2
    assert summary["test_accuracy"].iloc[2] == pytest.approx(0.432)
    assert summary["final_val_accuracy"].iloc[2] == pytest.approx(0.45)
    assert list(summary.columns) == summary_columns(summary.columns)
    assert set(tidy["run_id"]) == set(summary["run_id"])


def test_study_tables_refuse_a_test_record_without_the_accuracy(tmp_path):
    tables, final = write_study(tmp_path)
    write_json(final[2], {"num_test": 10000})
    with pytest.raises(ValueError, match=r"test.json: no 'test_accuracy'"):
        study_tables([m for m, _ in tables], [s for _, s in tables], [final])


def test_summary_html_is_a_table_of_every_run(tmp_path):
    tables, final = write_study(tmp_path)
    _, summary = study_tables([m for m, _ in tables], [s for _, s in tables], [final])
    shown = summary_for_reading(summary)
    assert list(shown.columns[:2]) == ["experiment", "run"] and "seed" not in shown
    assert shown["run"].tolist() == ["base/seed=1", "base/seed=1", "final/seed=1"]
    text = write_table_html(tmp_path / "summary.html", shown, "Summary <runs>", "intro & more")
    assert (tmp_path / "summary.html").read_text(encoding="utf-8") == text
    assert text.count("<tr>") == 1 + len(shown)
    assert "<h1>Summary &lt;runs&gt;</h1>" in text and "<p>intro &amp; more</p>" in text
    assert "<td class=num>0.432</td>" in text
    assert "<th>diverged_epoch</th>" not in text  # a column without any value is left out


def test_cell_text_and_unknown_columns():
    values = (None, np.nan, 3.0, 0.123456, "adam", 7)
    assert [cell_text(v) for v in values] == ["", "", "3", "0.1235", "adam", "7"]
    with pytest.raises(ValueError, match=r"columns \['nope'\] not in the table"):
        table_html(pd.DataFrame({"a": [1]}), "t", columns=["nope"])
