"""`mrczbench convert` and `mrczbench verify`: batch conversion on one machine (a local process
pool), a Dask cluster (--scheduler) or a Slurm array (--shard / SLURM_ARRAY_TASK_*)."""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from mrczbench.argtypes import positive_int
from mrczbench.convert import inputs, manifest
from mrczbench.convert.job import Settings, checksum_of, convert_one, frame_digests
from mrczbench.errors import MrczbenchError

MIB = 2 ** 20
STAR_MARK = "# written by mrczbench convert"


def add_commands(sub) -> None:
    p = sub.add_parser("convert", help="convert many movies to MRCZ or TIFF, verified, with a manifest",
                       description="Convert movies (files, globs, folders, .lst, RELION .star) to MRCZ "
                       "or RELION-style TIFF under --out, mirroring their relative paths. Every output "
                       "is written under a temporary name, decoded and compared frame by frame with "
                       "its input, then renamed; DIR/manifest.jsonl (+ .tsv) records each movie. "
                       "Sources are never deleted. Exit 0: all converted; 1: some failed; 2: bad options.")
    p.add_argument("movies", nargs="+", metavar="MOVIES")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", choices=("mrcz", "tiff"), default="mrcz")
    p.add_argument("--codec", default="zstd", help="MRCZ blosc codec (default zstd)")
    p.add_argument("--level", type=int, help="MRCZ codec level 1-9 (default 1); TIFF deflate level "
                   "1-9 (default 6, RELION's)")
    p.add_argument("--blocksize", type=int, help="MRCZ blosc block size in bytes (default: python-mrcz's)")
    p.add_argument("--filter", default="bitshuffle", choices=("bitshuffle", "shuffle", "none"))
    p.add_argument("--compression", default="auto", choices=("auto", "lzw", "deflate", "none"),
                   help="TIFF compression; auto = deflate for 4096-wide (Falcon) frames, else LZW, "
                   "as relion_convert_to_tiff")
    p.add_argument("--checksum", action="store_true", help="store a SHA-256 per frame in each MRCZ "
                   "file's metadata (python-mrcz ignores it) so `info --verify` and "
                   "mrcz.read(verify=True) detect corrupted chunks")
    p.add_argument("--gain", metavar="GAIN.mrc", help="store gain-normalised float32 movies as "
                   "integer counts with this gain reference (from `mrczbench estimate-gain`), "
                   "losslessly; MRCZ only (a value off its gain fails that movie)")
    p.add_argument("--jobs", type=positive_int, help="movies converted at once (default: usable "
                   "cores, at most the number of movies)")
    p.add_argument("--threads", type=positive_int, help="codec threads per movie (default: cores // jobs)")
    p.add_argument("--scheduler", metavar="ADDRESS_OR_FILE", help="run on a Dask distributed cluster: "
                   "tcp://host:8786 or a scheduler JSON file (workers need mrczbench and the files)")
    p.add_argument("--shard", metavar="I/N", help="convert the deterministic 1/N of the movies numbered "
                   "I (0 <= I < N) and write manifest.part-I-of-N.jsonl; default from "
                   "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set")
    p.add_argument("--only-unfinished", action="store_true", help="skip movies whose output is "
                   "recorded as done in the manifest and still has its recorded size")
    p.set_defaults(func=run_convert)

    v = sub.add_parser("verify", help="re-read converted movies and check them against the manifest",
                       description="Decode every output listed as done in a conversion manifest (or all "
                       "parts in DIR) and compare its checksum, frame count and size with the manifest: "
                       "the check to run before deleting sources. Exit 0 only when every movie was "
                       "converted and verifies.")
    v.add_argument("source", metavar="DIR_OR_MANIFEST")
    v.add_argument("--jobs", type=positive_int, default=1, help="outputs checked at once (default 1)")
    v.set_defaults(func=run_verify)


