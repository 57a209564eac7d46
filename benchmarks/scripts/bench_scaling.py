"""Thread scaling of the MRCZ codec against python-mrcz, raw blosc and memory copy (issue 16).

Standalone: needs only numpy, blosc, blosc2, mrcz (python-mrcz) and mrczbench importable (no
pandas or matplotlib), so it runs on a bare many-core machine with `PYTHONPATH=.`:

    python benchmarks/scripts/bench_scaling.py --frames 60 --dir /dev/shm --profile --json scaling.json
    python benchmarks/scripts/bench_scaling.py --frames 10 --threads 1,16 --codecs zstd

The first line is the many-core run of issue 29: it prints the efficiency tables, the stage
profile, and the issue's targets at 16 threads (or the most threads measured up to the
physical cores): zstd-1 write efficiency >= 0.8, lz4-1 write >= 50 % of the memory-copy
ceiling, and a 10-frame stack (`--small-frames`, the first frames of the same stack, written
by mrczbench in the same rounds) >= 0.9x the per-frame speed of the whole stack.

For every thread count in 1, 2, 4, ... 2 x cores it times, interleaved round by round (the
starting contender rotates, so none always follows the same neighbour):

  write   mrczbench `mrcz.write`, python-mrcz `writeMRC` (blosc's own threads per frame), raw
          `blosc.compress` of the same frames in memory with blosc's own threads (no file);
  read    `mrcz.read`, `readMRC`, raw `blosc.decompress` of the same chunks from memory;
  copy    `np.copyto` of the stack into a preallocated one, split over the same threads: the
          machine's memory-copy bandwidth in this run, the physical ceiling for lz4.

Figures are medians of `--rounds` rounds in MiB/s of raw data (MiB = 2^20 bytes) and
efficiency = speed(t) / (t x speed(1)). Files go to `--dir` (use tmpfs, e.g. /dev/shm, so the
disk is not what is measured).

Serial fraction: from each measured speed-up S(t) the Karp-Flatt metric
e(t) = (1/S - 1/t) / (1 - 1/t) estimates the serial fraction; Amdahl's law with the median e
predicts S(16) and S(64) (`predicted` in the JSON). `--profile` adds a stage profile of one
write and one read at 1 thread: time inside blosc calls, inside `os.pwrite` (the chunk
writes, which the kernel serialises per file: they overlap compression but cannot exceed
the wall time), joining frame parts, and everything else (the serial part: the first frame's
statistics, headers, the Python loop, allocation), from wrappers around `blosc.compress`,
`blosc2.decompress2`, `os.pwrite` and `chunks.join_parts`, the calls mrczbench makes; and
Amdahl's prediction for 16 threads from it: S(16) = wall / (serial + max(parallel / 16,
pwrite)).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

MIB = 2 ** 20


def physical_cores() -> int:
    """Physical cores from /proc/cpuinfo (core id per physical id); falls back to CPUs."""
    try:
        pairs, phys = set(), None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                phys = value.strip()
            elif key == "core id":
                pairs.add((phys, value.strip()))
        if pairs:
            return len(pairs)
    except OSError:
        pass
    return os.cpu_count() or 1


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def thread_counts(cpus: int, given: str | None) -> list[int]:
    if given:
        return sorted({int(t) for t in given.split(",")})
    counts, t = [], 1
    while t <= 2 * cpus:
        counts.append(t)
        t *= 2
    if counts[-1] != 2 * cpus:
        counts.append(2 * cpus)
    return counts


def make_stack(frames: int, shape: tuple[int, int], dose: float) -> np.ndarray:
    from mrczbench.movies import synthetic
    return synthetic.poisson_movie(frames, shape, dose, seed=0, dtype="int8")


class Contenders:
    """The timed calls of one codec, level and thread count; each returns nothing."""

    def __init__(self, stack, codec, level, folder: Path, small_frames: int = 10):
        import blosc
        import mrcz as pymrcz
        from mrczbench import mrcz
        self.blosc, self.pymrcz, self.mrcz = blosc, pymrcz, mrcz
        self.stack, self.codec, self.level = stack, codec, level
        self.ours = folder / f"ours-{codec}.mrcz"
        self.small = stack[:small_frames]
        self.ours_small = folder / f"ours-small-{codec}.mrcz"
        self.theirs = folder / f"theirs-{codec}.mrcz"
        self.out = np.empty_like(stack)
        self.out.fill(0)  # pre-faulted: the copy measures bandwidth, not page faults
        self.pools: dict[int, ThreadPoolExecutor] = {}
        # blosc.compress of one frame with blosc's own threads; chunks kept for raw decompress
        blosc.set_nthreads(1)
        self.chunks = [blosc.compress(f, 1, clevel=level, shuffle=blosc.BITSHUFFLE, cname=codec)
                       for f in stack]

    def write_ours(self, t):
        self.mrcz.write(self.ours, self.stack, codec=self.codec, level=self.level, threads=t)

    def write_ours_small(self, t):
        self.mrcz.write(self.ours_small, self.small, codec=self.codec, level=self.level, threads=t)

    def write_theirs(self, t):
        self.pymrcz.writeMRC(self.stack, str(self.theirs), compressor=self.codec,
                             clevel=self.level, n_threads=t, quickStats=True)

    def compress_raw(self, t):
        self.blosc.set_nthreads(t)
        for frame in self.stack:
            self.blosc.compress(frame, 1, clevel=self.level, shuffle=self.blosc.BITSHUFFLE,
                                cname=self.codec)

    def read_ours(self, t):
        self.mrcz.read(self.ours, threads=t)

    def read_theirs(self, t):
        self.pymrcz.readMRC(str(self.theirs), n_threads=t)

    def decompress_raw(self, t):
        self.blosc.set_nthreads(t)
        for chunk in self.chunks:
            self.blosc.decompress(chunk)

    def copy(self, t):
        if t == 1:
            np.copyto(self.out, self.stack)
            return
        # split the flat stack into t equal slices (frame count does not limit the copy)
        src, dst = self.stack.reshape(-1), self.out.reshape(-1)
        edges = np.linspace(0, src.size, t + 1).astype(np.int64)
        pool = self.pools.setdefault(t, ThreadPoolExecutor(t))  # kept: not billing thread start
        list(pool.map(lambda i: np.copyto(dst[edges[i]:edges[i + 1]], src[edges[i]:edges[i + 1]]),
                      range(t)))


ROLES = {
    "write": ("write_ours", "write_ours_small", "write_theirs", "compress_raw"),
    "read": ("read_ours", "read_theirs", "decompress_raw"),
    "copy": ("copy",),
}
LABELS = {"write_ours": "mrczbench", "write_ours_small": "mrczbench small",
          "write_theirs": "python-mrcz", "compress_raw": "raw blosc",
          "read_ours": "mrczbench", "read_theirs": "python-mrcz", "decompress_raw": "raw blosc",
          "copy": "memcpy"}


def measure(c: Contenders, threads: list[int], rounds: int, progress) -> dict:
    """seconds[role][name][t] = list of samples; rounds interleave every call."""
    calls = [(role, name, t) for role, names in ROLES.items() for name in names for t in threads]
    seconds: dict = {}
    # warm-up round: writes the files the reads need, warms allocator and thread pools
    for role, name, t in calls:
        getattr(c, name)(t)
    for r in range(rounds):
        start = r * 7 % len(calls)
        for role, name, t in calls[start:] + calls[:start]:
            t0 = time.perf_counter()
            getattr(c, name)(t)
            seconds.setdefault(role, {}).setdefault(name, {}).setdefault(t, []).append(
                time.perf_counter() - t0)
        progress(f"round {r + 1}/{rounds} done")
    return seconds


def karp_flatt(speedup: float, t: int) -> float | None:
    return None if t <= 1 else (1 / speedup - 1 / t) / (1 - 1 / t)


def amdahl(serial: float, t: int) -> float:
    return 1 / (serial + (1 - serial) / t)


def summarise(seconds: dict, raw_mib: float, threads: list[int], small_mib: float) -> dict:
    table: dict = {}
    for role, names in seconds.items():
        for name, per_t in names.items():
            mib = small_mib if name == "write_ours_small" else raw_mib
            base = mib / statistics.median(per_t[threads[0]])
            rows = {}
            serials = []
            for t in threads:
                mibs = mib / statistics.median(per_t[t])
                speedup = mibs / base
                rows[t] = {"mib_per_s": mibs, "speedup": speedup,
                           "efficiency": speedup / (t / threads[0])}
                e = karp_flatt(speedup, t // threads[0])
                if e is not None:
                    serials.append(e)
            entry = {"by_threads": rows}
            if serials and threads[0] == 1:
                serial = min(1.0, max(0.0, statistics.median(serials)))
                entry["serial_fraction"] = serial
                entry["predicted"] = {"speedup_16": amdahl(serial, 16), "efficiency_16": amdahl(serial, 16) / 16,
                                      "speedup_64": amdahl(serial, 64), "efficiency_64": amdahl(serial, 64) / 64}
            table.setdefault(role, {})[LABELS[name]] = entry
    return table


def stage_profile(c: Contenders) -> dict:
    """One write and one read at 1 thread: seconds inside blosc calls, os.pwrite and
    chunks.join_parts vs the rest, and Amdahl's prediction for 16 threads."""
    import blosc
    import blosc2
    from mrczbench.mrc import chunks
    inside = {}
    lock = threading.Lock()

    def timed(fn, stage):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    seconds, calls = inside.get(stage, (0.0, 0))
                    inside[stage] = (seconds + time.perf_counter() - t0, calls + 1)
        return wrapper

    originals = (blosc.compress, blosc2.decompress2, blosc.decompress, os.pwrite,
                 chunks.join_parts)
    result = {}
    try:
        blosc.compress = timed(originals[0], "blosc")
        blosc2.decompress2 = timed(originals[1], "blosc")
        blosc.decompress = timed(originals[2], "blosc")
        os.pwrite = timed(originals[3], "pwrite")
        chunks.join_parts = timed(originals[4], "join")
        for label, call in (("write", c.write_ours), ("read", c.read_ours)):
            inside.clear()
            t0 = time.perf_counter()
            call(1)
            wall = time.perf_counter() - t0
            blosc_s, calls = inside.get("blosc", (0.0, 0))
            pwrite_s = inside.get("pwrite", (0.0, 0))[0]
            join_s = inside.get("join", (0.0, 0))[0]
            serial = wall - blosc_s - pwrite_s - join_s
            parallel = blosc_s + join_s
            predicted = wall / (serial + max((parallel + pwrite_s) / 16, pwrite_s))
            result[label] = {"wall_s": wall, "inside_blosc_s": blosc_s, "pwrite_s": pwrite_s,
                             "join_s": join_s, "serial_s": serial, "blosc_calls": calls,
                             "outside_fraction": (wall - blosc_s) / wall if calls else None,
                             "serial_fraction": serial / wall,
                             "predicted_speedup_16": predicted,
                             "predicted_efficiency_16": predicted / 16}
    finally:
        (blosc.compress, blosc2.decompress2, blosc.decompress, os.pwrite,
         chunks.join_parts) = originals
    return result


