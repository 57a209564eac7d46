"""`convert --follow` at the microscope: latency and sustained rate (issue 24).

1. Latency: a detector writes one K2-like movie at a time into the watched folder (plain MRC,
   header first, then the frames, under its final name, as fast as the disk takes them); the
   latency is from the movie's last byte to its verified output's manifest line (seen by
   polling the manifest every 10 ms). One movie at a time: no backlog.
2. Sustained rate: N finished movies are renamed into the watched folder at once (a burst);
   the rate is N / (time from the burst to the last manifest line): the arrival rate the
   follower keeps up with. Reference: `mrczbench convert` on the same N finished movies
   (separate process, same --jobs), wall time; the ratio follow / convert is the figure.
   Both read the movies from the page cache (just written).

Speeds on a shared machine move with its load: quote the ratio, and `uptime` (printed).

    python benchmarks/scripts/bench_follow.py --movies 4 --frames 40 --shape 3838 3710
    python benchmarks/scripts/bench_follow.py --movies 3 --frames 8 --shape 512 512   # quick
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MiB = 2 ** 20


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mrczbench", *args]


def make_movies(folder: Path, count: int, frames: int, shape, dose: float) -> list[Path]:
    from mrczbench import mrcz
    from mrczbench.movies import synthetic
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"movie_{i:03d}.mrc"
        mrcz.write(path, synthetic.poisson_movie(frames, tuple(shape), dose, seed=i, dtype="int8"))
        paths.append(path)
    return paths


def done_outputs(out: Path) -> set[str]:
    part = out / "manifest.jsonl"
    if not part.exists():
        return set()
    found = set()
    for line in part.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("status") == "done":
            found.add(record["output"])
    return found


def wait_for(out: Path, outputs: set[str], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not outputs <= done_outputs(out):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {sorted(outputs - done_outputs(out))}")
        time.sleep(0.01)
    return time.time()


def start_follower(watch: Path, out: Path, jobs: int, settle: float) -> subprocess.Popen:
    proc = subprocess.Popen(cli("convert", "--follow", str(watch), "--out", str(out), "--jobs", str(jobs),
                                "--settle", str(settle)), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready and "watching" in proc.stderr.readline():
            time.sleep(3.0)  # let the workers finish importing (Pool.start), as at a microscope
            return proc
    raise SystemExit("the follower did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=600)


def detector_write(source: Path, target: Path, chunk: int = 16 * MiB) -> float:
    """Copy `source` to `target` header first, frames after, as a detector writes: the file is
    growing under its final name. Returns time.time() after the last byte."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            block = src.read(chunk)
            if not block:
                break
            dst.write(block)
    return time.time()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--movies", type=int, default=4)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--shape", type=int, nargs=2, default=(3838, 3710))
    p.add_argument("--dose", type=float, default=1.0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--keep", help="work folder to keep (default: a temporary one, removed)")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-follow-", dir="/tmp"))
    try:
        print(f"load before: {os.getloadavg()}", flush=True)
        started = time.monotonic()
        staged = make_movies(work / "staging", args.movies, args.frames, args.shape, args.dose)
        raw_mib = staged[0].stat().st_size / MiB
        print(f"{args.movies} movies of {args.frames} x {args.shape[0]} x {args.shape[1]} int8, dose "
              f"{args.dose} ({raw_mib:,.0f} MiB each) made in {time.monotonic() - started:.0f} s", flush=True)

        # 1. latency, one movie at a time
        watch, out = work / "watch", work / "out-follow"
        watch.mkdir()
        follower = start_follower(watch, out, args.jobs, args.settle)
        latencies = []
        for path in staged:
            last_byte = detector_write(path, watch / path.name)
            seen = wait_for(out, {f"watch/{path.stem}.mrcz"}, 600)
            latencies.append(seen - last_byte)
            print(f"latency {path.name}: {latencies[-1]:.2f} s", flush=True)

        # 2. sustained: a burst of finished movies renamed in
        burst = work / "burst-staging"
        burst.mkdir()
        copies = []
        for path in staged:
            copy = burst / f"burst_{path.name}"
            shutil.copyfile(path, copy)
            copies.append(copy)
        (watch / "burst").mkdir()
        t0 = time.time()
        for copy in copies:
            os.rename(copy, watch / "burst" / copy.name)
        t1 = wait_for(out, {f"watch/burst/{c.stem}.mrcz" for c in copies}, 1800)
        stop(follower)
        follow_rate = len(copies) / (t1 - t0) * 60

        # reference: convert on the same finished movies
        load = os.getloadavg()
        t2 = time.time()
        subprocess.run(cli("convert", str(watch / "burst"), "--out", str(work / "out-convert"),
                           "--jobs", str(args.jobs)), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        convert_rate = len(copies) / (time.time() - t2) * 60
        median = statistics.median(latencies)
        p90 = sorted(latencies)[min(len(latencies) - 1, round(0.9 * (len(latencies) - 1)))]
        print(json.dumps({
            "movie": {"frames": args.frames, "shape": args.shape, "dose": args.dose, "mib": raw_mib},
            "jobs": args.jobs, "settle_s": args.settle,
            "latency_s": {"samples": [round(x, 2) for x in latencies], "median": round(median, 2),
                          "p90": round(p90, 2)},
            "latency_over_convert_time_per_movie": round(median / (60 / convert_rate), 2),
            "follow_movies_per_min": round(follow_rate, 2),
            "follow_mib_per_s": round(follow_rate * raw_mib / 60, 1),
            "convert_movies_per_min": round(convert_rate, 2),
            "follow_over_convert": round(follow_rate / convert_rate, 3),
            "load_before_convert": load, "load_after": os.getloadavg()}, indent=1))
        print("machine shared: compare the ratios, not the absolute speeds", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
