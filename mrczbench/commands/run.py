"""`mrczbench run`: run a benchmark suite (mrczbench.bench.runner) and print the run's
summary (mrczbench.analysis.summary)."""
from __future__ import annotations

import sys

from mrczbench import store
from mrczbench.analysis.summary import print_summary
from mrczbench.argtypes import EER_GROUPING, add_no_progress, positive_int, positive_number, precision_fraction
from mrczbench.bench import plan, runner, suites, timing


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a benchmark suite",
        description="Run a benchmark suite and append one result row per sample to "
                    "results/<suite>/<run-id>.jsonl (metadata in <run-id>.run.json).",
        epilog="Example: mrczbench run --suite dose-sweep --quick")
    parser.add_argument("--suite", required=True, help="suite name (see `mrczbench suites list`) or a .toml file")
    parser.add_argument("--quick", action="store_true", help="the suite's quick profile: small frames, few "
                        "repeats; a smoke test, not figures to quote (= --profile quick)")
    parser.add_argument("--profile", choices=suites.PROFILES, help="full (default: what to quote), quick, or "
                        "reference (the full profile reduced as the suite's [reference] table says, "
                        "for the committed reference runs)")
    parser.add_argument("--data", nargs="+", metavar="FILE",
                        help="your movies (or .lst/.star lists of them) in place of the suite's synthetic datasets")
    parser.add_argument("--eer-grouping", type=positive_int, default=None, metavar="N",
                        help=f"--data EER movies: internal frames summed into one frame (RELION's "
                        f"--eer_grouping; default {EER_GROUPING}, or the resumed run's)")
    parser.add_argument("--out", metavar="DIR", help="folder for the run files (default: results/<suite>)")
    parser.add_argument("--scratch", metavar="DIR",
                        help="folder for the files written while timing (default: inside --out, the same "
                             "filesystem); removed at the end")
    parser.add_argument("--resume", action="store_true",
                        help="continue the latest run of this suite in the output folder, skipping "
                             "finished cases, with that run's profile, data and settings")
    parser.add_argument("--repeats", type=positive_int, metavar="N",
                        help="samples per operation: with --precision the minimum, alone "
                             "exactly N (no precision target)")
    parser.add_argument("--precision", type=precision_fraction, metavar="FRACTION",
                        help="sample each case until the 95 %% interval of every median is "
                             "within ±FRACTION (default: the suite's, 0.05 for the full and "
                             "reference profiles; 0 = a fixed count of --repeats samples)")
    parser.add_argument("--timeout", type=positive_number, metavar="SECONDS",
                        help="limit per case (overrides the suite)")
    parser.add_argument("--seed", type=int, help="seed of the shuffled case order (overrides the suite)")
    parser.add_argument("--cache-dir", metavar="DIR", help="dataset cache (default $MRCZBENCH_CACHE or ~/.cache/mrczbench)")
    parser.add_argument("--eviction", choices=("auto",) + timing.EVICTION_METHODS, default="auto",
                        help="page-cache eviction before cold reads. Default auto = fadvise: fsync + "
                             "posix_fadvise DONTNEED on the benchmark's own files only (on --resume: the "
                             "original run's method). drop_caches empties the page cache of the whole "
                             "machine, other users' jobs included: opt-in, for a dedicated machine, as "
                             "root. none: cold reads are marked invalid")
    parser.add_argument("--list-cases", action="store_true", help="print the cases in run order and exit")
    add_no_progress(parser)
    parser.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    if args.list_cases:
        suite = suites.load_suite(args.suite, quick=args.quick, profile=args.profile)
        if args.seed is not None:
            suite.seed = args.seed
        for case in plan.order_cases(suite.cases(data=args.data, eer_grouping=args.eer_grouping
                                                 or EER_GROUPING), suite.seed):
            print(case.case_id)
        return 0
    path = runner.run_suite(args.suite, quick=args.quick, profile=args.profile, data=args.data,
                            out=args.out, scratch=args.scratch, resume=args.resume,
                            repeats=args.repeats, timeout=args.timeout, seed=args.seed,
                            cache_dir=args.cache_dir, eviction=args.eviction,
                            progress=not args.no_progress,
                            command_line=["mrczbench"] + sys.argv[1:],
                            eer_grouping=args.eer_grouping, precision=args.precision)
    print_summary(path)
    rows = list(store.iter_rows(path))
    return 1 if rows and all(row.get("error") for row in rows) else 0
