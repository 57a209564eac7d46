"""Issue 17's figures: the per-frame coders and byte streams against MRCZ zstd-1 and the bound.

Standalone script, not an asv benchmark. For each dose, one Poisson movie (default one
3838x3710 int8 frame, as issue 17's table) is coded in memory by every contender with the
same `threads`; each round trip is checked bit-exact first. Contenders are timed round-robin
(`--repeats` rounds after a warm-up round, the starting contender rotating) so that load from
other users of a shared machine spreads over all of them; figures are medians. Printed per
dose and contender: size / Shannon bound (mrczbench.movies.entropy, the stack's own
histogram), encode and decode MiB/s of raw data, and both speeds relative to MRCZ zstd-1 in
the same run. The last lines name the smallest lossless store at dose 1 and its speed.

    python benchmarks/scripts/bench_contenders.py [--doses 0.1 1 4] [--frames 1] [--threads 2]

Target (issue 17): the smallest store at dose 1 within 1 % of the bound.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from mrczbench.formats import get_format
from mrczbench.movies import entropy
from mrczbench.movies.synthetic import poisson_movie

REFERENCE = "mrcz zstd-1"
# label -> (format, parameters); threads are added from --threads
CONTENDERS = {
    REFERENCE: ("mrcz", {"codec": "zstd", "level": 1}),
    "mrcz zstd-1 shuffle": ("mrcz", {"codec": "zstd", "level": 1, "filter": "shuffle"}),
    "mrcz zstd-1 none": ("mrcz", {"codec": "zstd", "level": 1, "filter": "none"}),
    "pcodec-8": ("pcodec", {"level": 8}),
    "pcodec-4": ("pcodec", {"level": 4}),
    "lerc": ("lerc", {}),
    "lerc zstd": ("lerc", {"compression": "zstd"}),
    "jpegls": ("jpegls", {}),
    "htj2k": ("htj2k", {}),
    "zstd-1 stream": ("zstd", {"level": 1}),
    "lz4-1 stream": ("lz4", {"level": 1}),
}


def timed_round_robin(jobs: dict, repeats: int) -> dict[str, float]:
    """Median seconds per job; round 0 warms up; the starting job rotates each round."""
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    names = list(jobs)
    for round_ in range(repeats + 1):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            start = time.perf_counter()
            jobs[name]()
            if round_:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def run_dose(dose: float, args) -> list[dict]:
    stack = poisson_movie(args.frames, (args.ny, args.nx), dose, seed=args.seed)
    raw_mib = stack.nbytes / 2**20
    bound = entropy.bound_ratio(stack) * stack.nbytes
    formats, blobs = {}, {}
    for label, (name, params) in CONTENDERS.items():
        fmt = get_format(name, threads=args.threads, **params)
        reason = fmt.unavailable_reason() or fmt.check_data(stack)
        if reason:
            print(f"  skip {label}: {reason}")
            continue
        blob = fmt.encode(stack)
        back = fmt.decode(blob, stack.shape, stack.dtype)
        if not np.array_equal(back.view(np.uint8), stack.view(np.uint8)):
            raise SystemExit(f"{label}: round trip is not bit-exact at dose {dose}")
        formats[label], blobs[label] = fmt, blob
    encode = timed_round_robin({label: (lambda f=f: f.encode(stack))
                                for label, f in formats.items()}, args.repeats)
    decode = timed_round_robin({label: (lambda f=f, b=blobs[label]:
                                        f.decode(b, stack.shape, stack.dtype))
                                for label, f in formats.items()}, args.repeats)
    rows = []
    for label in formats:
        rows.append({"dose": dose, "label": label, "size_over_bound": len(blobs[label]) / bound,
                     "ratio": len(blobs[label]) / stack.nbytes,
                     "encode_mibs": raw_mib / encode[label], "decode_mibs": raw_mib / decode[label]})
    ref = next(r for r in rows if r["label"] == REFERENCE)
    for row in rows:
        row["encode_vs_ref"] = row["encode_mibs"] / ref["encode_mibs"]
        row["decode_vs_ref"] = row["decode_mibs"] / ref["decode_mibs"]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doses", type=float, nargs="+", default=[0.1, 1.0, 4.0],
                        help="e/px/frame (default 0.1 1 4)")
    parser.add_argument("--frames", type=int, default=1, help="frames per movie (default 1)")
    parser.add_argument("--ny", type=int, default=3838)
    parser.add_argument("--nx", type=int, default=3710)
    parser.add_argument("--threads", type=int, default=2, help="threads of every contender")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"{args.frames} x {args.ny} x {args.nx} int8 Poisson, threads={args.threads}, "
          f"medians of {args.repeats} round-robin rounds; MiB/s of raw data; "
          f"x ref = relative to {REFERENCE} in the same run")
    print(f"{'dose':>5}  {'contender':<20} {'size/bound':>10} {'ratio':>7} {'enc MiB/s':>10} "
          f"{'x ref':>6} {'dec MiB/s':>10} {'x ref':>6}")
    everything = []
    for dose in args.doses:
        rows = run_dose(dose, args)
        everything += rows
        for r in sorted(rows, key=lambda r: r["size_over_bound"]):
            print(f"{r['dose']:>5g}  {r['label']:<20} {r['size_over_bound']:>10.4f} "
                  f"{r['ratio']:>7.4f} {r['encode_mibs']:>10.1f} {r['encode_vs_ref']:>6.2f} "
                  f"{r['decode_mibs']:>10.1f} {r['decode_vs_ref']:>6.2f}")
    at_one = [r for r in everything if r["dose"] == 1.0]
    if at_one:
        best = min(at_one, key=lambda r: r["size_over_bound"])
        verdict = "within" if best["size_over_bound"] <= 1.01 else "NOT within"
        print(f"smallest lossless store at dose 1: {best['label']}, {best['size_over_bound']:.4f}"
              f" x bound ({verdict} 1 %), encode {best['encode_mibs']:.1f} MiB/s, decode "
              f"{best['decode_mibs']:.1f} MiB/s ({args.threads} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
