# Per-experiment tables and figures, the global tidy metrics table, and the report items.
#
# Changing one run reruns that run, its experiment's table and figure, and the global
# table; the other experiments' figures stay as they are.


rule experiment_table:
    input:
        unpack(lambda wc: L.experiment_run_files(wc.experiment)),
    output:
        metrics=f"{L.experiments_dir}/{{experiment}}/metrics.csv",
        summary=f"{L.experiments_dir}/{{experiment}}/summary.csv",
        summary_html=report(
            f"{L.experiments_dir}/{{experiment}}/runs.html",
            caption="../report/runs_table.rst",
            category=lambda wc: experiment_report(wc.experiment)["category"],
            subcategory=lambda wc: experiment_report(wc.experiment)["subcategory"],
            labels=item_labels("table: one row per run"),
        ),
    params:
        code=code_hash("experiment_table.py"),
    resources:
        **SMALL_JOB,
    log:
        L.tree.log("experiments/{experiment}/table"),
    benchmark:
        L.tree.benchmark("experiments/{experiment}/table")
    wildcard_constraints:
        experiment=wildcard_alternatives(L.trained_experiments()),
    script:
        "../scripts/experiment_table.py"


for _experiment in L.plotted_experiments():
    _cfg = config["experiments"][_experiment]
    _out = f"{L.experiments_dir}/{_experiment}"

    rule:
        name:
            f"figure_{_experiment}"
        input:
            **L.figure_inputs(_experiment),
            template=str(REPORT_TEMPLATES / f"{_cfg['figure']}.rst"),
        output:
            png=report(
                f"{_out}/figure.png",
                caption=str(Path(f"{_out}/caption.rst").resolve()),
                category=_cfg["report"]["category"],
                subcategory=_cfg["report"]["subcategory"],
                labels=item_labels(figure_kind(_cfg["figure"]).label),
            ),
            pdf=f"{_out}/figure.pdf",
            caption=f"{_out}/caption.rst",
            numbers=f"{_out}/numbers.json",
        params:
            experiment=_experiment,
            kind=_cfg["figure"],
            title=_cfg["report"]["title"],
            dataset_label=DATASETS[_cfg["dataset"]].label,
            analysis=canonical_json(_cfg["analysis"]),
            code=code_hash("experiment_figure.py", figure_kind(_cfg["figure"]).module),
        resources:
            **SMALL_JOB,
        log:
            L.tree.log(f"experiments/{_experiment}/figure"),
        benchmark:
            L.tree.benchmark(f"experiments/{_experiment}/figure")
        script:
            "../scripts/experiment_figure.py"


rule metrics_table:
    """One tidy table of every run's per-epoch metrics, and one summary row per run."""
    input:
        metrics=expand(f"{L.experiments_dir}/{{experiment}}/metrics.csv", experiment=L.trained_experiments()),
        summaries=expand(f"{L.experiments_dir}/{{experiment}}/summary.csv", experiment=L.trained_experiments()),
        # per random search, its retrained winner: metrics, run record and the test evaluation
        final_metrics=[f"{L.experiments_dir}/{e}/final/metrics.csv" for e in L.search_experiments()],
        final_runs=[f"{L.experiments_dir}/{e}/final/run.json" for e in L.search_experiments()],
        final_tests=[f"{L.experiments_dir}/{e}/final/test.json" for e in L.search_experiments()],
    output:
        metrics=f"{RESULTS}/metrics.csv",
        summary=report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels=item_labels("summary.csv (download)"),
        ),
        summary_html=report(
            f"{RESULTS}/summary.html",
            caption="../report/summary.rst",
            category="Tables",
            labels=item_labels("summary: one row per run"),
        ),
    params:
        code=code_hash("metrics_table.py"),
    resources:
        **SMALL_JOB,
    log:
        L.tree.log("tables/metrics"),
    benchmark:
        L.tree.benchmark("tables/metrics")
    script:
        "../scripts/metrics_table.py"


rule environment_table:
    """Which software and hardware the runs were computed with (one row per distinct environment)."""
    input:
        run_infos=lambda wc: [f"{L.run_dir(r)}/run.json" for r in RUNS.values()],
    output:
        csv=report(
            f"{RESULTS}/environment.csv",
            caption=str(Path(f"{RESULTS}/environment.rst").resolve()),
            category="Tables",
            labels=item_labels("environment.csv (download)"),
        ),
        html=report(
            f"{RESULTS}/environment.html",
            caption=str(Path(f"{RESULTS}/environment.rst").resolve()),
            category="Tables",
            labels=item_labels("environment: one row per software environment"),
        ),
        caption=f"{RESULTS}/environment.rst",
    params:
        code=code_hash("environment_table.py"),
    resources:
        **SMALL_JOB,
    log:
        L.tree.log("tables/environment"),
    benchmark:
        L.tree.benchmark("tables/environment")
    script:
        "../scripts/environment_table.py"
