"""``python -m nnflow``: list the runs of a result set, keep snapshots, compare two result sets,
the headline numbers at the end of a reproduction, and where its time went per stage.

Bad input (a directory without results, an unknown snapshot, an unreadable file) ends
as argparse ends a bad command line: the usage, one line naming the problem, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nnflow.compare.diff import Comparison, compare
from nnflow.compare.headline import headline_text
from nnflow.compare.results import DEFAULT_RESULTS, latest_snapshot, load_result_set, resolve
from nnflow.compare.snapshot import make_snapshot
from nnflow.compare.stages import job_periods, job_times, stages_markdown, summarise_stages
from nnflow.compare.text import comparison_text, runs_text
from nnflow.files import write_csv

DEFAULT_CONFIG = "config.yaml"  # the Snakefile's configfile
DEFAULT_REPORT = "results/report.html"  # where `make reproduce` writes the report
COMPARISON_COLUMNS = ["kind", "where", "key", "old", "new", "delta"]
WHERE = (
    "A result set is a results directory (default: results/) or a snapshot, named by its "
    "path or, for one in results/snapshots/, by its name."
)


def _results_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default=DEFAULT_RESULTS, metavar="DIR",
                        help="the results directory of the workflow, whose snapshots/ holds the "
                             "named snapshots (default: %(default)s)")


def _all_runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all-runs", action="store_true",
                        help="also take the runs on disk that summary.csv does not list (left over "
                             "from an earlier config: Snakemake does not delete them); by default "
                             "they are only named")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nnflow",
        description="Look at the results of nnflow reproductions: list runs, keep a snapshot "
                    "before changing parameters, and compare before with after.",
        epilog="Typical use: `python -m nnflow snapshot before`, edit config.yaml, `make reproduce`, "
               "then `python -m nnflow compare before`.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = commands.add_parser(
        "runs", help="list the runs of a result set with their parameters and headline metrics",
        description="List every run, one table per experiment: the run label, the parameters that "
                    "vary within the experiment (beyond those the label spells out), seed, status, "
                    "epochs, final and best accuracy (test for network2, validation for Solver runs; "
                    "a search's final run also its test accuracy measured once) and seconds. " + WHERE)
    runs.add_argument("source", nargs="?", metavar="DIR",
                      help="the result set (default: the results directory)")
    runs.add_argument("--experiment", metavar="NAME", help="list only this experiment's runs")
    _all_runs_option(runs)
    _results_option(runs)
    runs.set_defaults(handler=_runs, command_parser=runs)

    snapshot = commands.add_parser(
        "snapshot", help="keep the current results as a small named snapshot",
        description="Copy the run.json and metrics.csv of every run and the small JSON/CSV tables "
                    "into results/snapshots/NAME (or into NAME if it is a path with a slash). "
                    "Weights and data are not copied: each model.npz is recorded by its SHA-256, "
                    "so changed weights stay detectable. The manifest snapshot.json records the "
                    "time, the git commit and the config file's SHA-256. An existing snapshot is "
                    "never overwritten.")
    snapshot.add_argument("name", metavar="NAME", help="the snapshot's name (or a path)")
    snapshot.add_argument("--config", metavar="FILE", default=None,
                          help="the config the results were made with; hashed and copied into the "
                               "snapshot (default: config.yaml if it exists)")
    _results_option(snapshot)
    snapshot.set_defaults(handler=_snapshot, command_parser=snapshot)

    comp = commands.add_parser(
        "compare", help="show what changed between two result sets (table, and CSV + figure with --out)",
        description="Compare result set A (before) with B (after), matching runs by run ID: runs "
                    "added and removed, changed parameters, status, metrics (old, new, delta) and "
                    "weights (model.npz SHA-256), changed theory/PageRank numbers, and how many runs "
                    "are identical. Wall-clock seconds are not compared. " + WHERE)
    comp.add_argument("a", nargs="?", metavar="A",
                      help="the 'before' result set (default: the newest snapshot in results/snapshots/)")
    comp.add_argument("b", nargs="?", metavar="B",
                      help="the 'after' result set (default: the results directory)")
    comp.add_argument("--threshold", type=float, default=0.0, metavar="X",
                      help="numbers that differ by at most X count as equal: hides floating-point "
                           "noise (default: %(default)s, exact)")
    comp.add_argument("--all-metrics", action="store_true",
                      help="list every changed metric, not only the headline ones (accuracies, epochs)")
    _all_runs_option(comp)
    comp.add_argument("--out", metavar="DIR",
                      help="also write DIR/compare.csv (every difference) and DIR/compare.png + .pdf "
                           "(headline accuracy of each changed run, A vs B)")
    _results_option(comp)
    comp.set_defaults(handler=_compare, command_parser=comp)

    headline = commands.add_parser(
        "headline", help="where the report is, and the headline number of each experiment's runs",
        description="Print the report's path and one row per experiment and run label: the headline "
                    "metric (a search's final test accuracy measured once, else the final test "
                    "accuracy of network2 runs, else the final validation accuracy of Solver runs) as "
                    "the mean and min-max over seeds. `make reproduce` ends with it. " + WHERE)
    headline.add_argument("source", nargs="?", metavar="DIR",
                          help="the result set (default: the results directory)")
    headline.add_argument("--report", default=DEFAULT_REPORT, metavar="FILE",
                          help="the HTML report to point to (default: %(default)s)")
    _results_option(headline)
    headline.set_defaults(handler=_headline, command_parser=headline)

    stages = commands.add_parser(
        "stages", help="time per stage of a reproduction (from the jobs' benchmark files), as Markdown",
        description="Sum the jobs' Snakemake benchmark files per stage (runs/<experiment>, data, "
                    "experiments/<search>, pagerank/scale): jobs, wall and CPU seconds, CPU per wall "
                    "second, longest job, wall-clock span, peak RSS, and the machine's 1-minute load "
                    "average at the jobs' start and end (from their logs). The README's stage table "
                    "is this output. A results directory keeps each job's last benchmark: when its "
                    "jobs ran in separate periods (a partial rerun), the table says so.")
    stages.add_argument("source", nargs="?", default=DEFAULT_RESULTS, metavar="DIR",
                        help="the results directory of a run (default: %(default)s)")
    stages.add_argument("--latest", action="store_true",
                        help="only the jobs of the last period of work (the last invocation)")
    stages.set_defaults(handler=_stages, command_parser=stages)
    return parser


def comparison_rows(c: Comparison) -> list[dict[str, object]]:
    return [{"kind": d.kind, "where": d.where, "key": d.key, "old": d.old, "new": d.new, "delta": d.delta}
            for d in c.differences]


def _runs(args: argparse.Namespace) -> str:
    results = load_result_set(resolve(args.source, args.results), hash_models=False, all_runs=args.all_runs)
    return runs_text(results, args.experiment)


def _headline(args: argparse.Namespace) -> str:
    results = load_result_set(resolve(args.source, args.results), hash_models=False)
    return headline_text(results, args.report)


def _stages(args: argparse.Namespace) -> str:
    periods = job_periods(job_times(args.source))
    if args.latest:
        periods = periods[-1:]
    return stages_markdown(summarise_stages([job for p in periods for job in p]), periods)


def _snapshot(args: argparse.Namespace) -> str:
    config = args.config
    if config is None and Path(DEFAULT_CONFIG).is_file():
        config = DEFAULT_CONFIG
    manifest = make_snapshot(args.name, args.results, config)
    models = manifest["models"]
    model_bytes = sum(m["bytes"] for m in models.values())
    return (f"snapshot {manifest['name']!r} in {manifest['path']}: {manifest['files']} files, "
            f"{manifest['bytes'] / 1e6:.1f} MB; {len(models)} weight files ({model_bytes / 1e6:.1f} MB) "
            f"recorded by SHA-256, not copied\n")


def _compare(args: argparse.Namespace) -> str:
    a_dir = resolve(args.a, args.results) if args.a is not None else latest_snapshot(args.results)
    b_dir = resolve(args.b, args.results)
    a, b = (load_result_set(d, all_runs=args.all_runs) for d in (a_dir, b_dir))
    comparison = compare(a, b, args.threshold)
    text = comparison_text(comparison, all_metrics=args.all_metrics)
    if args.out is not None:
        from nnflow.compare.figure import comparison_figure  # matplotlib only when a figure is asked for

        out = Path(args.out)
        write_csv(out / "compare.csv", comparison_rows(comparison), COMPARISON_COLUMNS)
        paths = comparison_figure(comparison, out / "compare.png")
        text += f"\nwrote {out / 'compare.csv'}, {', '.join(str(p) for p in paths)}\n"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        text = args.handler(args)
    except (ValueError, OSError) as exc:
        args.command_parser.error(str(exc))  # the subcommand's usage and the message; exits 2
    sys.stdout.write(text)
    return 0
