"""`mrczbench datasets list|show|generate|cache|inspect`: the named synthetic specs and their
cache (mrczbench.movies.datasets), and users' movies opened as benchmarks open them
(mrczbench.movies.readers)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from mrczbench.argtypes import add_eer_grouping, add_no_progress, positive_int
from mrczbench.errors import DatasetError
from mrczbench.movies import datasets, readers, synthetic
from mrczbench.units import MiB, format_bytes, format_table


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="synthetic dataset specs, their cache, and users' movies",
        description="Named synthetic datasets (the package's specs, overridden by "
        "$MRCZBENCH_DATASETS folders and ~/.config/mrczbench/datasets), the cache of generated "
        "stacks (MRCZ zstd files under --cache-dir, $MRCZBENCH_CACHE or ~/.cache/mrczbench), and "
        "inspection of your own movie files. Doses are mean electrons per pixel per frame "
        "(e/px/frame); sizes are in MiB = 2^20 bytes.")
    sub = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND", required=True)

    def cache_option(p):
        p.add_argument("--cache-dir", metavar="DIR",
                       help="cache folder (default $MRCZBENCH_CACHE or ~/.cache/mrczbench)")

    p = sub.add_parser("list", help="list the named dataset specs",
                       description="List the named dataset specs with shape, dose, dtype, raw size "
                       "and whether each is already cached.")
    cache_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output (one JSON array)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="show one spec: fields, model, options, cache key",
                       description="Show a dataset spec: its fields, what the detector model "
                       "imitates, all model options with defaults, raw size and cache file.")
    p.add_argument("name", metavar="NAME", help="spec name (see `datasets list`) or a .toml path")
    cache_option(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("generate", help="generate specs into the cache (reused if present)",
                       description="Generate the stacks of the named specs into the cache as MRCZ "
                       "(zstd), streaming frame by frame. A stack already cached is reused. "
                       "Progress and the cache's new size go to stderr.")
    p.add_argument("names", nargs="+", metavar="NAME", help="spec names or .toml paths")
    cache_option(p)
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="generator and compression threads, >= 1 (default: all cores)")
    p.add_argument("--force", action="store_true", help="generate again even if cached")
    p.add_argument("--out", metavar="FILE", help="also write the stack (one NAME) to FILE: .mrc "
                   "or .mrcs = plain MRC (a movie to try `mrczbench compress` on), .mrcz = MRCZ "
                   "zstd-1; FILE must not exist")
    add_no_progress(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("cache", help="show the cache size, or --clear it",
                       description="Show where the dataset cache is and how big it is; --clear "
                       "deletes the cached stacks (only files named <name>-<key>.mrcz).")
    cache_option(p)
    p.add_argument("--clear", action="store_true", help="delete every cached stack")
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("inspect", help="check your own movies: shape, dtype, size",
                       description="Open movie files, folders, .lst lists or RELION .star files "
                       f"the way benchmarks will ({readers.supported_text()}) and print what was found, one "
                       "line a movie as it is opened.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_eer_grouping(p)
    p.add_argument("--eer-upsampling", type=int, default=1, choices=(1, 2),
                   help="EER rendering grid: 1 = 4K, 2 = 8K (default 1)")
    p.set_defaults(func=_cmd_inspect)


def _shape_text(frames: int, shape) -> str:
    return f"{frames} x {shape[0]} x {shape[1]}"


def _cmd_list(args) -> int:
    specs = datasets.list_specs()  # none found: DatasetError naming the overrides
    sources = datasets.spec_sources()
    if args.json:
        print(json.dumps([{**spec.to_dict(), "raw_bytes": spec.nbytes, "source": sources[spec.name],
                           "cached": str(datasets.cached_path(spec, args.cache_dir) or "") or None}
                          for spec in specs], indent=2))
        return 0
    header = ("name", "kind", "frames x ny x nx", "dose e/px/frame", "dtype", "raw MiB", "cached", "source")
    rows = []
    for spec in specs:
        rows.append((spec.name, spec.kind, _shape_text(spec.frames, spec.shape), f"{spec.dose:g}",
                     spec.dtype, f"{spec.nbytes / MiB:.1f}",
                     "yes" if datasets.cached_path(spec, args.cache_dir) else "no", sources[spec.name]))
    print(format_table(header, rows))
    print(f"\n{datasets.cache_summary(args.cache_dir)}", file=sys.stderr)
    return 0


def _cmd_show(args) -> int:
    spec = datasets.load_spec(args.name)
    model = spec.model()
    print(f"name         {spec.name}")
    if spec.description:
        print(f"description  {spec.description}")
    print(f"kind         {spec.kind}" + (f" (= {model.kind})" if model.kind != spec.kind else ""))
    print(f"imitates     {model.describe()}")
    print(f"frames       {spec.frames}")
    print(f"shape        {spec.shape[0]} x {spec.shape[1]} px (ny x nx)")
    print(f"dose         {spec.dose:g} e/px/frame (mean)")
    print(f"dtype        {spec.dtype}")
    print(f"seed         {spec.seed}")
    print(f"raw size     {format_bytes(spec.nbytes)} ({spec.nbytes} bytes)")
    if model.kind == "eer":
        seconds = spec.frames * model.opts["grouping"] / model.opts["frame_rate"]
        print(f"exposure     {spec.frames * model.opts['grouping']} internal frames = {seconds:.2f} s "
              f"at {model.opts['frame_rate']:g} frames/s")
    print("options")
    for name, (kind, default, help_text) in sorted(model.all_options().items()):
        value = model.opts[name]
        mark = "" if value == default else "   (set)"
        print(f"  {name:<18} {value!s:<8} {help_text}{mark}")
    print(f"cache key    {spec.key} (generator version {synthetic.GENERATOR_VERSION})")
    path = datasets.cached_path(spec, args.cache_dir)
    if path:
        stored = path.stat().st_size
        print(f"cached       {path} ({format_bytes(stored)}, {stored / spec.nbytes:.0%} of raw)")
    else:
        print(f"cached       no (mrczbench datasets generate {spec.name})")
    return 0


def _cmd_generate(args) -> int:
    datasets.check_threads(args.threads)  # before any work or output
    specs = [datasets.load_spec(name) for name in args.names]  # check every name before working
    from mrczbench.atomic import protect_inputs
    protect_inputs([name for name in args.names if Path(name).is_file()])
    out = Path(args.out) if args.out else None
    if out is not None:
        if len(specs) != 1:
            raise DatasetError(f"--out {out}: give one NAME (got {len(specs)})")
        if out.suffix.lower() not in (".mrc", ".mrcs", ".mrcz"):
            raise DatasetError(f"--out {out}: the name must end in .mrc, .mrcs or .mrcz")
        if out.exists() or out.is_symlink():
            raise DatasetError(f"--out {out}: exists; give a new name (nothing is replaced)")
    for spec in specs:
        existing = None if args.force else datasets.cached_path(spec, args.cache_dir)
        if existing:
            print(f"{spec.name}: cached at {existing} ({format_bytes(existing.stat().st_size)})", file=sys.stderr)
            continue
        datasets.materialise(spec, args.cache_dir, threads=args.threads, force=args.force,
                             progress=not args.no_progress)
    if out is not None:
        written = datasets.write_copy(specs[0], out, args.cache_dir)
        print(f"{out}: {specs[0].frames} x {specs[0].shape[0]} x {specs[0].shape[1]} "
              f"{specs[0].dtype}, {format_bytes(written)}")
    return 0


def _cmd_cache(args) -> int:
    if args.clear:
        count, freed = datasets.clear_cache(args.cache_dir)
        print(f"removed {count} file{'s' if count != 1 else ''} ({format_bytes(freed)}) from "
              f"{datasets.cache_folder(args.cache_dir)}")
        return 0
    for path in datasets.cached_files(args.cache_dir):
        print(f"{format_bytes(path.stat().st_size):>10}  {path.name}")
    print(datasets.cache_summary(args.cache_dir))
    return 0


def _cmd_inspect(args) -> int:
    # streamed: each movie is printed as it is opened, so a list of 10^6 movies needs the
    # memory of one
    total = count = 0
    tty = sys.stdout.isatty()
    for movie in readers.iter_movies(args.paths, eer_grouping=args.eer_grouping,
                                     eer_upsampling=args.eer_upsampling):
        total += movie.nbytes
        count += 1
        print(f"{movie.kind:<5} {_shape_text(*movie.shape[:1], movie.shape[1:]):>22} {movie.dtype.name:<8} "
              f"{movie.nbytes / MiB:10.1f} MiB  {movie.path}", flush=tty)
    print(f"{count} movie{'s' if count != 1 else ''}, {format_bytes(total)} raw")
    return 0
