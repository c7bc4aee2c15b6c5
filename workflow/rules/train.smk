# One job per run: (experiment, grid point, seed) -> results/runs/<experiment>/<run>/.
# Two rules so that a cluster profile can group the many short network2 (MNIST)
# runs while the heavier Solver runs get jobs of their own.


wildcard_constraints:
    run=r"[^/]+/seed=\d+",


rule train_network2:
    input:
        run_input,
    output:
        **L.run_outputs(f"{RESULTS}/runs/{{experiment}}/{{run}}"),
    params:
        spec=run_spec,
        data_dir=lambda wc, input: os.path.dirname(input[0]),
        checkpoint=f"{L.checkpoints}/{{experiment}}/{{run}}",
        code=lambda wc: code_hash("train_run.py", trainer_module(run_of(wc).trainer)),
    log:
        L.tree.log("runs/{experiment}/{run}"),
    benchmark:
        L.tree.benchmark("runs/{experiment}/{run}")
    threads: run_resource("threads")
    priority: run_priority
    resources:
        mem_mb=run_mem_mb,
        runtime=run_resource("runtime"),
    wildcard_constraints:
        experiment=wildcard_alternatives(L.experiments_with("network2")),
    script:
        "../scripts/train_run.py"


use rule train_network2 as train_solver with:
    output:
        **L.run_outputs(f"{RESULTS}/runs/{{experiment}}/{{run}}"),
        iterations=f"{RESULTS}/runs/{{experiment}}/{{run}}/iterations.csv",
    wildcard_constraints:
        experiment=wildcard_alternatives(L.experiments_with("solver")),


# A random search (config `search` + `final`, e.g. the accuracy challenge): its winner,
# chosen on validation accuracy only, retrained with the final budget and tested once.


rule challenge_select:
    """The random search's winner, chosen on validation accuracy only."""
    input:
        runs=search_candidates,
    output:
        chosen=f"{L.experiments_dir}/{{experiment}}/chosen.json",
    params:
        code=code_hash("challenge_select.py"),
    priority: SEARCH_PRIORITY
    resources:
        **SMALL_JOB,
    log:
        L.tree.log("experiments/{experiment}/select"),
    benchmark:
        L.tree.benchmark("experiments/{experiment}/select")
    wildcard_constraints:
        experiment=wildcard_alternatives(L.search_experiments()),
    script:
        "../scripts/challenge_select.py"


rule challenge_final:
    """Retrain the chosen candidate with the final budget; evaluate once on the test set."""
    input:
        chosen=f"{L.experiments_dir}/{{experiment}}/chosen.json",
        data=lambda wc: L.prepared(L.runs_of(wc.experiment)[0].dataset),
    output:
        **L.run_outputs(f"{L.experiments_dir}/{{experiment}}/final"),
        iterations=f"{L.experiments_dir}/{{experiment}}/final/iterations.csv",
        test=f"{L.experiments_dir}/{{experiment}}/final/test.json",
    params:
        final=lambda wc: canonical_json(search_cfg(wc)["final"]),
        data_dir=lambda wc, input: os.path.dirname(input.data[0]),
        checkpoint=f"{L.checkpoints}/{{experiment}}/final",
        code=code_hash("challenge_final.py"),
    log:
        L.tree.log("experiments/{experiment}/final"),
    benchmark:
        L.tree.benchmark("experiments/{experiment}/final")
    wildcard_constraints:
        experiment=wildcard_alternatives(L.search_experiments()),
    threads: lambda wc: search_cfg(wc)["resources"]["threads"]
    priority: SEARCH_PRIORITY
    resources:
        mem_mb=lambda wc: L.final_mem_mb(wc.experiment),
        runtime=lambda wc: search_cfg(wc)["resources"]["runtime"],
    script:
        "../scripts/challenge_final.py"
