"""Storage of decimated counts against float32 at 10 and 60 frames (the decimation Finding).

The gain-recovery suite times 10-frame movies; the MRCZ paper's claim is about ~60-frame
stacks. With the gain embedded its fixed cost is spread over more frames; with the gain shared
(`gain = "shared"`, as `compress --gain-ref` writes) the ratio still falls with more frames,
as fewer pixels stay unreliable (their float32 values go to a side channel). This measures
both on the same K2 gain-normalised movie (exact sizes, no timing: no quiet machine needed):

    .venv/bin/python benchmarks/scripts/gain_frames.py            # 60 frames, ~3.4 GB float32
    .venv/bin/python benchmarks/scripts/gain_frames.py --frames 4 12 --shape 512 512
"""
import argparse
import dataclasses

from mrczbench.formats import format_from_dict
from mrczbench.movies.datasets import load_spec, load_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 60],
                        help="frame counts to measure (the stack of the largest is generated)")
    parser.add_argument("--shape", type=int, nargs=2, default=None, metavar=("NY", "NX"),
                        help="frame shape (default: the dataset's, 3838 x 3710)")
    parser.add_argument("--codec", default="zstd", choices=["zstd", "lz4"])
    args = parser.parse_args()
    spec = load_spec("k2-gain-normalised")
    changes = {"frames": max(args.frames)}
    if args.shape:
        changes["shape"] = tuple(args.shape)
    spec = dataclasses.replace(spec, **changes)
    stack = load_stack(spec)
    layouts = {"shared gain": "shared", "gain in each file": None}
    print(f"{spec.name}: {spec.frames} x {spec.shape[0]} x {spec.shape[1]} float32, dose "
          f"{spec.dose:g} e/px/frame; counts mrcz {args.codec}-1; ratio = stored / float32 bytes")
    print(f"{'frames':>6}  {'layout':<18} {'stored (MiB)':>12} {'ratio':>7} {'cut (x)':>8}")
    for frames in sorted(args.frames):
        part = stack[:frames]
        for layout, gain in layouts.items():
            config = {"format": "gain-counts", "inner": "mrcz", "codec": args.codec, "level": 1}
            if gain:
                config["gain"] = gain
            stored = len(format_from_dict(config).encode(part))
            ratio = stored / part.nbytes
            print(f"{frames:>6}  {layout:<18} {stored / 2**20:>12,.1f} {ratio:>7.4f} {1 / ratio:>8.1f}")


if __name__ == "__main__":
    main()
