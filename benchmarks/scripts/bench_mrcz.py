"""Benchmark mrczbench.mrcz against python-mrcz and raw in-memory blosc (issue 2's targets).

Standalone script, not an asv benchmark. Everything runs in one process on the same frames.
The machine may be shared, so contenders are timed interleaved (round-robin within a phase,
`--repeats` rounds) and the figures are medians (and minima) reported as ratios. Three phases,
run one after the other so that disk writeback started by one phase does not land in another:

  read       both readers read the SAME two files: one written by python-mrcz (`theirs`,
             blosc's own threads, so its chunk bytes vary from run to run) and one written by
             mrczbench.mrcz (`ours`); raw blosc decompresses the chunks of the same file from
             memory (`blosc.decompress` into new bytes, and `blosc2.decompress2` straight into
             a preallocated array, a stricter baseline).
  write      both writers write to a path that does not exist yet (the previous output is
             deleted before the clock starts): what writing a new movie costs. Raw compress is
             `blosc.compress` of the same frames in memory with the same settings.
  overwrite  both writers replace an existing file of the same size. On ext4 (auto_da_alloc)
             truncating or renaming over an existing file makes the kernel start writeback
             of the new data before the call returns, so this measures the disk as much as the
             codec; reported for completeness (`--no-overwrite` skips it).

    .venv/bin/python benchmarks/scripts/bench_mrcz.py [--frames 10] [--repeats 15]

Targets (10 frames of 3838x3710 Poisson dose 1 int8, zstd level 1, 2 threads):
  write: mrcz.write >= 1.1x as fast as python-mrcz writeMRC, within 10 % of raw blosc compress
  read:  mrcz.read >= 1.25x as fast as python-mrcz readMRC, within 10 % of raw blosc decompress
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _timed(contenders: dict, repeats: int, before=None) -> dict[str, tuple[list, list]]:
    """Run the contenders round-robin `repeats` times after one warm-up round (the starting
    contender rotates); return wall and CPU (all threads of the process) seconds per contender.
    `before(name)` runs untimed before each run."""
    samples = {name: ([], []) for name in contenders}
    names = list(contenders)
    for round_ in range(repeats + 1):
        # Rotate the starting contender each round so that none always runs right after the
        # same neighbour (cache, allocator and writeback state left behind).
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            run = contenders[name]
            if before is not None:
                before(name)
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if round_:  # round 0 warms the page cache, the allocator and the thread pools
                samples[name][0].append(wall)
                samples[name][1].append(cpu)
    return samples


def _report(title: str, samples: dict, raw_mib: float) -> dict[str, list[float]]:
    print(f"{title}:")
    print(f"  {'contender':<28} {'median s':>9} {'min s':>8} {'MiB/s':>8} {'cpu s':>7}")
    for name, (walls, cpus) in samples.items():
        median = statistics.median(walls)
        print(f"  {name:<28} {median:9.4f} {min(walls):8.4f} {raw_mib / median:8.1f} "
              f"{statistics.median(cpus):7.4f}")
    return {name: walls for name, (walls, _) in samples.items()}


def _ratios(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """a / b three ways: ratio of medians, median of the per-round ratios (a and b ran back to
    back, so slow drifts of a shared machine cancel), ratio of minima (least disturbed runs)."""
    return (statistics.median(a) / statistics.median(b),
            statistics.median(x / y for x, y in zip(a, b)), min(a) / min(b))


def _ratio(label: str, a: list[float], b: list[float], target: float | None) -> None:
    of_medians, paired, of_minima = _ratios(a, b)
    if target is None:
        verdict = "no target"
    else:
        met = [value >= target for value in (of_medians, paired, of_minima)]
        verdict = ("met" if all(met) else "NOT met" if not any(met) else "mixed") + \
            f", target >= {target:.2f}"
    print(f"  {label:<44} {of_medians:6.3f} {paired:7.3f} {of_minima:7.3f}  ({verdict})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=2, default=(3838, 3710), metavar=("NY", "NX"))
    parser.add_argument("--dose", type=float, default=1.0, help="electrons per pixel per frame")
    parser.add_argument("--codec", default="zstd")
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-overwrite", dest="overwrite", action="store_false",
                        help="skip the overwrite phase")
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
    threads = args.threads

    def write_ours(path):
        mrcz.write(path, stack, codec=args.codec, level=args.level, threads=threads)

    def write_theirs(path):
        python_mrcz.writeMRC(stack, str(path), compressor=args.codec, clevel=args.level,
                             n_threads=threads)

    def chunks_of(path) -> list[bytes]:
        """The file's chunks, through the public chunk API (mrczbench.mrc.chunks)."""
        from mrczbench.mrc import chunks as mrc_chunks

        header = mrcz.read_header(path)
        data = Path(path).read_bytes()
        table = mrc_chunks.chunk_table(
            data, header.data_offset, header.data_offset + header.packed_bytes, header.shape[0],
            header.frame_bytes, header.dtype.itemsize, header.codec, str(path))
        return [data[offset:offset + cbytes] for offset, cbytes in table]

    def raw_compress():
        blosc.set_nthreads(threads)
        blosc.set_blocksize(blocksize)
        try:
            for frame in stack:
                blosc.compress(frame, 1, clevel=args.level, shuffle=blosc.BITSHUFFLE,
                               cname=args.codec)
        finally:
            blosc.set_blocksize(0)

    def raw_decompress(chunks):
        def run():
            blosc.set_nthreads(threads)
            for chunk in chunks:
                blosc.decompress(chunk)
        return run

    def raw_decompress_into(chunks):
        out = np.empty_like(stack)  # preallocated and touched once: no page faults timed

        def run():
            for z, chunk in enumerate(chunks):
                blosc2.decompress2(chunk, dst=out[z], nthreads=threads)
        return run

    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        folder = Path(folder)
        ours, theirs = folder / "ours.mrcz", folder / "theirs.mrcz"
        write_ours(ours)
        write_theirs(theirs)
        for path in (ours, theirs):  # write them back now, not while the clock runs later
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        for path in (ours, theirs):  # both readers agree on both files
            assert np.array_equal(mrcz.read(path), stack), path
            assert np.array_equal(python_mrcz.readMRC(str(path))[0], stack), path
        print(f"{args.frames} frames {args.shape[0]}x{args.shape[1]} int8 Poisson dose "
              f"{args.dose}, {args.codec} level {args.level}, {threads} threads, "
              f"{args.repeats} interleaved repeats; {raw_mib:.0f} MiB raw, files: ours "
              f"{ours.stat().st_size / 2**20:.1f} MiB, theirs {theirs.stat().st_size / 2**20:.1f} "
              "MiB. cpu = CPU seconds of all threads (median), a load-independent view of work.")

        ours_chunks, theirs_chunks = chunks_of(ours), chunks_of(theirs)
        read = _report("read (both readers read the same files)", _timed({
            "mrcz.read(theirs)": lambda: mrcz.read(theirs, threads=threads),
            "readMRC(theirs)": lambda: python_mrcz.readMRC(str(theirs), n_threads=threads),
            "raw decompress(theirs)": raw_decompress(theirs_chunks),
            "raw decompress into(theirs)": raw_decompress_into(theirs_chunks),
            "mrcz.read(ours)": lambda: mrcz.read(ours, threads=threads),
            "readMRC(ours)": lambda: python_mrcz.readMRC(str(ours), n_threads=threads),
            "raw decompress(ours)": raw_decompress(ours_chunks),
            "raw decompress into(ours)": raw_decompress_into(ours_chunks),
        }, args.repeats), raw_mib)

        fresh = {"mrcz.write": folder / "fresh-ours.mrcz", "writeMRC": folder / "fresh-theirs.mrcz"}

        def delete_previous(name):
            if name in fresh:
                fresh[name].unlink(missing_ok=True)

        write = _report("write (to a new file)", _timed({
            "mrcz.write": lambda: write_ours(fresh["mrcz.write"]),
            "writeMRC": lambda: write_theirs(fresh["writeMRC"]),
            "raw compress": raw_compress,
        }, args.repeats, before=delete_previous), raw_mib)
        for path in fresh.values():
            path.unlink(missing_ok=True)

        overwrite = None
        if args.overwrite:
            overwrite = _report("overwrite (replacing an existing file)", _timed({
                "mrcz.write": lambda: write_ours(folder / "over-ours.mrcz"),
                "writeMRC": lambda: write_theirs(folder / "over-theirs.mrcz"),
                "raw compress": raw_compress,
            }, args.repeats), raw_mib)

    print("ratios (> 1 means mrczbench.mrcz is faster); columns: of medians, median of "
          "per-round ratios, of minima:")
    for which in ("theirs", "ours"):
        mine = read[f"mrcz.read({which})"]
        _ratio(f"read {which}: readMRC / mrcz.read", read[f"readMRC({which})"], mine, 1.25)
        _ratio(f"read {which}: raw decompress / mrcz.read", read[f"raw decompress({which})"],
               mine, 1 / 1.1)
        _ratio(f"read {which}: raw decompress into / mrcz.read",
               read[f"raw decompress into({which})"], mine, None)
        _ratio(f"read {which}: raw decompress / readMRC", read[f"raw decompress({which})"],
               read[f"readMRC({which})"], None)
    for label, walls in (("write", write), ("overwrite", overwrite)):
        if walls is None:
            continue
        _ratio(f"{label}: writeMRC / mrcz.write", walls["writeMRC"], walls["mrcz.write"], 1.1)
        _ratio(f"{label}: raw compress / mrcz.write", walls["raw compress"], walls["mrcz.write"],
               1 / 1.1)
        _ratio(f"{label}: raw compress / writeMRC", walls["raw compress"], walls["writeMRC"], None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
