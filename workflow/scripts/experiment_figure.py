from nnflow.report.experiment import experiment_figure
from nnflow.workflow.jobs import job

MAIN_INPUTS = ("metrics", "summary", "provenance", "template")

with job(snakemake) as smk:
    inputs = dict(smk.input.items())
    experiment_figure(
        experiment=smk.params.experiment,
        kind=smk.params.kind,
        title=smk.params.title,
        dataset_label=smk.params.dataset_label,
        metrics_path=inputs["metrics"],
        summary_path=inputs["summary"],
        provenance_path=inputs["provenance"],
        template_path=inputs["template"],
        analysis=smk.params.analysis,
        out_png=smk.output.png,
        out_pdf=smk.output.pdf,
        out_caption=smk.output.caption,
        out_numbers=smk.output.numbers,
        extra={k: v for k, v in inputs.items() if k not in MAIN_INPUTS},
    )
