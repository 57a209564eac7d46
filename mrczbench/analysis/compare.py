"""`mrczbench compare BASE NEW`: what got faster, slower, smaller or larger between two runs.

Cases are matched across runs by what they measure — dataset (name, dose, shape, dtype), format
and its full parameters, and op — never by run id, so runs on different days line up.
Per (case, op) the median time ratio NEW/BASE gets a two-sided Mann-Whitney U test and a
bootstrap 95 % confidence interval. A change counts only when it is significant (p < alpha)
and beyond the factor; with fewer than --min-samples valid samples on a side the verdict is
"insufficient samples" (Mann-Whitney cannot reach p < 0.05 with two samples a side).
Medians and the "unstable" flag come from mrczbench.analysis.stats, the rule the terminal
summary and the report use.

Exit status (usable as a CI gate): 1 when something regressed — significantly slower beyond
the factor, stored size larger beyond the factor, or a case that ran in BASE now errors —
2 for unreadable or missing result files, bad options, or when nothing was tested (no case
in common, or cases matched but none had --min-samples valid samples on both sides),
0 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrczbench.analysis import stats
from mrczbench.atomic import atomic_output
from mrczbench.errors import ResultsError
from mrczbench.units import format_number

MATCH_KEY = ["dataset", "dose", "frames", "ny", "nx", "dtype", "format", "params", "op"]
DEFAULT_FACTOR = 1.1
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 5
BOOTSTRAP_RESAMPLES = 2000
SAME_SIZE_TOLERANCE = 0.001  # stored sizes within 0.1 % count as unchanged

VERDICT_ORDER = ["REGRESSION", "slower", "error in NEW", "larger", "faster", "smaller",
                 "within factor", "no significant change", "insufficient samples",
                 "only in BASE", "only in NEW", "error in both"]


def _keyed(rows):
    """Rows with a hashable match key (NaN-free strings, so missing dose etc. still match)."""
    rows = rows.copy()
    # missing values (no dose for users' movies) become "" first: under pandas 3, astype(str)
    # leaves NaN in place and the join would fail
    keys = rows[MATCH_KEY].astype(object)
    rows["key"] = keys.where(keys.notna(), "").astype(str).agg(" | ".join, axis=1)
    return rows


def bootstrap_ratio_ci(base, new, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0):
    """95 % bootstrap interval of median(new) / median(base)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    base_medians = np.median(rng.choice(base, (resamples, len(base))), axis=1)
    new_medians = np.median(rng.choice(new, (resamples, len(new))), axis=1)
    low, high = np.percentile(new_medians / base_medians, [2.5, 97.5])
    return float(low), float(high)


TESTED_VERDICTS = ("slower", "faster", "within factor", "no significant change")


