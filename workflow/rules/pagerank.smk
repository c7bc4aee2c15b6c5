# CIFAR sheet, Aufgabe 12 (Hyperlink-Struktur): hyperlink matrix H, its eigenvalues, the plain
# iteration pi^(k+1) = H^T pi^(k) and PageRank from the Google matrix, for each small graph of
# config pagerank.graphs; and the same sparse power iteration on large generated graphs and
# edge-list files (pagerank.scale).
#
# Every value that changes an output is a param (canonical JSON); the scripts never read the
# config. The per-graph rules are defined in a loop (one pair per graph) because a report
# caption path cannot carry wildcards and each graph's captions state its own measured numbers.

# The report lists a graph's items by these labels, in the sheet's order (a), (b), (c), then
# the PageRank that fixes the plain iteration.
PR_LABELS = {
    "matrix": "(a) hyperlink matrix H",
    "eigenvalues": "(b) eigenvalues of H",
    "iteration": "(c) plain iteration π ← Hᵀπ",
    "convergence": "fix 1: PageRank by power iteration (Google matrix)",
    "ranking": "fix 2: the pages ranked by PageRank",
}


for _pr_name, _pr_spec in L.pagerank_graphs().items():
    _pr_data = L.graph_files(_pr_name)
    _pr_figs = L.graph_figure_files(_pr_name)
    _pr_sub = f"12 PageRank, graph {_pr_name}"

    rule:
        name:
            f"pagerank_analyse_{_pr_name}"
        input:
            [_pr_spec["file"]] if _pr_spec.get("file") else [],
        output:
            # the hyperlink matrix is a report item, with the caption the figure rule writes
            **{
                **_pr_data,
                "matrix": report_item(
                    _pr_data["matrix"], _pr_figs["cap_matrix"], PR_CATEGORY, _pr_sub, PR_LABELS["matrix"]
                ),
            },
        params:
            name=_pr_name,
            code=code_hash("pagerank_analyse.py"),
            graph=canonical_json(_pr_spec),
            alpha=L.pagerank["alpha"],
            unit_tolerance=L.pagerank["unit_tolerance"],
            steps=L.pagerank["iteration_steps"],
            tol=L.pagerank["tol"],
            max_iter=L.pagerank["max_iter"],
            dense_max_pages=L.pagerank["dense_max_pages"],
        log:
            L.tree.log(f"pagerank/analyse_{_pr_name}"),
        benchmark:
            L.tree.benchmark(f"pagerank/analyse_{_pr_name}")
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        script:
            "../scripts/pagerank_analyse.py"

    rule:
        name:
            f"pagerank_figures_{_pr_name}"
        input:
            **_pr_data,
            tpl_matrix=PR_TEMPLATES["hyperlink_matrix"],
            tpl_eigenvalues=PR_TEMPLATES["eigenvalues"],
            tpl_iteration=PR_TEMPLATES["iteration"],
            tpl_convergence=PR_TEMPLATES["convergence"],
            tpl_ranking=PR_TEMPLATES["ranking"],
        output:
            eigenvalues=report_item(
                _pr_figs["eigenvalues"],
                _pr_figs["cap_eigenvalues"],
                PR_CATEGORY,
                _pr_sub,
                PR_LABELS["eigenvalues"],
            ),
            eigenvalues_pdf=_pr_figs["eigenvalues_pdf"],
            iteration=report_item(
                _pr_figs["iteration"],
                _pr_figs["cap_iteration"],
                PR_CATEGORY,
                _pr_sub,
                PR_LABELS["iteration"],
            ),
            iteration_pdf=_pr_figs["iteration_pdf"],
            convergence=report_item(
                _pr_figs["convergence"],
                _pr_figs["cap_convergence"],
                PR_CATEGORY,
                _pr_sub,
                PR_LABELS["convergence"],
            ),
            convergence_pdf=_pr_figs["convergence_pdf"],
            ranking=report_item(
                _pr_figs["ranking"],
                _pr_figs["cap_ranking"],
                PR_CATEGORY,
                _pr_sub,
                PR_LABELS["ranking"],
            ),
            ranking_pdf=_pr_figs["ranking_pdf"],
            cap_matrix=_pr_figs["cap_matrix"],
            cap_eigenvalues=_pr_figs["cap_eigenvalues"],
            cap_iteration=_pr_figs["cap_iteration"],
            cap_convergence=_pr_figs["cap_convergence"],
            cap_ranking=_pr_figs["cap_ranking"],
        params:
            name=_pr_name,
            code=code_hash("pagerank_figures.py"),
        log:
            L.tree.log(f"pagerank/figures_{_pr_name}"),
        benchmark:
            L.tree.benchmark(f"pagerank/figures_{_pr_name}")
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        script:
            "../scripts/pagerank_figures.py"


rule pagerank_scale_case:
    input:
        lambda wc: [s["path"]] if (s := L.scale_cases[wc.case])["kind"] == "file" else [],
    output:
        json=f"{L.pagerank_dir}/scale/cases/{{case}}.json",
    params:
        code=code_hash("pagerank_scale.py"),
        spec=lambda wc: canonical_json(L.scale_cases[wc.case]),
        alpha=L.pagerank["alpha"],
        tol=L.pagerank["scale"]["tol"],
        max_iter=L.pagerank["scale"]["max_iter"],
    log:
        f"{RESULTS}/logs/pagerank/scale_{{case}}.log",
    benchmark:
        f"{L.pagerank_dir}/scale/benchmarks/{{case}}.tsv"
    wildcard_constraints:
        case=wildcard_alternatives(sorted(L.scale_cases)),
    # the mat-vec is single-threaded, but the timings want the memory bandwidth of the
    # node to themselves: two cores keep other jobs from running beside a scale case
    threads: 2
    resources:
        mem_mb=lambda wc: case_mem_mb(L.scale_cases[wc.case]),
        runtime=30,
    script:
        "../scripts/pagerank_scale.py"


rule pagerank_scale_summary:
    input:
        cases=lambda wc: expand(f"{L.pagerank_dir}/scale/cases/{{case}}.json", case=sorted(L.scale_cases)),
        template=PR_TEMPLATES["scale"],
    output:
        csv=f"{L.pagerank_dir}/scale/scale.csv",
        caption=f"{L.pagerank_dir}/scale/caption.rst",
        figure=report_item(
            f"{L.pagerank_dir}/scale/scale.png",
            f"{L.pagerank_dir}/scale/caption.rst",
            PR_CATEGORY,
            "12 PageRank at scale",
            "sparse power iteration: time and memory per graph size",
        ),
        figure_pdf=f"{L.pagerank_dir}/scale/scale.pdf",
    params:
        code=code_hash("pagerank_scale_summary.py"),
    log:
        L.tree.log("pagerank/scale_summary"),
    benchmark:
        L.tree.benchmark("pagerank/scale_summary")
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/pagerank_scale_summary.py"
