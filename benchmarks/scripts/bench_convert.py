"""Throughput of `mrczbench convert` on K2-like movies: 1 job, 2 jobs, and a Dask LocalCluster,
in MiB/s of raw data, beside a plain file copy of the same inputs in the same run (the
reference: what moving the bytes alone costs on this disk).

    python benchmarks/scripts/bench_convert.py [--movies 20] [--frames 10] [--dir /tmp/x]

Movies are plain MRC int8 Poisson counts at dose 1 on the K2 frame (3838 x 3710). Every
conversion includes the verification pass (decode + SHA-256 per frame), as a facility runs it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

MIB = 2 ** 20


def convert(inputs: Path, out: Path, *extra: str) -> float:
    from mrczbench.cli import main
    start = time.perf_counter()
    code = main(["convert", str(inputs), "--out", str(out), *extra])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"convert {' '.join(extra)} failed with exit {code}")
    shutil.rmtree(out)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movies", type=int, default=20)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=2, default=(3838, 3710))
    parser.add_argument("--dir", help="work folder (default: a temporary folder)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    from mrczbench import mrcz
    from mrczbench.movies import synthetic

    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        work = Path(work)
        inputs = work / "Movies"
        inputs.mkdir()
        for i in range(args.movies):
            stack = synthetic.poisson_movie(args.frames, tuple(args.shape), 1.0, seed=i)
            mrcz.write(inputs / f"movie{i:03d}.mrc", stack)
        raw_mib = args.movies * args.frames * args.shape[0] * args.shape[1] / MIB
        start = time.perf_counter()
        shutil.copytree(inputs, work / "copy")
        copy_s = time.perf_counter() - start
        shutil.rmtree(work / "copy")
        figures = {"raw_mib": raw_mib, "copy_mib_per_s": raw_mib / copy_s}
        for label, extra in (("1 job", ["--jobs", "1"]), ("2 jobs", ["--jobs", "2"])):
            figures[label] = raw_mib / convert(inputs, work / "out", *extra)
        from distributed import LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            figures["LocalCluster, 2 workers"] = raw_mib / convert(
                inputs, work / "out", "--scheduler", cluster.scheduler_address, "--threads", "1")
    print(f"{args.movies} movies of {args.frames} x {args.shape[0]} x {args.shape[1]} int8 "
          f"({raw_mib:,.0f} MiB raw); MiB/s of raw data, and as a share of a plain copy:")
    for label in ("1 job", "2 jobs", "LocalCluster, 2 workers"):
        print(f"  {label:<24} {figures[label]:8,.0f} MiB/s  ({figures[label] / figures['copy_mib_per_s']:.2f} x copy)")
    print(f"  {'plain file copy':<24} {figures['copy_mib_per_s']:8,.0f} MiB/s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
