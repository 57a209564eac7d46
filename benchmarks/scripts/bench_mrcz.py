"""Benchmark mrczbench.mrcz against python-mrcz and raw in-memory blosc (issue 2's targets).

Standalone script, not an asv benchmark. Everything runs in one process on the same frames;
the contenders are timed interleaved (round-robin, several repeats) because the machine is
shared, and the figures are medians reported as ratios.

    .venv/bin/python benchmarks/scripts/bench_mrcz.py [--frames 10] [--repeats 7]

Targets (10 frames of 3838x3710 Poisson dose 1 int8, zstd level 1, 2 threads):
  write: mrcz.write >= 1.1x as fast as python-mrcz writeMRC, within 10 % of raw blosc compress
  read:  mrcz.read >= 1.25x as fast as python-mrcz readMRC, within 10 % of raw blosc decompress
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=2, default=(3838, 3710), metavar=("NY", "NX"))
    parser.add_argument("--dose", type=float, default=1.0, help="electrons per pixel per frame")
    parser.add_argument("--codec", default="zstd")
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--folder", default=None, help="where to write the files (default: temp)")
    args = parser.parse_args()

    import blosc
    import blosc2
    import mrcz as python_mrcz
    import numpy as np

    from mrczbench import mrcz

    stack = np.random.default_rng(0).poisson(args.dose, (args.frames, *args.shape)).astype(np.int8)
    raw_mib = stack.nbytes / 2**20
    blocksize = min(2**16, stack[0].size // args.threads)  # python-mrcz's rule, used by both

    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        ours_path = Path(folder) / "ours.mrcz"
        theirs_path = Path(folder) / "theirs.mrcz"
        chunks: list[bytes] = []
        out = np.empty_like(stack)

        def raw_compress():
            blosc.set_nthreads(args.threads)
            blosc.set_blocksize(blocksize)
            chunks[:] = [blosc.compress(frame, 1, clevel=args.level, shuffle=blosc.BITSHUFFLE,
                                        cname=args.codec) for frame in stack]
            blosc.set_blocksize(0)

        def raw_decompress():
            blosc.set_nthreads(args.threads)
            for chunk in chunks:
                blosc.decompress(chunk)

        def raw_decompress_into():
            for z, chunk in enumerate(chunks):
                blosc2.decompress2(chunk, dst=out[z], nthreads=args.threads)

        contenders = {
            "mrcz.write": lambda: mrcz.write(ours_path, stack, codec=args.codec, level=args.level,
                                             threads=args.threads),
            "writeMRC": lambda: python_mrcz.writeMRC(stack, str(theirs_path), compressor=args.codec,
                                                    clevel=args.level, n_threads=args.threads),
            "raw compress": raw_compress,
            "mrcz.read": lambda: mrcz.read(ours_path, threads=args.threads),
            "readMRC": lambda: python_mrcz.readMRC(str(theirs_path), n_threads=args.threads),
            "raw decompress": raw_decompress,
            "raw decompress into": raw_decompress_into,
        }
        for run in contenders.values():  # warm-up: files exist, page cache and allocator warm
            run()
        assert np.array_equal(mrcz.read(ours_path), stack)
        assert np.array_equal(python_mrcz.readMRC(str(ours_path))[0], stack)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, run in contenders.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)

    median = {name: statistics.median(values) for name, values in times.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"{args.frames} frames {args.shape[0]}x{args.shape[1]} int8 Poisson dose {args.dose}, "
          f"{args.codec} level {args.level}, {args.threads} threads, {args.repeats} repeats "
          f"(median wall s, MiB/s of raw data; CPU s of all threads, a load-independent view of work)")
    for name, seconds in median.items():
        print(f"  {name:<20} {seconds:8.4f} s  {raw_mib / seconds:8.1f} MiB/s   "
              f"cpu {median_cpu[name]:7.4f} s")
    print("ratios (>1 means mrczbench.mrcz is faster):")
    print(f"  write: writeMRC / mrcz.write          = {median['writeMRC'] / median['mrcz.write']:.3f}"
          "  (target >= 1.10)")
    print(f"  write: raw compress / mrcz.write      = "
          f"{median['raw compress'] / median['mrcz.write']:.3f}  (target >= 0.91)")
    print(f"  read:  readMRC / mrcz.read            = {median['readMRC'] / median['mrcz.read']:.3f}"
          "  (target >= 1.25)")
    print(f"  read:  raw decompress / mrcz.read     = "
          f"{median['raw decompress'] / median['mrcz.read']:.3f}  (target >= 0.91)")
    print(f"  read:  raw decompress into / mrcz.read = "
          f"{median['raw decompress into'] / median['mrcz.read']:.3f}  (stricter baseline)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