def settings_from(args, cores: int, count: int) -> tuple[Settings, int]:
    from mrczbench import mrcz
    if args.format == "mrcz" and args.codec not in mrcz.CODECS:
        raise MrczbenchError(f"--codec {args.codec!r}: valid: {', '.join(mrcz.CODECS)}")
    level = args.level if args.level is not None else (1 if args.format == "mrcz" else 6)
    if not 1 <= level <= 9:
        raise MrczbenchError(f"--level {level}: expected 1-9")
    if args.gain:
        if args.format != "mrcz":
            raise MrczbenchError("--gain: counts with a gain are stored as MRCZ only; use --format "
                                 "mrcz (or relion_convert_to_tiff --gain for TIFF)")
        from mrczbench.movies import gain
        gain.read_reference(args.gain)  # a missing or bad gain file stops here, not per movie
    jobs = args.jobs or max(1, min(cores, count))
    threads = args.threads or max(1, cores // jobs)
    config = ({"format": "mrcz", "codec": args.codec, "level": level, "blocksize": args.blocksize,
               "filter": args.filter} if args.format == "mrcz" else
              {"format": "tiff", "compression": args.compression, "level": level})
    return Settings(out=str(Path(args.out).resolve()), format=args.format, codec=args.codec,
                    level=level, blocksize=args.blocksize, filter=args.filter,
                    compression=args.compression, tiff_level=level, threads=threads,
                    checksum=args.checksum, gain=str(Path(args.gain).resolve()) if args.gain else None,
                    shard=inputs.parse_shard(args.shard), config={**config, "gain": args.gain}), jobs


def _todo(tasks, out: Path, only_unfinished: bool) -> tuple[list, list[dict]]:
    """Tasks still to run, and records for tasks refused before running (outputs that are not
    ours, outputs that would replace their input)."""
    try:
        previous = {r["output"]: r for r in manifest.records(out)}
    except MrczbenchError:
        previous = {}
    todo, refused = [], []
    for task in tasks:
        target = out / task.relative
        done = previous.get(task.relative)
        if only_unfinished and done and done.get("status") == "done" and target.is_file() \
                and target.stat().st_size == done.get("output_bytes"):
            continue
        if target.exists() and target.resolve() == Path(task.input).resolve():
            refused.append({"input": task.input, "output": task.relative, "status": "failed",
                            "error": "the output would replace its input; choose another --out"})
        elif target.exists() and task.relative not in previous:
            refused.append({"input": task.input, "output": task.relative, "status": "failed",
                            "error": f"{target} exists and is not in this folder's manifest "
                                     f"(not written by mrczbench convert): remove it or use another --out"})
        else:
            todo.append(task)
    return todo, refused


def _run_tasks(tasks, settings: Settings, jobs: int, scheduler: str | None):
    """Yield records as movies finish: in this process (1 job), a process pool, or Dask. A
    local job is told the movie it will likely take next (`jobs` further on), to read it ahead."""
    ahead = [tasks[i + jobs].input if i + jobs < len(tasks) else None for i in range(len(tasks))]
    if scheduler:
        from distributed import Client, as_completed
        try:
            client = Client(scheduler_file=scheduler) if Path(scheduler).is_file() else Client(scheduler, timeout=30)
        except (OSError, TimeoutError, ValueError) as exc:
            raise MrczbenchError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            # The scheduler picks which worker takes which movie: no read-ahead hint.
            futures = client.map(convert_one, tasks, settings=settings, pure=False)
            for future in as_completed(futures):
                yield future.result()
        return
    if jobs == 1:
        for task, next_input in zip(tasks, ahead):
            yield convert_one(task, settings, next_input)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(convert_one, task, settings, next_input)
                   for task, next_input in zip(tasks, ahead)]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def write_star_files(stars, out: Path) -> list[Path]:
    """DIR/movies.star (DIR/<name>.star for several) with the converted names; movies not
    converted keep their original (absolute) path so RELION still finds them."""
    from mrczbench.atomic import atomic_output
    done = {r["input"]: r["output"] for r in manifest.records(out) if r.get("status") == "done"}
    written = []
    for star in stars:
        target = out / ("movies.star" if len(stars) == 1 else star.path.name)
        if target.exists() and not target.read_text(errors="replace").startswith(STAR_MARK):
            print(f"mrczbench convert: warning: {target} exists and was not written by mrczbench: "
                  f"left alone, no STAR file written", file=sys.stderr)
            continue
        names = {}
        for source, _, listed in inputs._from_list(star.path, star.names):
            absolute = str(Path(source).absolute())
            names[listed] = done.get(absolute, absolute)
        with atomic_output(target) as handle:
            handle.write((STAR_MARK + f" from {star.path}\n" + star.renamed(names)).encode())
        written.append(target)
    return written


