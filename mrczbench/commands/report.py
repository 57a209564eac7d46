"""`mrczbench report RESULTS...`: figures and tables from result files
(mrczbench.analysis.report)."""
from __future__ import annotations

import argparse
from pathlib import Path

from mrczbench.analysis import report
from mrczbench.analysis.results import load_result_files


def run_report(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from mrczbench.analysis.report.writer import write_report
    from mrczbench.atomic import protect_inputs
    protect_inputs(args.results)
    results = load_result_files(args.results)
    out = Path(args.out) if args.out else report.default_out(results)
    written = write_report(results, out)
    figures = sum(1 for path in written if path.suffix == ".png")
    print(f"wrote {figures} figures and {len(written)} files to {out}/ (open {out / 'index.html'})")
    from mrczbench.analysis.report.about import QUICK_WARNING, quick_runs
    if quick_runs(results):
        print(f"note: {QUICK_WARNING}")
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="figures and tables (paper Fig. 2, 3, Table 1) from result files",
        description="Read result files (JSONL rows, or folders of them) and write PNG/SVG "
        "figures, Markdown/CSV tables and a self-contained index.html. Only the figures the "
        "data supports are made (a dose sweep gives the ratio-vs-dose figure, a thread sweep "
        "the threads figure, ...); Table 1 and Fig. 3 come from suites that declare them "
        "(`figure = \"Table 1\"` / \"Fig. 3\"). Ratio = stored/raw, MB = 2^20 bytes. The report "
        "never overwrites or removes a file in the output folder that it did not write itself "
        "(it keeps a list in .mrczbench-report.json there).")
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="result files (.jsonl) or folders holding them")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: reports/<suite>/)")
    parser.set_defaults(func=run_report)
