# Theory stages without training data: Blatt 10 Aufgabe 26 (= CIFAR sheet Tutoraufgabe 6),
# unstable gradients, and the Tutoraufgabe on backpropagation for complex-valued nets.
#
# Every value that changes an output is a param (canonical JSON, so the params rerun
# trigger is exact); the scripts never read the config.


rule unstable_theory:
    input:
        template=str(REPORT_TEMPLATES / "unstable_theory.rst"),
    output:
        numbers=f"{L.unstable_dir}/numbers.json",
        table=f"{L.unstable_dir}/lognormal_table.csv",
        caption=f"{L.unstable_dir}/caption.rst",
        sigmoid_prime=report_item(
            f"{L.unstable_dir}/sigmoid_prime.png",
            f"{L.unstable_dir}/caption.rst",
            THEORY_CATEGORY,
            "26 unstable gradients",
            "(a) σ′(z) and its bounds 0 ≤ σ′ ≤ 1/4",
        ),
        sigmoid_prime_pdf=f"{L.unstable_dir}/sigmoid_prime.pdf",
        interval=report_item(
            f"{L.unstable_dir}/interval_length.png",
            f"{L.unstable_dir}/caption.rst",
            THEORY_CATEGORY,
            "26 unstable gradients",
            "(b) the window of a where |w σ′(wa + b)| ≥ 1",
        ),
        interval_pdf=f"{L.unstable_dir}/interval_length.pdf",
        lognormal=report_item(
            f"{L.unstable_dir}/lognormal.png",
            f"{L.unstable_dir}/caption.rst",
            THEORY_CATEGORY,
            "26 unstable gradients",
            "(c) the product Q of n factors: log-normal model",
        ),
        lognormal_pdf=f"{L.unstable_dir}/lognormal.pdf",
    params:
        code=code_hash("unstable_theory.py"),
        theory=canonical_json(L.unstable_theory or {}),
    log:
        L.tree.log("theory/unstable_theory"),
    benchmark:
        L.tree.benchmark("theory/unstable_theory")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/unstable_theory.py"


rule complex_backprop:
    input:
        template=str(REPORT_TEMPLATES / "complex_backprop.rst"),
    output:
        numbers=f"{L.complex_dir}/numbers.json",
        gradcheck=f"{L.complex_dir}/gradcheck.csv",
        training=f"{L.complex_dir}/training.csv",
        caption=f"{L.complex_dir}/caption.rst",
        gradcheck_png=report_item(
            f"{L.complex_dir}/gradcheck.png",
            f"{L.complex_dir}/caption.rst",
            THEORY_CATEGORY,
            "Tutoraufgabe complex backprop",
            "gradient check: backprop vs central differences",
        ),
        gradcheck_pdf=f"{L.complex_dir}/gradcheck.pdf",
        training_png=report_item(
            f"{L.complex_dir}/training.png",
            f"{L.complex_dir}/caption.rst",
            THEORY_CATEGORY,
            "Tutoraufgabe complex backprop",
            "training: cost per iteration",
        ),
        training_pdf=f"{L.complex_dir}/training.pdf",
    params:
        code=code_hash("complex_backprop.py"),
        experiment=canonical_json(
            {k: v for k, v in (L.complex_backprop or {}).items() if k != "enabled"}
        ),
    log:
        L.tree.log("theory/complex_backprop"),
    benchmark:
        L.tree.benchmark("theory/complex_backprop")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/complex_backprop.py"
