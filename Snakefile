# nnflow: how neural networks learn, from the data download to the report.
#   snakemake --cores all                                          # everything, locally (profiles/default)
#   snakemake --profile profiles/slurm --workflow-profile none     # the same on a SLURM cluster
#   snakemake --report results/report.html                         # the HTML report
#   snakemake --sdm apptainer ...                                  # every job in container/nnflow-<lock>.sif
from snakemake.utils import min_version

from nnflow.lockfile import container_image

min_version("9.0")


# With `--software-deployment-method apptainer` every job runs in the image of the locked
# environment (`make container` builds it); its name carries the lock's digest, so a new
# lock needs a new image and reruns the jobs (software-env trigger). Unused otherwise.
container: str(container_image(workflow.basedir))


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
