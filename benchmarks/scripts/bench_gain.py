"""Gain recovery (issue 11): size of a gain-normalised movie as float32 MRCZ vs recovered
counts MRCZ, and gain-estimation speed against a numpy copy of the same frames.

The movie is the gain-normalised detector model (K2-like by default: counts x gain 1.0-1.3,
~2100 defect pixels). The gain is estimated over the movie itself (--thresh, default 0
as in the gain-counts contender: a 10-frame movie cannot reach RELION's 50); speed does not depend on the threshold. Sizes are
of real files written by mrczbench.mrcz; the counts file is what `mrczbench compress --gain`
writes (counts + gain + reliability + float32 values of the unreliable pixels). The command
line is timed too: `compress --gain` against plain `compress` of the same float32 movie.

    .venv/bin/python benchmarks/scripts/bench_gain.py
    .venv/bin/python benchmarks/scripts/bench_gain.py --shape 512 512 --frames 8
"""
import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mrczbench import mrcz
from mrczbench.movies import gain, synthetic

MIB = 2 ** 20


def median_seconds(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[3838, 3710], metavar=("NY", "NX"))
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--dose", type=float, default=1.45, help="e/px/frame")
    parser.add_argument("--thresh", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codec", default="zstd")
    parser.add_argument("--level", type=int, default=1)
    args = parser.parse_args()

    model = synthetic.make_model("gain-normalised", tuple(args.shape), args.dose, seed=1).prepare()
    stack = synthetic.render_movie(model, args.frames)
    raw_mib = stack.nbytes / MIB
    print(f"movie: {args.frames} x {args.shape[0]} x {args.shape[1]} float32 ({raw_mib:.1f} MiB), "
          f"dose {args.dose} e/px/frame, {len(model.defects)} defect pixels")

    # estimation speed (in memory, per frame as estimate() does) vs a numpy copy
    target = np.empty_like(stack[0])
    copy_s = median_seconds(lambda: [np.copyto(target, frame) for frame in stack], args.repeats)
    for threads in (1, 2):
        est_s = median_seconds(lambda: gain.estimate_stack(stack, stack.shape[1:], args.thresh,
                                                           threads=threads), args.repeats)
        print(f"estimation ({threads} thread(s)): {raw_mib / est_s:.0f} MiB/s of float32 input; "
              f"numpy copy {raw_mib / copy_s:.0f} MiB/s; estimation/copy speed "
              f"{copy_s / est_s:.3f}")
    result = gain.estimate_stack(stack, stack.shape[1:], args.thresh)
    print(f"unreliable pixels: {result.unreliable} of {result.minimum.size} "
          f"(thresh {args.thresh} over {args.frames} frames)")

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        folder = Path(folder)
        movie = folder / "movie.mrc"
        mrcz.write(movie, stack, codec=None)
        gain_file = folder / "gain.mrc"
        gain.write_reference(gain_file, result)
        float_file = folder / "float.mrcz"
        start = time.perf_counter()
        float_bytes = mrcz.write(float_file, stack, codec=args.codec, level=args.level)
        float_s = time.perf_counter() - start

        reference, reliable = gain.read_reference(gain_file, stack.shape[1:])
        # the gain comes from this very movie: pixels off the grid become unreliable (as the
        # gain-counts contender does), so the conversion is lossless at any --thresh
        reference, reliable = gain.demote_mismatches(stack, reference, reliable)
        demoted = int(np.count_nonzero(~reliable)) - result.unreliable
        start = time.perf_counter()
        dtype, section, frames = gain.convert_source(
            "movie.mrc", lambda: mrcz.iter_frames(movie), args.frames, reference, reliable)
        counts_file = folder / "counts.mrcz"
        counts_bytes = mrcz.write(counts_file, frames, codec=args.codec, level=args.level,
                                  meta={gain.META_KEY: section}, meta_format="msgpack")
        counts_s = time.perf_counter() - start
        header = mrcz.read_header(counts_file)
        extra = header.extended_bytes
        back = np.stack(list(gain.normalised_frames(counts_file, mrcz.iter_frames(counts_file),
                                                    header.meta[gain.META_KEY])))
        exact = np.array_equal(back.view(np.uint32), stack.view(np.uint32))

        # the command line: compress --gain (counts) against plain compress of the same movie
        from mrczbench.cli import main as cli
        common = ["--codec", args.codec, "--level", str(args.level)]
        def compress(*options):
            out = folder / "cli.mrcz"
            out.unlink(missing_ok=True)
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli(["compress", str(movie), str(out), *common, *options]) == 0

        plain_s = median_seconds(compress, args.repeats)
        movie_gain = folder / "gain_demoted.mrc"
        demoted_estimate = gain.GainEstimate(stack.shape[1:], 0)
        demoted_estimate.minimum[...] = reference
        demoted_estimate.consistent[...] = np.where(reliable, 0, -1)
        gain.write_reference(movie_gain, demoted_estimate)
        gain_cli_s = median_seconds(lambda: compress("--gain", str(movie_gain)), args.repeats)

    label = f"MRCZ {args.codec}-{args.level}"
    print(f"unreliable after demoting pixels off the grid: {int(np.count_nonzero(~reliable))} "
          f"(+{demoted})")
    print(f"float32 {label}: {float_bytes} bytes, ratio {float_bytes / stack.nbytes:.3f} "
          f"(written in {float_s:.2f} s)")
    print(f"counts {label} ({dtype.name}): {counts_bytes} bytes, ratio "
          f"{counts_bytes / stack.nbytes:.3f}; of which gain + reliability + unreliable-pixel "
          f"metadata {extra} bytes, counts alone ratio {(counts_bytes - extra) / stack.nbytes:.3f}"
          f" (converted and written in {counts_s:.2f} s)")
    print(f"command line: compress {raw_mib / plain_s:.0f} MiB/s, compress --gain "
          f"{raw_mib / gain_cli_s:.0f} MiB/s; compress --gain / compress speed "
          f"{plain_s / gain_cli_s:.3f}")
    print(f"counts file / float32 file: {counts_bytes / float_bytes:.3f} "
          f"(counts alone: {(counts_bytes - extra) / float_bytes:.3f}); round trip bit-exact: {exact}")


if __name__ == "__main__":
    main()
