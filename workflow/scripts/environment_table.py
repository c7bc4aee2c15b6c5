from nnflow.files import read_json, write_text
from nnflow.report.tables import environment_rst, environment_table, write_environment_html, write_frame
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    table = environment_table([read_json(path) for path in smk.input.run_infos])
    write_frame(smk.output.csv, table)
    write_text(smk.output.caption, environment_rst(table))
    write_environment_html(smk.output.html, table)