def targets(table: dict, threads: list[int], cores: int) -> list[str]:
    """Issue 29's many-core targets at 16 threads (or the most threads <= physical cores)."""
    usable = [t for t in threads if t <= max(cores, 1)]
    t = 16 if 16 in threads else (usable[-1] if usable else threads[-1])
    lines = []
    write = table.get("write", {})
    ours, small = write.get("mrczbench"), write.get("mrczbench small")
    if ours:
        eff = ours["by_threads"][t]["efficiency"]
        lines.append(f"write efficiency at {t} threads {eff:.2f} (target >= 0.8 for zstd-1)")
        copy = table.get("copy", {}).get("memcpy")
        if copy:
            share = ours["by_threads"][t]["mib_per_s"] / copy["by_threads"][t]["mib_per_s"]
            lines.append(f"write at {t} threads = {100 * share:.0f} % of the memory-copy "
                         f"ceiling (target >= 50 % for lz4-1)")
        if small:
            ratio = small["by_threads"][t]["mib_per_s"] / ours["by_threads"][t]["mib_per_s"]
            lines.append(f"small stack / whole stack per-frame speed at {t} threads "
                         f"{ratio:.2f} (target >= 0.9)")
    return lines


def print_table(table: dict, threads: list[int]) -> None:
    for role, names in table.items():
        print(f"\n{role}: MiB/s (efficiency)")
        print(f"  {'threads':>7} " + " ".join(f"{n:>22}" for n in names))
        for t in threads:
            cells = [f"{e['by_threads'][t]['mib_per_s']:>12,.0f} ({e['by_threads'][t]['efficiency']:.2f})"
                     for e in names.values()]
            print(f"  {t:>7} " + " ".join(f"{c:>22}" for c in cells))
        for name, entry in names.items():
            if "serial_fraction" in entry:
                p = entry["predicted"]
                print(f"  {name}: serial fraction (Karp-Flatt, median) {entry['serial_fraction']:.3f} -> "
                      f"Amdahl: efficiency {p['efficiency_16']:.2f} at 16 threads, "
                      f"{p['efficiency_64']:.2f} at 64")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--small-frames", type=int, default=10,
                   help="frames of the small stack written beside the whole one (default 10)")
    p.add_argument("--shape", type=int, nargs=2, default=(3838, 3710), metavar=("NY", "NX"))
    p.add_argument("--dose", type=float, default=1.0, help="e/px/frame (default 1)")
    p.add_argument("--codecs", default="zstd,lz4")
    p.add_argument("--level", type=int, default=1)
    p.add_argument("--threads", help="comma-separated (default 1, 2, 4, ... 2 x usable CPUs)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir", default=None, help="folder for the files (default: a temp folder; "
                   "use tmpfs such as /dev/shm)")
    p.add_argument("--profile", action="store_true", help="stage profile at 1 thread")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    cpus = usable_cpus()
    threads = thread_counts(cpus, args.threads)
    shape = tuple(args.shape)
    started = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - started:7.1f} s] {msg}", file=sys.stderr, flush=True)
    log(f"{args.frames} x {shape[0]} x {shape[1]} int8, dose {args.dose}, threads {threads}, "
        f"{cpus} usable CPUs, {physical_cores()} physical cores")
    stack = make_stack(args.frames, shape, args.dose)
    raw_mib = stack.nbytes / MIB
    out = {"machine": {"cpus": cpus, "physical_cores": physical_cores(), "platform": platform.platform(),
                       "processor": platform.processor(), "python": sys.version.split()[0],
                       "load_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None},
           "data": {"frames": args.frames, "shape": list(shape), "dose": args.dose, "raw_mib": raw_mib},
           "threads": threads, "rounds": args.rounds, "codecs": {}}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for codec in args.codecs.split(","):
            log(f"{codec}-{args.level}: compressing reference chunks")
            c = Contenders(stack, codec, args.level, Path(folder), args.small_frames)
            seconds = measure(c, threads, args.rounds, lambda m: log(f"{codec}: {m}"))
            table = summarise(seconds, raw_mib, threads, c.small.nbytes / MIB)
            entry = {"table": table, "samples_s": {role: {LABELS[n]: {str(t): v for t, v in per.items()}
                                                          for n, per in names.items()}
                                                   for role, names in seconds.items()}}
            if args.profile:
                entry["stage_profile"] = stage_profile(c)
            out["codecs"][codec] = entry
            print(f"\n=== {codec} level {args.level}, {args.frames} frames "
                  f"({raw_mib:,.0f} MiB raw), files in {folder}")
            print_table(table, threads)
            entry["targets"] = targets(table, threads, physical_cores())
            for line in entry["targets"]:
                print(f"  {codec}-{args.level}: {line}")
            if args.profile:
                for label, prof in entry["stage_profile"].items():
                    frac = prof["outside_fraction"]
                    print(f"  stage profile {label} at 1 thread: {prof['wall_s']:.3f} s wall, "
                          f"{prof['inside_blosc_s']:.3f} s inside {prof['blosc_calls']} blosc calls"
                          + (f" ({100 * frac:.1f} % outside blosc)" if frac is not None else
                             " (no blosc calls seen: wrappers not on mrczbench's call path)")
                          + f", {prof['pwrite_s']:.3f} s in pwrite, {prof['join_s']:.3f} s joining "
                          f"parts, {prof['serial_s']:.3f} s serial ({100 * prof['serial_fraction']:.1f} %)"
                          f" -> Amdahl at 16 threads: speed-up {prof['predicted_speedup_16']:.1f}, "
                          f"efficiency {prof['predicted_efficiency_16']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