def run_convert(args) -> int:
    from mrczbench.system import usable_cores
    tasks, stars = inputs.expand(args.movies, inputs.OUTPUT_SUFFIX[args.format])
    settings, jobs = settings_from(args, usable_cores(), len(tasks))
    if settings.shard:
        tasks = inputs.shard(tasks, *settings.shard)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MrczbenchError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    todo, refused = _todo(tasks, out, args.only_unfinished)
    skipped = len(tasks) - len(todo) - len(refused)
    print(f"mrczbench convert: {len(tasks)} movies{f' (shard {settings.shard[0]}/{settings.shard[1]})' if settings.shard else ''}"
          f", {skipped} already done, {len(refused)} refused, {len(todo)} to convert to "
          f"{args.format} in {out} ({'Dask ' + args.scheduler if args.scheduler else f'{jobs} job(s)'} "
          f"x {settings.threads} thread(s))", file=sys.stderr)
    from mrczbench.progress import Progress
    records = []
    started = time.monotonic()
    progress = Progress(len(todo) + len(refused), "convert", interval=5.0)
    with manifest.writer(out, settings.shard) as append:
        for record in itertools.chain(refused, _run_tasks(todo, settings, jobs, args.scheduler)):
            append(record)
            records.append(record)
            progress.update(len(records), f"{record['output']} {record['status']}",
                            sum(r.get("raw_bytes") or 0 for r in records if r["status"] == "done"))
    progress.close()
    part = [r for r in manifest.records(out / manifest.part_name(settings.shard))]
    table = manifest.write_table(out, settings.shard, part)
    stars_written = write_star_files(stars, out) if stars else []
    failed = [r for r in records if r["status"] != "done"]
    done = [r for r in records if r["status"] == "done"]
    raw = sum(r.get("raw_bytes") or 0 for r in done)
    stored = sum(r.get("output_bytes") or 0 for r in done)
    seconds = sum(r.get("seconds") or 0 for r in done)
    print(f"converted {len(done)}, failed {len(failed)}, skipped {skipped}: "
          f"{raw / MIB:,.0f} MiB raw -> {stored / MIB:,.0f} MiB "
          f"(ratio {stored / raw if raw else float('nan'):.3f}), "
          f"{raw / MIB / max(time.monotonic() - started, 1e-9):,.0f} MiB/s overall "
          f"({seconds:,.0f} s of movie time); manifest {out / manifest.part_name(settings.shard)}, "
          f"table {table}" + "".join(f", {s}" for s in stars_written))
    for record in failed:
        print(f"failed: {record['input']}: {record['error']}", file=sys.stderr)
    return 1 if failed else 0


def _verify_one(out: Path, record: dict) -> str | None:
    """None when the output matches its record, else the problem."""
    target = out / record["output"]
    if not target.is_file():
        return "missing"
    if record.get("output_bytes") is not None and target.stat().st_size != record["output_bytes"]:
        return f"size {target.stat().st_size} bytes, manifest says {record['output_bytes']}"
    try:
        digests = frame_digests(target, record.get("format", "mrcz"))
    except (MrczbenchError, OSError, ValueError) as exc:
        return f"cannot be decoded: {' '.join(str(exc).split())[:200]}"
    if len(digests) != record.get("frames"):
        return f"{len(digests)} frames, manifest says {record.get('frames')}"
    if checksum_of(digests) != record.get("checksum"):
        return "checksum differs from the manifest (content changed)"
    return None


def run_verify(args) -> int:
    source = Path(args.source)
    out = source if source.is_dir() else source.parent
    records = manifest.records(source)
    done = [r for r in records if r.get("status") == "done"]
    not_done = [r for r in records if r.get("status") != "done"]
    problems = []
    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda r: _verify_one(out, r), done))
    else:
        results = [_verify_one(out, r) for r in done]
    for record, problem in zip(done, results):
        if problem:
            problems.append(f"{record['output']}: {problem}")
    for line in problems:
        print(f"BAD {line}")
    for record in not_done:
        print(f"NOT CONVERTED {record['input']}: {record.get('error')}")
    ok = len(done) - len(problems)
    print(f"verified {ok} of {len(records)} movies; {len(problems)} bad, {len(not_done)} not converted")
    return 0 if not problems and not not_done else 1
