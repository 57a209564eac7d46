"""A detector's acquisition software, for the --follow tests: writes movies into a folder frame
by frame at a set rate, as MRC (header first, then the frames) or TIFF (page by page, a valid
shorter TIFF after every page; with --preallocate, MRC at its full size first, zeros filled in
frame by frame), either under the final name while it grows or under a
temporary name renamed at the end (`.m.mrc.part`, `m.tif.tmp`). Prints one JSON line per
finished movie: {"name", "seed", "last_byte"} (time.time() after the last byte / rename).

    python tests/detector_writer.py FOLDER --movies 4 --frames 6 --shape 64 48 --fps 40
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def stack(seed: int, frames: int, shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(seed).poisson(1.0, (frames, *shape)).astype(np.int8)


def write_mrc(path: Path, data: np.ndarray, fps: float, preallocate: bool = False) -> None:
    from mrczbench import mrcz
    with tempfile.TemporaryDirectory() as staging:
        whole = Path(staging) / "m.mrc"
        mrcz.write(whole, data)
        raw = whole.read_bytes()
    head = len(raw) - data.nbytes
    with open(path, "wb", buffering=0) as f:
        if preallocate:  # the whole size first (zeros), then the frames in place
            f.truncate(len(raw))
        f.write(raw[:head])
        for i in range(data.shape[0]):
            time.sleep(1 / fps)
            f.write(raw[head + i * data[0].nbytes: head + (i + 1) * data[0].nbytes])


def write_tiff(path: Path, data: np.ndarray, fps: float) -> None:
    import tifffile
    with open(path, "wb", buffering=0) as f, tifffile.TiffWriter(f) as tif:
        for frame in data:
            time.sleep(1 / fps)
            tif.write(frame, photometric="minisblack", contiguous=False, metadata=None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--movies", type=int, default=4)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--shape", type=int, nargs=2, default=(64, 48))
    p.add_argument("--fps", type=float, default=40.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", default="mrc,tif")
    p.add_argument("--preallocate", action="store_true", help="MRC: set the full size first")
    p.add_argument("--gap", type=float, default=0.0, help="seconds between movies")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    kinds = args.kinds.split(",")
    for i in range(args.movies):
        kind = kinds[i % len(kinds)]
        renamed = (i // len(kinds)) % 2 == 1       # every other movie of a kind: temporary name
        seed = args.seed + i
        name = f"sub{i % 2}/movie_{seed:04d}.{kind}"
        final = folder / name
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.part" if kind == "mrc" else f"{final.name}.tmp")
        target = temporary if renamed else final
        data = stack(seed, args.frames, tuple(args.shape))
        if kind == "mrc":
            write_mrc(target, data, args.fps, args.preallocate)
        else:
            write_tiff(target, data, args.fps)
        if renamed:
            os.rename(temporary, final)
        print(json.dumps({"name": name, "seed": seed, "last_byte": time.time()}), flush=True)
        time.sleep(args.gap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
