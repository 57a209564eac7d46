"""Throughput of mrczbench's Poisson generator against numpy's Generator.poisson.

Same shape, dose and machine, in the same process; each timing is the median of
--repeats runs. Reported single-threaded and with all cores (numpy then runs one
generator per thread over the frames, as fairly parallel as it gets).

    .venv/bin/python benchmarks/scripts/bench_synthetic.py
    .venv/bin/python benchmarks/scripts/bench_synthetic.py --shape 3838 3710 --frames 8 --doses 0.1 1 4
"""
import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mrczbench.movies import synthetic


def median_seconds(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_movie(frames, shape, dose, threads):
    out = np.empty((frames, *shape), np.int8)

    def one(i):
        rng = np.random.Generator(np.random.PCG64(i))  # numpy's default generator
        out[i] = rng.poisson(dose, shape)

    if threads == 1:
        for i in range(frames):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(frames)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=2, default=(4096, 4096), metavar=("NY", "NX"))
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--doses", type=float, nargs="+", default=(0.1, 1.0, 4.0), help="e/px/frame")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=synthetic.default_threads(),
                        help="threads for the all-cores row (default: all cores)")
    args = parser.parse_args(argv)
    shape, frames = tuple(args.shape), args.frames
    samples = frames * shape[0] * shape[1]
    print(f"{frames} x {shape[0]} x {shape[1]} int8 = {samples / 1e6:.0f} Msamples per run, "
          f"median of {args.repeats}; numpy {np.__version__}")
    print(f"{'dose':>6} {'threads':>7} {'numpy Ms/s':>11} {'mrczbench Ms/s':>15} {'ratio':>7}")
    for dose in args.doses:
        synthetic.poisson_movie(1, (64, 64), dose)  # build the tables off the clock
        for threads in sorted({1, args.threads}):
            theirs = median_seconds(lambda: numpy_movie(frames, shape, dose, threads), args.repeats)
            ours = median_seconds(lambda: synthetic.poisson_movie(frames, shape, dose, threads=threads),
                                  args.repeats)
            print(f"{dose:>6g} {threads:>7} {samples / theirs / 1e6:>11.0f} {samples / ours / 1e6:>15.0f} "
                  f"{theirs / ours:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()
