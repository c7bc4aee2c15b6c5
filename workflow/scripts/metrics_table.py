from nnflow.report.html_table import write_table_html
from nnflow.report.tables import study_tables, summary_for_reading, write_frame
from nnflow.workflow.jobs import job

SUMMARY_INTRO = (
    "One row per training run (and per random search its retrained winner, whose test_accuracy is "
    "its single test-set evaluation): parameters, status, then final and best values of every "
    "metric. Accuracies are fractions. The same table is results/summary.csv."
)

with job(snakemake) as smk:
    finals = list(smk.input.finals)
    tidy, summary = study_tables(list(smk.input.metrics), list(smk.input.summaries),
                                 [tuple(finals[i:i + 3]) for i in range(0, len(finals), 3)])
    write_frame(smk.output.metrics, tidy)
    write_frame(smk.output.summary, summary)
    write_table_html(smk.output.summary_html, summary_for_reading(summary), "Summary: one row per run",
                     SUMMARY_INTRO)