def check_options(factor: float, alpha: float, min_samples: int) -> None:
    if not factor >= 1:  # also refuses NaN
        raise ResultsError(f"--factor: expected a number >= 1. Got {factor}")
    if not 0 < alpha < 1:
        raise ResultsError(f"--alpha: expected a significance level with 0 < alpha < 1 "
                           f"(e.g. 0.05). Got {alpha}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise ResultsError(f"--min-samples: expected an integer >= 1. Got {min_samples}")


def nothing_tested(table) -> bool:
    """True when cases matched between the runs but none had enough valid samples on both
    sides to be tested (every timing verdict is "insufficient samples")."""
    if not len(table):
        return False
    return (not table["time"].isin(TESTED_VERDICTS).any()
            and (table["time"] == "insufficient samples").any())


def compare_rows(base_rows, new_rows, factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA,
                 min_samples: int = DEFAULT_MIN_SAMPLES):
    """One row per (case, op) found in either run, with the verdicts. Input: normalised rows
    (mrczbench.analysis.results.normalise_rows). `unstable` names the runs (BASE, NEW) whose
    series is unstable by stats.is_unstable."""
    import pandas as pd
    from scipy.stats import mannwhitneyu

    check_options(factor, alpha, min_samples)
    base, new = _keyed(base_rows), _keyed(new_rows)
    table = []
    for key in sorted(set(base["key"]) | set(new["key"])):
        b, n = base[base["key"] == key], new[new["key"] == key]
        first = (n if len(n) else b).iloc[0]
        b_times = b[b["error"].isna() & b["valid"]]["seconds"].dropna().to_numpy(float)
        n_times = n[n["error"].isna() & n["valid"]]["seconds"].dropna().to_numpy(float)
        b_summary = stats.summarise(b_times) if len(b_times) else None
        n_summary = stats.summarise(n_times) if len(n_times) else None
        row = {"dataset": first["dataset"], "contender": first["label"], "op": first["op"],
               "n BASE": len(b_times), "n NEW": len(n_times),
               "BASE median (s)": b_summary.median if b_summary else None,
               "NEW median (s)": n_summary.median if n_summary else None,
               "unstable": ", ".join(side for side, summary in (("BASE", b_summary), ("NEW", n_summary))
                                     if summary and summary.unstable),
               "time NEW/BASE": None, "95% CI": "", "p": None, "time": "",
               "size NEW/BASE": None, "size": "", "regression": False}
        b_errors, n_errors = b["error"].notna().any(), n["error"].notna().any()
        if b.empty:
            row["time"] = "only in NEW"
        elif n.empty:
            row["time"] = "only in BASE"
        elif n_errors and not len(n_times):
            row["time"] = "error in both" if b_errors and not len(b_times) else "error in NEW"
            row["regression"] = row["time"] == "error in NEW"
        elif len(b_times) < min_samples or len(n_times) < min_samples:
            row["time"] = "insufficient samples"
            if len(b_times) and len(n_times):
                row["time NEW/BASE"] = row["NEW median (s)"] / row["BASE median (s)"]
        else:
            ratio = row["NEW median (s)"] / row["BASE median (s)"]
            p = float(mannwhitneyu(b_times, n_times, alternative="two-sided").pvalue)
            low, high = bootstrap_ratio_ci(b_times, n_times)
            row.update({"time NEW/BASE": ratio, "95% CI": f"{format_number(low)}–{format_number(high)}", "p": p})
            if p >= alpha:
                row["time"] = "no significant change"
            elif ratio > factor:
                row["time"], row["regression"] = "slower", True
            elif ratio < 1 / factor:
                row["time"] = "faster"
            else:
                row["time"] = "within factor"
        b_size, n_size = b["stored_bytes"].dropna(), n["stored_bytes"].dropna()
        if len(b_size) and len(n_size) and b_size.median() > 0:
            size_ratio = n_size.median() / b_size.median()
            row["size NEW/BASE"] = size_ratio
            if size_ratio > 1 + SAME_SIZE_TOLERANCE:
                row["size"] = "larger"
                row["regression"] = row["regression"] or size_ratio > factor
            elif size_ratio < 1 - SAME_SIZE_TOLERANCE:
                row["size"] = "smaller"
        table.append(row)
    table = pd.DataFrame(table)
    if len(table):
        rank = {verdict: i for i, verdict in enumerate(VERDICT_ORDER)}
        table["_rank"] = [0 if r else rank.get(v, len(rank))
                          for r, v in zip(table["regression"], table["time"])]
        table = table.sort_values(["_rank", "dataset", "contender", "op"]).drop(columns="_rank")
    return table.reset_index(drop=True)


def _format(value) -> str:
    if isinstance(value, bool):
        return "REGRESSION" if value else ""
    return format_number(value)


def render(table) -> str:
    columns = ["dataset", "contender", "op", "n BASE", "n NEW", "BASE median (s)",
               "NEW median (s)", "unstable", "time NEW/BASE", "95% CI", "p", "time",
               "size NEW/BASE", "size", "regression"]
    cells = [[_format(v) for v in row] for row in table[columns].itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def summary_line(table, factor: float) -> str:
    counts = {name: int((table["time"] == name).sum())
              for name in ("slower", "faster", "within factor", "no significant change",
                           "insufficient samples", "error in NEW", "error in both",
                           "only in BASE", "only in NEW")}
    counts["larger"] = int((table["size"] == "larger").sum())
    counts["smaller"] = int((table["size"] == "smaller").sum())
    parts = [f"{count} {name}" for name, count in counts.items() if count]
    regressions = int(table["regression"].sum())
    verdict = (f"REGRESSION: {regressions} case/op(s) worse beyond ×{factor:g}" if regressions
               else f"no regression beyond ×{factor:g}")
    return f"{len(table)} case/op(s): {', '.join(parts) or 'nothing to compare'}. {verdict}."


def run_compare(args: argparse.Namespace) -> int:
    from mrczbench.analysis.results import load_result_files
    check_options(args.factor, args.alpha, args.min_samples)
    base = load_result_files([args.base]).rows
    new = load_result_files([args.new]).rows
    table = compare_rows(base, new, factor=args.factor, alpha=args.alpha,
                         min_samples=args.min_samples)
    print(render(table))
    print()
    print(summary_line(table, args.factor))
    if args.csv:
        with atomic_output(Path(args.csv), "w") as handle:
            handle.write(table.to_csv(index=False))
    if table["regression"].any():
        return 1  # size regressions and newly-erroring cases gate even without timing tests
    if len(table) and table["time"].isin(["only in BASE", "only in NEW"]).all():
        print("mrczbench compare: error: nothing was tested: BASE and NEW have no case in "
              "common (different suites, datasets or contender settings)", file=sys.stderr)
        return 2
    if nothing_tested(table):
        # a CI gate must not pass while testing nothing
        print(f"mrczbench compare: error: nothing was tested: no case has ≥ {args.min_samples} "
              f"valid samples on both sides (run with --repeats {args.min_samples} or more)",
              file=sys.stderr)
        return 2
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs; exit 1 on a significant regression (CI gate)",
        description="Compare result files of two runs, case by case (matched by dataset, format "
        "parameters and op, not by run id). Per case and op: median time NEW/BASE, a two-sided "
        "Mann-Whitney U test and a bootstrap 95 % confidence interval, and the stored-size "
        "ratio. Exit 1 when something regressed (significantly slower, or larger on disk, "
        "beyond --factor; or a case that ran in BASE errors in NEW); 2 when result files are "
        "missing or unreadable, or when nothing was tested (no matched case has "
        "--min-samples valid samples on both sides); 0 otherwise.")
    parser.add_argument("base", metavar="BASE", help="result file (.jsonl) or folder of the baseline")
    parser.add_argument("new", metavar="NEW", help="result file (.jsonl) or folder to check")
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                        help="a change counts beyond this ratio (default %(default)s: 10 %%)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="significance level of the test, 0 < alpha < 1 (default %(default)s)")
    parser.add_argument("--min-samples", type=int, default=DEFAULT_MIN_SAMPLES,
                        help="valid samples needed on each side to test (default %(default)s)")
    parser.add_argument("--csv", metavar="FILE", help="also write the comparison table as CSV")
    parser.set_defaults(func=run_compare)
