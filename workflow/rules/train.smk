# One job per run: (experiment, grid point, seed) -> results/runs/<experiment>/<run>/.
# Two rules so that a cluster profile can group the many short network2 (MNIST)
# runs while the heavier Solver runs get jobs of their own.


wildcard_constraints:
    run=r"[^/]+/seed=\d+",


RUN_OUTPUTS = {
    "metrics": "metrics.csv",
    "model": "model.npz",
    "model_meta": "model.json",
    "run_info": "run.json",
}


def run_outputs(prefix):
    return {key: f"{prefix}/{name}" for key, name in RUN_OUTPUTS.items()}


def run_input(wildcards):
    return prepared(run_of(wildcards).dataset)


def run_spec(wildcards):
    return canonical_json(run_of(wildcards).spec())


def run_threads(wildcards):
    return run_of(wildcards).resources.get("threads", 1)


def run_mem_mb(wildcards):
    return run_of(wildcards).resources.get("mem_mb", 2000)


def run_runtime(wildcards):
    return run_of(wildcards).resources.get("runtime", 30)


# Checkpoints live outside the declared outputs: Snakemake deletes the outputs of a
# killed job, the checkpoint survives, and the rerun resumes from it.
CHECKPOINTS = f"{RESULTS}/checkpoints"


rule train_network2:
    input:
        run_input,
    output:
        **run_outputs(f"{RESULTS}/runs/{{experiment}}/{{run}}"),
    params:
        spec=run_spec,
        data_dir=lambda wc: f"{DATA_DIR}/{run_of(wc).dataset}",
        checkpoint=f"{CHECKPOINTS}/{{experiment}}/{{run}}",
        code=lambda wc: code_hash(run_of(wc).trainer),
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


def challenge_candidates(wildcards):
    return [f"{run_dir(r)}/run.json" for r in runs_of("cifar_challenge")]


CHALLENGE = f"{RESULTS}/experiments/cifar_challenge"


rule challenge_select:
    """The random search's winner, chosen on validation accuracy only."""
    input:
        runs=challenge_candidates,
    output:
        chosen=f"{CHALLENGE}/chosen.json",
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
        final=lambda wc: canonical_json(config["experiments"]["cifar_challenge"].get("final", {})),
        data_dir=f"{DATA_DIR}/cifar10",
        checkpoint=f"{CHECKPOINTS}/cifar_challenge/final",
        code=code_hash("solver"),
    log:
        f"{RESULTS}/logs/experiments/cifar_challenge/final.log",
    benchmark:
        f"{RESULTS}/benchmarks/experiments/cifar_challenge_final.tsv"
    threads: config["experiments"]["cifar_challenge"].get("resources", {}).get("threads", 1)
    resources:
        mem_mb=config["experiments"]["cifar_challenge"].get("resources", {}).get("mem_mb", 4000),
        runtime=config["experiments"]["cifar_challenge"].get("resources", {}).get("runtime", 60),
    script:
        "../scripts/challenge_final.py"


def run_files(run):
    """Every declared output of a run (solver runs also keep each mini-batch's loss)."""
    names = list(RUN_OUTPUTS.values()) + (["iterations.csv"] if run.trainer == "solver" else [])
    return [f"{run_dir(run)}/{name}" for name in names]


def targets_training():
    return [path for run in RUNS.values() for path in run_files(run)]
