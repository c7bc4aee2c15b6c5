from nnflow.train.search import select_candidate
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    select_candidate(run_infos=list(smk.input.runs), out_path=smk.output.chosen)
