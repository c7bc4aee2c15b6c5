# nnflow: how neural networks learn, from the data download to the report.
#   snakemake --cores all                                          # everything, locally (profiles/default)
#   snakemake --profile profiles/slurm --workflow-profile none     # the same on a SLURM cluster
#   snakemake --report results/report.html                         # the HTML report
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/pagerank.smk"


rule all:
    input:
        L.all_outputs(),
    default_target: True
