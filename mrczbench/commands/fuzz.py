"""`mrczbench fuzz`: mutated inputs through every reader, outcome counts per reader."""
from __future__ import annotations

import argparse
import sys

from mrczbench.argtypes import add_no_progress, names_from, positive_int, positive_number
from mrczbench.errors import MrczbenchError


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "fuzz", help="fuzz every reader with mutated files (crash, hang, memory, wrong data)",
        description="Mutate valid seed files of every reader (MRC, MRCZ, TIFF, EER, .npy, "
        ".lst/.star, framed containers, suite and dataset TOML, result JSONL) and read each "
        "in a child process with a time and memory limit. Expected outcomes: ok, "
        "documented-error, payload-changed (pixel bytes no checksum covers), reinterpreted "
        "(header says other dtype/shape for the same bytes), warned (a different array the "
        "reader warned about), accepted (edited text that "
        "still parses). Anything else is unexpected: exit status 1.",
        epilog="Example: mrczbench fuzz --seconds 60 --seed 1 --save-failures fuzz-failures")
    parser.add_argument("--seconds", type=positive_number, default=60.0,
                        help="how long to fuzz, in seconds (default 60)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed: the same seed gives the same inputs (default 0)")
    parser.add_argument("--readers", default=None,
                        help="comma-separated readers to fuzz (default: all): mrc, mrcz, mrcz-frames, "
                        "movies-mrc, tiff, eer, npy, lst, star, framed, suite, dataset, results")
    parser.add_argument("--max-inputs", type=positive_int, default=None,
                        help="stop after this many inputs (default: no limit)")
    parser.add_argument("--time-limit", type=positive_number, default=10.0,
                        help="seconds one read may take before it counts as a hang (default 10)")
    parser.add_argument("--memory-mib", type=positive_int, default=512,
                        help="MiB the reader may allocate beyond the worker's start (default 512)")
    parser.add_argument("--save-failures", metavar="DIR", default=None,
                        help="save each unexpected input (with finding.json) under DIR")
    add_no_progress(parser)
    parser.set_defaults(func=_cmd_fuzz)


def _cmd_fuzz(args) -> int:
    from mrczbench.fuzz.runner import EXPECTED, READERS, UNEXPECTED, run_fuzz
    readers = list(READERS)
    if args.readers is not None:  # checked here: the reader table loads only when fuzzing
        try:
            readers = list(names_from(READERS, "reader")(args.readers))
        except argparse.ArgumentTypeError as exc:
            raise MrczbenchError(f"--readers: {exc}") from None
    print(f"fuzz: seed {args.seed}, {args.seconds:g} s, readers {', '.join(readers)}", file=sys.stderr)
    report = run_fuzz(seconds=args.seconds, seed=args.seed, readers=readers,
                      max_inputs=args.max_inputs, save_failures=args.save_failures,
                      time_limit=args.time_limit, memory_mib=args.memory_mib,
                      progress=None if args.no_progress else
                      lambda line: print(line, file=sys.stderr, flush=True))
    outcomes = EXPECTED + UNEXPECTED
    width = max(len(r) for r in readers)
    print(f"{'reader':<{width}}  {'inputs':>6}  " + "  ".join(outcomes))
    for reader in readers:
        counts = report.counts[reader]
        print(f"{reader:<{width}}  {sum(counts.values()):>6}  "
              + "  ".join(f"{counts.get(o, 0):>{len(o)}}" for o in outcomes))
    print(f"total: {report.total} inputs in {report.seconds:.0f} s, {report.unexpected} unexpected")
    for finding in report.findings:
        print(f"UNEXPECTED {finding.reader} #{finding.number} {finding.seed_file} "
              f"{finding.mutation}: {finding.outcome}: {finding.detail[:300]}"
              + (f" (saved: {finding.saved})" if finding.saved else ""))
    return 1 if report.findings else 0
