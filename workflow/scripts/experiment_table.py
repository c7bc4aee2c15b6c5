from nnflow.report.html_table import write_table_html
from nnflow.report.tables import experiment_tables, summary_for_reading, write_frame
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    tidy, summary = experiment_tables(list(smk.input.metrics), list(smk.input.run_info))
    write_frame(smk.output.metrics, tidy)
    write_frame(smk.output.summary, summary)
    intro = ("One row per run: parameters, status, then final and best values of every metric "
             "(accuracies are fractions). The same table is summary.csv beside this page.")
    write_table_html(smk.output.summary_html, summary_for_reading(summary).drop(columns="experiment"),
                     f"Runs of {smk.wildcards.experiment}", intro)
