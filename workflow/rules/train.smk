# One job per run: (experiment, grid point, seed) -> results/runs/<experiment>/<run>/.
# Two rules so that a cluster profile can group the many short network2 (MNIST)
# runs while the heavier Solver runs get jobs of their own.


wildcard_constraints:
    run=r"[^/]+/seed=\d+",


rule train_network2:
    input:
        run_input,
    output:
        **run_outputs(f"{RESULTS}/runs/{{experiment}}/{{run}}"),
    params:
        spec=run_spec,
        data_dir=lambda wc, input: os.path.dirname(input[0]),
        checkpoint=f"{CHECKPOINTS}/{{experiment}}/{{run}}",
        code=lambda wc: code_hash("train_run.py", trainer_module(run_of(wc).trainer)),
    log:
        f"{RESULTS}/logs/runs/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/runs/{{experiment}}/{{run}}.tsv"
    threads: run_threads
    resources:
        mem_mb=run_mem_mb,
        runtime=run_runtime,
    wildcard_constraints:
        experiment=wildcard_alternatives(experiments_with("network2")),
    script:
        "../scripts/train_run.py"


use rule train_network2 as train_solver with:
    output:
        **run_outputs(f"{RESULTS}/runs/{{experiment}}/{{run}}"),
        iterations=f"{RESULTS}/runs/{{experiment}}/{{run}}/iterations.csv",
    wildcard_constraints:
        experiment=wildcard_alternatives(experiments_with("solver")),


# The accuracy challenge's selection and final run exist only when it has runs.
if CHALLENGE_CFG is not None:

    rule challenge_select:
        """The random search's winner, chosen on validation accuracy only."""
        input:
            runs=challenge_candidates,
        output:
            chosen=f"{CHALLENGE}/chosen.json",
        params:
            code=code_hash("challenge_select.py"),
        log:
            f"{RESULTS}/logs/experiments/cifar_challenge/select.log",
        script:
            "../scripts/challenge_select.py"


    rule challenge_final:
        """Retrain the chosen candidate with the final budget; evaluate once on the test set."""
        input:
            chosen=f"{CHALLENGE}/chosen.json",
            data=prepared("cifar10"),
        output:
            **run_outputs(f"{CHALLENGE}/final"),
            iterations=f"{CHALLENGE}/final/iterations.csv",
            test=f"{CHALLENGE}/final/test.json",
        params:
            final=lambda wc: canonical_json(CHALLENGE_CFG.get("final", {})),
            data_dir=lambda wc, input: os.path.dirname(input.data[0]),
            checkpoint=f"{CHECKPOINTS}/cifar_challenge/final",
            code=code_hash("challenge_final.py"),
        log:
            f"{RESULTS}/logs/experiments/cifar_challenge/final.log",
        benchmark:
            f"{RESULTS}/benchmarks/experiments/cifar_challenge_final.tsv"
        threads: CHALLENGE_CFG["resources"]["threads"]
        resources:
            mem_mb=CHALLENGE_CFG["resources"]["mem_mb"],
            runtime=CHALLENGE_CFG["resources"]["runtime"],
        script:
            "../scripts/challenge_final.py"
