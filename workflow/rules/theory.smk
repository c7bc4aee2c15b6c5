# Theory stages without training data: Blatt 10 Aufgabe 26 (= CIFAR sheet Tutoraufgabe 6),
# unstable gradients, and the Tutoraufgabe on backpropagation for complex-valued nets.
#
# Every value that changes an output is a param (canonical JSON, so the params rerun
# trigger is exact); the scripts never read the config.


rule unstable_theory:
    input:
        template=str(REPORT_TEMPLATES / "unstable_theory.rst"),
    output:
        numbers=f"{UNSTABLE_DIR}/numbers.json",
        table=f"{UNSTABLE_DIR}/lognormal_table.csv",
        caption=f"{UNSTABLE_DIR}/caption.rst",
        sigmoid_prime=report_item(
            f"{UNSTABLE_DIR}/sigmoid_prime.png",
            f"{UNSTABLE_DIR}/caption.rst",
            THEORY_CATEGORY,
            "26 unstable gradients",
        ),
        sigmoid_prime_pdf=f"{UNSTABLE_DIR}/sigmoid_prime.pdf",
        interval=report_item(
            f"{UNSTABLE_DIR}/interval_length.png",
            f"{UNSTABLE_DIR}/caption.rst",
            THEORY_CATEGORY,
            "26 unstable gradients",
        ),
        interval_pdf=f"{UNSTABLE_DIR}/interval_length.pdf",
        lognormal=report_item(
            f"{UNSTABLE_DIR}/lognormal.png",
            f"{UNSTABLE_DIR}/caption.rst",
            THEORY_CATEGORY,
            "26 unstable gradients",
        ),
        lognormal_pdf=f"{UNSTABLE_DIR}/lognormal.pdf",
    params:
        code=code_hash("unstable_theory.py"),
        theory=canonical_json(UNSTABLE_THEORY_CFG or {}),
    log:
        f"{RESULTS}/logs/theory/unstable_theory.log",
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
        numbers=f"{COMPLEX_DIR}/numbers.json",
        gradcheck=f"{COMPLEX_DIR}/gradcheck.csv",
        training=f"{COMPLEX_DIR}/training.csv",
        caption=f"{COMPLEX_DIR}/caption.rst",
        gradcheck_png=report_item(
            f"{COMPLEX_DIR}/gradcheck.png",
            f"{COMPLEX_DIR}/caption.rst",
            THEORY_CATEGORY,
            "Tutoraufgabe complex backprop",
        ),
        gradcheck_pdf=f"{COMPLEX_DIR}/gradcheck.pdf",
        training_png=report_item(
            f"{COMPLEX_DIR}/training.png",
            f"{COMPLEX_DIR}/caption.rst",
            THEORY_CATEGORY,
            "Tutoraufgabe complex backprop",
        ),
        training_pdf=f"{COMPLEX_DIR}/training.pdf",
    params:
        code=code_hash("complex_backprop.py"),
        experiment=canonical_json(
            {k: v for k, v in (COMPLEX_BACKPROP_CFG or {}).items() if k != "enabled"}
        ),
    log:
        f"{RESULTS}/logs/theory/complex_backprop.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/complex_backprop.py"
