"""`mrczbench compare BASE NEW`: compare two runs (mrczbench.analysis.compare; the exit status
is a CI gate, see there)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrczbench.analysis import compare
from mrczbench.analysis.compare_text import (CONTENDER_COLUMNS, contender_line, render,
                                             shift_line, summary_line)
from mrczbench.analysis.fairness import run_warnings
from mrczbench.analysis.results import load_result_files
from mrczbench.atomic import atomic_output, protect_inputs
from mrczbench.spreadsheet import safe_table


def run_compare(args: argparse.Namespace) -> int:
    compare.check_options(args.factor, args.alpha, args.min_samples)
    protect_inputs([args.base, args.new], [args.csv])
    base = load_result_files([args.base])
    new = load_result_files([args.new])
    comparison = compare.compare_runs(base.rows, new.rows, factor=args.factor, alpha=args.alpha,
                              min_samples=args.min_samples)
    table = comparison.cases
    warnings = run_warnings(base.runs, new.runs)
    for warning in warnings:
        print(f"mrczbench compare: warning: {warning}", file=sys.stderr)
    if args.csv:  # first: an unwritable CSV is the one error line
        with atomic_output(Path(args.csv), "w") as handle:
            handle.write(safe_table(table).to_csv(index=False))
    untested = not comparison.regressed and compare.nothing_tested(table)
    if untested:
        # said first, in one line: a table of hundreds of "insufficient samples" rows says
        # nothing more (--csv still writes it)
        print(f"mrczbench compare: error: nothing was tested: no case has ≥ {args.min_samples} "
              f"valid samples on both sides (run both with --repeats {args.min_samples} or more, "
              f"or compare with --min-samples N)", file=sys.stderr, flush=True)
    else:
        print(render(table))
        print()
    if comparison.contenders is not None and not untested:
        print(render(comparison.contenders, CONTENDER_COLUMNS))
        print()
    print(shift_line(comparison, args.factor))
    print(contender_line(comparison, args.factor, args.alpha))
    print(summary_line(table, args.factor, args.alpha, comparison.contender_regressions))
    for warning in warnings:
        print(f"warning: {warning}")
    if comparison.regressed:
        return 1  # size regressions and newly-erroring cases gate even without timing tests
    if len(table) and table["time"].isin(["only in BASE", "only in NEW"]).all():
        print("mrczbench compare: error: nothing was tested: BASE and NEW have no case in "
              "common (different suites, datasets or contender settings)", file=sys.stderr)
        return 2
    if untested:
        return 2  # a CI gate must not pass while testing nothing
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs; exit 1 on a significant regression (CI gate)",
        description="Compare result files of two runs, case by case (matched by dataset, format "
        "parameters and op, not by run id). The run-wide shift (median time ratio over all "
        "case/ops) is reported and the tests are relative to it (vs run). Per case and op: "
        "median time NEW/BASE, a two-sided Welch t-test on log(seconds) with the op's drift "
        "between runs in its variance (p), Benjamini-Hochberg over all case/ops (p adj), a "
        "bootstrap 95 % confidence interval, and the stored-size ratio (exact, not tested); "
        "per contender, its case/ops pooled. Warns when a run was busy, or BASE and NEW ran on "
        "other machines, mrczbench versions or eviction methods. Exit 1 when something "
        "regressed (a case/op or contender slower with p adj < --alpha, or larger on disk, "
        "beyond --factor; or a case that ran in BASE errors in NEW); 2 when result files are "
        "missing or unreadable, or when nothing was tested (no matched case has "
        "--min-samples valid samples on both sides); 0 otherwise.")
    parser.add_argument("base", metavar="BASE", help="result file (.jsonl) or folder of the baseline")
    parser.add_argument("new", metavar="NEW", help="result file (.jsonl) or folder to check")
    parser.add_argument("--factor", type=float, default=compare.DEFAULT_FACTOR,
                        help="a change counts beyond this ratio (default %(default)s: 10 %%)")
    parser.add_argument("--alpha", type=float, default=compare.DEFAULT_ALPHA,
                        help="false discovery rate of the corrected tests, 0 < alpha < 1 (default %(default)s)")
    parser.add_argument("--min-samples", type=int, default=compare.DEFAULT_MIN_SAMPLES,
                        help="valid samples needed on each side to test (default %(default)s)")
    parser.add_argument("--csv", metavar="FILE", help="also write the comparison table as CSV")
    parser.set_defaults(func=run_compare)
