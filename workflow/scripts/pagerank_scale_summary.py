"""Scale study table (CSV + rst), figure and caption."""

from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    from nnflow.files import read_json, write_csv
    from nnflow.pagerank import figures as plots
    from nnflow.report.captions import render_caption

    rows = [read_json(p)["row"] for p in smk.input.cases]
    cols = [
        "case",
        "case_kind",
        "n",
        "links",
        "duplicates",
        "dangling",
        "iterations",
        "final_residual",
        "generate_s",
        "build_s",
        "pagerank_s",
        "per_iteration_s",
        "matvec_s",
        "csr_mb",
        "peak_traced_mb",
        "maxrss_mb",
        "alpha",
        "tol",
        "links_given",
    ]
    write_csv(smk.output.csv, rows, cols)
    plots.plot_scale(rows, out=smk.output.figure)

    head = [
        "case",
        "pages",
        "links",
        "iterations",
        "time (s)",
        "s/iteration",
        "s/matvec",
        "CSR (MB)",
        "peak (MB)",
    ]
    body = [
        [
            r["case"],
            f"{r['n']:,}",
            f"{r['links']:,}",
            str(r["iterations"]),
            f"{r['pagerank_s']:.3g}",
            f"{r['per_iteration_s']:.3g}",
            f"{r['matvec_s']:.3g}",
            f"{r['csr_mb']:.0f}",
            f"{r['peak_traced_mb']:.0f}",
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    sep = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    table = "\n".join([sep, line(head), sep, *map(line, body), sep])
    big = max(rows, key=lambda r: r["links"])
    largest = (
        f"{big['case']} ({big['n']:,} pages, {big['links']:,} links): {big['iterations']} iterations "
        f"in {big['pagerank_s']:.3g} s ({big['per_iteration_s']:.3g} s per iteration vs "
        f"{big['matvec_s']:.3g} s for one mat-vec), graph construction {big['build_s']:.3g} s, "
        f"peak traced memory {big['peak_traced_mb']:.0f} MB for a {big['csr_mb']:.0f} MB CSR matrix"
    )
    render_caption(
        smk.input.template,
        {"alpha": rows[0]["alpha"], "tol": rows[0]["tol"], "table": table, "largest": largest},
        smk.output.caption,
    )
