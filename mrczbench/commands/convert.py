"""`mrczbench convert` and `mrczbench verify`: batch conversion on one machine (a local process
pool), a Dask cluster (--scheduler) or a Slurm array (--shard / SLURM_ARRAY_TASK_*)."""
from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path, PurePath

from mrczbench import mrcz
from mrczbench.argtypes import add_eer_grouping, add_no_progress, positive_int, zero_or_range
from mrczbench.convert import follow, inputs, manifest
from mrczbench.convert.adopt import adopt
from mrczbench.convert.job import (Settings, checksum_of, convert_one, frame_digests,
                                   write_gain_reference)
from mrczbench.errors import MrczbenchError
from mrczbench.units import MiB

STAR_MARK = "# written by mrczbench convert"


def add_commands(sub) -> None:
    p = sub.add_parser("convert", help="convert many movies to MRCZ or TIFF, verified, with a manifest "
                       "(--follow: as the detector writes them)",
                       description="Convert movies (files, globs, folders, .lst, RELION .star) to MRCZ "
                       "or RELION-style TIFF under --out, mirroring their relative paths. Every output "
                       "is written under a temporary name, decoded and compared frame by frame with "
                       "its input, then renamed; DIR/manifest.jsonl (+ .tsv) records each movie. "
                       "Sources are never deleted (but with --follow --delete-source, after a second verification). "
                       "--follow FOLDER: convert each movie as the detector software completes it. Exit 0: all converted; 1: some failed; 2: bad options.")
    p.add_argument("movies", nargs="+", metavar="MOVIES")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", choices=("mrcz", "tiff"), default="mrcz")
    p.add_argument("--codec", default="zstd", help="MRCZ blosc codec (default zstd)")
    p.add_argument("--level", type=int, help="MRCZ codec level 1-9 (default 1); TIFF deflate level "
                   "1-9 (default 6, RELION's)")
    p.add_argument("--blocksize", type=zero_or_range(mrcz.MIN_BLOCKSIZE, mrcz.MAX_BLOCKSIZE, "bytes"), help="MRCZ blosc block size: 0 (blosc's "
                   "choice) or 1024-2147483647 bytes (default: python-mrcz's)")
    p.add_argument("--filter", default="bitshuffle", choices=("bitshuffle", "shuffle", "none"))
    p.add_argument("--compression", default="auto", choices=("auto", "lzw", "deflate", "none"),
                   help="TIFF compression; auto = deflate for 4096-wide (Falcon) frames, else LZW, "
                   "as relion_convert_to_tiff")
    p.add_argument("--checksum", action="store_true", help="store a SHA-256 per frame in each MRCZ "
                   "file's metadata (python-mrcz ignores it) so `info --verify` and "
                   "mrcz.read(verify=True) detect corrupted chunks")
    p.add_argument("--gain", metavar="GAIN.mrc", help="store gain-normalised float32 movies as "
                   "integer counts with this gain reference (from `mrczbench estimate-gain`), "
                   "losslessly (a value off its gain fails that movie). MRCZ: each output names "
                   "the gain reference by file name and SHA-256 instead of holding it, and the "
                   "gain file (with its _reliability.mrc) is copied to the top of --out; TIFF: "
                   "written as relion_convert_to_tiff --gain does, with one "
                   "DIR/gain-reference.mrc to give RELION as the gain reference")
    p.add_argument("--embed-gain", action="store_true",
                   help="with --gain, MRCZ: store the gain in every output instead (each file "
                   "then stands alone, at ~0.07 of a 10-frame K2 movie per file)")
    add_eer_grouping(p)
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
    follow.add_arguments(p)
    add_no_progress(p)
    p.set_defaults(func=run_convert)

    v = sub.add_parser("verify", help="re-read converted movies and check them against the manifest",
                       description="Decode every output listed as done in a conversion manifest (or all "
                       "parts in DIR) and compare its checksum, frame count and size with the manifest: "
                       "the check to run before deleting sources. Movies the batch planned but did "
                       "not finish, MOVIES without a record and missing shard parts are reported. "
                       "Exit 0 only when every movie was converted and verifies.")
    v.add_argument("source", metavar="DIR_OR_MANIFEST")
    v.add_argument("movies", nargs="*", metavar="MOVIES", help="the movies that were converted "
                   "(as given to convert: files, folders, .lst, .star): each must have a verified "
                   "output; default: every movie the manifest names")
    v.add_argument("--jobs", type=positive_int, default=1, help="outputs checked at once (default 1)")
    v.add_argument("--json", action="store_true", help="machine-readable output: one JSON object "
                   "with every movie's verdict and the counts")
    add_no_progress(v)
    v.set_defaults(func=run_verify)


def settings_from(args, cores: int, count: int) -> tuple[Settings, int]:
    from mrczbench import mrcz
    if args.format == "mrcz" and args.codec not in mrcz.CODECS:
        raise MrczbenchError(f"--codec {args.codec!r}: valid: {', '.join(mrcz.CODECS)}")
    level = args.level if args.level is not None else (1 if args.format == "mrcz" else 6)
    if not 1 <= level <= 9:
        raise MrczbenchError(f"--level {level}: expected 1-9")
    if args.format != "mrcz":  # MRCZ-only options are refused, not silently dropped
        given = [option for option, value in (("--checksum", args.checksum),
                                              ("--blocksize", args.blocksize is not None),
                                              ("--embed-gain", args.embed_gain)) if value]
        if given:
            raise MrczbenchError(f"{' and '.join(given)}: MRCZ only (TIFF has no per-frame "
                                 f"checksums, blosc blocks or embedded gain); use --format mrcz or leave "
                                 f"{'them' if len(given) > 1 else 'it'} out")
    gain_ref = None   # the gain file's reference_record when outputs name it
    if args.gain:
        from mrczbench.movies import gain
        gain.read_reference(args.gain)  # a missing or bad gain file stops here, not per movie
        if args.format == "mrcz" and not args.embed_gain:  # TIFF: gain-reference.mrc (run_convert)
            gain_ref = gain.reference_record(args.gain)
            _place_gain(Path(args.gain), Path(args.out), gain_ref)
    elif args.embed_gain:
        raise MrczbenchError("--embed-gain only applies with --gain")
    jobs = args.jobs or max(1, min(cores, count))
    threads = args.threads or max(1, cores // jobs)
    config = ({"format": "mrcz", "codec": args.codec, "level": level, "blocksize": args.blocksize,
               "filter": args.filter} if args.format == "mrcz" else
              {"format": "tiff", "compression": args.compression, "level": level})
    return Settings(out=str(Path(args.out).resolve()), format=args.format, codec=args.codec,
                    level=level, blocksize=args.blocksize, filter=args.filter,
                    compression=args.compression, tiff_level=level, threads=threads,
                    checksum=args.checksum, gain=str(Path(args.gain).resolve()) if args.gain else None,
                    eer_grouping=args.eer_grouping, gain_ref=gain_ref,
                    shard=inputs.parse_shard(args.shard),
                    config={**config, "gain": args.gain,
                            **({"gain_stored": "reference" if gain_ref else "embedded"}
                               if args.gain and args.format == "mrcz" else {})}), jobs


def _place_gain(gain_file: Path, out: Path, record: dict) -> None:
    """The gain reference and its reliability map at the top of --out, where every output
    finds them (gain.find_reference looks beside a movie and above). A file of that name
    already there must be the same gain (SHA-256); it is never replaced."""
    import shutil

    from mrczbench.atomic import atomic_output
    from mrczbench.movies import gain

    out.mkdir(parents=True, exist_ok=True)
    for source, digest in ((gain_file, record["sha256"]),
                           (gain.reliability_path(gain_file), record["reliability_sha256"])):
        target = out / source.name
        if target.exists():
            if gain.file_sha256(target) != digest:
                raise MrczbenchError(f"{target}: exists and is not the gain reference {source} "
                                     "(different SHA-256); the outputs would name the wrong "
                                     "gain: use another --out or remove it")
            continue
        with open(source, "rb") as src, atomic_output(target) as dst:
            shutil.copyfileobj(src, dst)


def _todo(tasks, out: Path, only_unfinished: bool) -> tuple[list, list[dict], list]:
    """Tasks still to run, records for tasks refused before running (outputs that would
    replace their input), and tasks whose output exists with no manifest row (to adopt when
    it verifies against the input, see adopt.py)."""
    try:
        previous = {r["output"]: r for r in manifest.records(out)}
    except MrczbenchError:
        previous = {}
    todo, refused, orphans = [], [], []
    for task in tasks:
        target = out / task.relative
        done = previous.get(task.relative)
        if only_unfinished and done and done.get("status") == "done" and target.is_file() \
                and target.stat().st_size == done.get("output_bytes"):
            continue
        if target.exists() and os.path.samefile(target, task.input):
            refused.append({"input": task.input, "output": task.relative, "status": "failed",
                            "error": "the output would replace its input; choose another --out"})
        elif target.exists() and (done or {}).get("status") != "done":  # not recorded as ours
            orphans.append(task)
        else:
            todo.append(task)
    return todo, refused, orphans


def check_scheduler(scheduler: str) -> None:
    """A --scheduler that names a file must be a Dask scheduler file (JSON with an "address",
    as `dask scheduler --scheduler-file` writes): distributed only asserts that."""
    import json
    path = Path(scheduler)
    if not path.is_file():
        return
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise MrczbenchError(f"--scheduler {scheduler}: not a Dask scheduler file (JSON with an "
                             f"\"address\", as `dask scheduler --scheduler-file` writes); give "
                             f"that file or an address such as tcp://host:8786")


def _run_tasks(tasks, settings: Settings, jobs: int, scheduler: str | None):
    """Yield records as movies finish: in this process (1 job), a process pool, or Dask. A
    local job is told the movie it will likely take next (`jobs` further on), to read it ahead."""
    ahead = [tasks[i + jobs].input if i + jobs < len(tasks) else None for i in range(len(tasks))]
    if scheduler:
        from distributed import as_completed
        from mrczbench.convert.workers import dask_client
        with dask_client(scheduler) as client:
            # the scheduler picks which worker takes which movie: no read-ahead hint
            futures = client.map(convert_one, tasks, settings=settings, pure=False)
            for future in as_completed(futures):
                yield future.result()
        return
    if jobs == 1:
        for task, next_input in zip(tasks, ahead):
            yield convert_one(task, settings, next_input)
        return
    from concurrent.futures import as_completed
    from mrczbench.convert.workers import Pool
    pool = Pool(jobs)  # workers die with this process: none renames a movie it cannot record
    try:
        futures = [pool.submit(convert_one, task, settings, next_input)
                   for task, next_input in zip(tasks, ahead)]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:  # Ctrl-C, an error: movies in flight are abandoned, not finished unrecorded
        pool.abandon()
        raise
    pool.shutdown()


MRCZ_STAR_NOTE = ("# lists MRCZ files: RELION cannot read MRCZ (mrczbench run --data, datasets "
                  "inspect and convert read this list); for RELION convert with --format tiff")


def _project_path(path: Path) -> str:
    """A converted movie's name as RELION resolves it: relative to the project folder (the
    current one) when inside it, else absolute."""
    path = path.absolute()
    try:
        return str(path.relative_to(Path.cwd().absolute()))
    except ValueError:
        return str(path)


def write_star_files(stars, out: Path, fmt: str = "tiff") -> list[Path]:
    """DIR/movies.star (DIR/<name>.star for several) with the converted names, as RELION
    resolves them from the project folder (DIR/Movies/x.tif, or absolute when DIR is outside
    it); movies not converted keep their original (absolute) path so RELION still finds them.
    A list of MRCZ files says, in its second line and on stderr, that RELION cannot read it."""
    from mrczbench.atomic import atomic_output
    done = {r["input"]: _project_path(out / r["output"])
            for r in manifest.records(out) if r.get("status") == "done"}
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
        note = MRCZ_STAR_NOTE + "\n" if fmt == "mrcz" else ""
        with atomic_output(target) as handle:
            handle.write((STAR_MARK + f" from {star.path}\n" + note + star.renamed(names)).encode())
        written.append(target)
        if fmt == "mrcz":
            print(f"mrczbench convert: note: {target} lists MRCZ files: RELION cannot read MRCZ "
                  f"(mrczbench reads it); for RELION convert with --format tiff", file=sys.stderr)
    return written


def run_convert(args) -> int:
    from mrczbench.system import usable_cores
    if args.config:
        print(f"mrczbench convert: --config {args.config}: {follow.apply_config(args)}", file=sys.stderr)
    if args.follow:
        return follow.run_follow(args, settings_from)
    if args.delete_source:
        raise MrczbenchError("--delete-source: only with --follow (after a batch, run `mrczbench "
                             "verify DIR` and delete the sources yourself)")
    tasks, stars = inputs.expand(args.movies, inputs.OUTPUT_SUFFIX[args.format], Path(args.out))
    settings, jobs = settings_from(args, usable_cores(), len(tasks))
    from mrczbench.atomic import protect_inputs
    from mrczbench.movies.gain import reliability_path
    protect_inputs([*(task.input for task in tasks), *(star.path for star in stars),
                    *((args.gain, reliability_path(args.gain)) if args.gain else ())])
    if args.scheduler:
        check_scheduler(args.scheduler)
    if settings.shard:
        tasks = inputs.shard(tasks, *settings.shard)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MrczbenchError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if settings.gain and settings.format == "tiff":
        print(f"mrczbench convert: gain reference for the TIFF counts: "
              f"{write_gain_reference(out, settings.gain)}", file=sys.stderr)
    todo, refused, orphans = _todo(tasks, out, args.only_unfinished)
    skipped = len(tasks) - len(todo) - len(refused) - len(orphans)
    from mrczbench.progress import Progress
    records = []
    started = time.monotonic()
    with manifest.writer(out, settings.shard) as append:
        # named before any work: a batch cut short still lists its movies
        append(*({"input": task.input, "output": task.relative, "status": "planned",
                  "format": settings.format, "shard": settings.shard} for task in [*orphans, *todo]))
        # announced once the batch holds its manifest: a refused batch prints its error alone
        print(f"mrczbench convert: {len(tasks)} movies{f' (shard {settings.shard[0]}/{settings.shard[1]})' if settings.shard else ''}"
              f", {skipped} already done, {len(refused)} refused, "
              f"{f'{len(orphans)} found without a manifest row (adopted if they verify), ' if orphans else ''}"
              f"{len(todo)} to convert to "
              f"{args.format} in {out} ({'Dask ' + args.scheduler if args.scheduler else f'{jobs} job(s)'} "
              f"x {settings.threads} thread(s))", file=sys.stderr)
        progress = Progress(len(todo) + len(refused) + len(orphans), "convert",
                            enabled=not args.no_progress, interval=5.0)
        adopted = (adopt(task, settings) for task in orphans)
        for record in itertools.chain(refused, adopted, _run_tasks(todo, settings, jobs, args.scheduler)):
            append(record)
            records.append(record)
            progress.update(len(records), f"{record['output']} {record['status']}",
                            sum(r.get("raw_bytes") or 0 for r in records if r["status"] == "done"))
    progress.close()
    part = [r for r in manifest.records(out / manifest.part_name(settings.shard))]
    table = manifest.write_table(out, settings.shard, part)
    stars_written = write_star_files(stars, out, args.format) if stars else []
    failed = [r for r in records if r["status"] != "done"]
    done = [r for r in records if r["status"] == "done"]
    raw = sum(r.get("raw_bytes") or 0 for r in done)
    stored = sum(r.get("output_bytes") or 0 for r in done)
    seconds = sum(r.get("seconds") or 0 for r in done)
    print(f"converted {len(done)}, failed {len(failed)}, skipped {skipped}: "
          f"{raw / MiB:,.0f} MiB raw -> {stored / MiB:,.0f} MiB "
          f"(ratio {stored / raw if raw else float('nan'):.3f}), "
          f"{raw / MiB / max(time.monotonic() - started, 1e-9):,.0f} MiB/s overall "
          f"({seconds:,.0f} s of movie time); manifest {out / manifest.part_name(settings.shard)}, "
          f"table {table}" + "".join(f", {s}" for s in stars_written))
    for record in failed:
        print(f"failed: {record['input']}: {record['error']}", file=sys.stderr)
    return 1 if failed else 0


def _inside_folder(out: Path, output) -> Path | None:
    """The output's path when the record names a file inside `out` (no absolute path, no
    `..`, no symlink leading out), else None: verify never reads outside its folder."""
    if not isinstance(output, str) or not output or "\0" in output:
        return None
    relative = PurePath(output)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    target = out / relative
    try:
        target.resolve().relative_to(out.resolve())
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return None
    return target


def _verify_one(out: Path, record: dict) -> str | None:
    """None when the output matches its record, else the problem (one line)."""
    target = _inside_folder(out, record.get("output"))
    if target is None:
        return f"the manifest names a file outside {out}: not read"
    if not target.is_file():
        return "missing"
    if not isinstance(record.get("frames"), int) or not isinstance(record.get("checksum"), str):
        return "the manifest record has no frame count or checksum"
    if record.get("output_bytes") is not None and target.stat().st_size != record["output_bytes"]:
        return f"size {target.stat().st_size} bytes, manifest says {record['output_bytes']}"
    reference = None
    if record.get("gain_reference"):  # TIFF counts: the movie is page x this reference
        reference = _inside_folder(out, record["gain_reference"])
        if reference is None:
            return f"the manifest names a gain reference outside {out}: not read"
    try:
        digests = frame_digests(target, record.get("format", "mrcz"), reference)
    except (MrczbenchError, OSError, ValueError, MemoryError) as exc:
        return f"cannot be decoded: {' '.join(str(exc).split())[:200]}"
    if len(digests) != record.get("frames"):
        return f"{len(digests)} frames, manifest says {record.get('frames')}"
    if checksum_of(digests) != record.get("checksum"):
        return "checksum differs from the manifest (content changed)"
    return None


def _expected(args, records: list[dict], out: Path) -> tuple[list[dict], list[str]]:
    """The records to check (one per movie) and the movies that have none: every movie given
    on the command line, or else every movie the manifest names (planned ones included)."""
    if not args.movies:
        return records, []
    by_input = {r.get("input"): r for r in records}
    tasks, _ = inputs.expand(args.movies, inputs.OUTPUT_SUFFIX["mrcz"], out)  # outputs are not movies given
    return ([by_input[t.input] for t in tasks if t.input in by_input],
            [t.input for t in tasks if t.input not in by_input])


def _missing_shards(source: Path) -> list[str]:
    """Parts of a sharded batch that are not in the folder (their movies never converted)."""
    parts = [manifest.shard_of(p) for p in source.glob(manifest.PATTERN)] if source.is_dir() else []
    counts = {n for part in parts if part for _, n in [part]}
    have = {part for part in parts if part}
    return [manifest.part_name((i, n)) for n in sorted(counts) for i in range(n) if (i, n) not in have]


def run_verify(args) -> int:
    source = Path(args.source)
    out = source if source.is_dir() else source.parent
    records = manifest.records(source)
    checked, unrecorded = _expected(args, records, out)
    if not checked and not unrecorded:
        raise MrczbenchError(f"{source}: the manifest lists no movies: nothing can be verified; "
                             f"give the movies that were converted: mrczbench verify {args.source} MOVIES")
    done = [r for r in checked if r.get("status") == "done"]
    not_done = [r for r in checked if r.get("status") != "done"]
    from concurrent.futures import ThreadPoolExecutor
    from mrczbench.progress import Progress
    progress = Progress(len(done), "verify", enabled=not args.no_progress, interval=5.0)
    results: list[str | None] = []
    verified_bytes = 0
    with ThreadPoolExecutor(args.jobs) as pool:  # in order, `jobs` outputs decoding at once
        for record, problem in zip(done, pool.map(lambda r: _verify_one(out, r), done)):
            results.append(problem)
            raw = record.get("raw_bytes")
            verified_bytes += raw if isinstance(raw, int) else 0
            progress.update(len(results), _shown(record.get("output")), verified_bytes)
    progress.close()
    problems = [(record, problem) for record, problem in zip(done, results) if problem]
    missing_parts = _missing_shards(source)
    movies = len(checked) + len(unrecorded)
    ok = len(done) - len(problems)
    passed = ok == movies and not missing_parts
    reasons = [("the batch stopped before it was converted" if r.get("status") == "planned"
                else r.get("error")) for r in not_done]
    if args.json:
        import json
        print(json.dumps({
            "verified": ok, "movies": movies, "bad": len(problems),
            "not_converted": len(not_done) + len(unrecorded), "missing_shard_parts": missing_parts,
            "movies_checked": [{"output": r.get("output"), "input": r.get("input"), "ok": p is None,
                                "problem": p} for r, p in zip(done, results)],
            "not_converted_movies": [{"input": r.get("input"), "error": reason}
                                     for r, reason in zip(not_done, reasons)]
                                    + [{"input": movie, "error": "not in the manifest"}
                                       for movie in unrecorded]}, indent=2))
        return 0 if passed else 1
    for record, problem in problems:
        print(f"BAD {_shown(record.get('output'))}: {problem}")
    for record, reason in zip(not_done, reasons):
        print(f"NOT CONVERTED {_shown(record.get('input'))}: {_shown(reason)}")
    for movie in unrecorded:
        print(f"NOT CONVERTED {_shown(movie)}: not in the manifest")
    for part in missing_parts:
        print(f"MISSING {part}: that shard's movies were never converted")
    print(f"verified {ok} of {movies} movies; {len(problems)} bad, "
          f"{len(not_done) + len(unrecorded)} not converted"
          + (f", {len(missing_parts)} shard part(s) missing" if missing_parts else ""))
    return 0 if passed else 1
    for record in not_done:
        reason = ("the batch stopped before it was converted" if record.get("status") == "planned"
                  else record.get("error"))
        print(f"NOT CONVERTED {_shown(record.get('input'))}: {_shown(reason)}")
    for movie in unrecorded:
        print(f"NOT CONVERTED {_shown(movie)}: not in the manifest")
    missing_parts = _missing_shards(source)
    for part in missing_parts:
        print(f"MISSING {part}: that shard's movies were never converted")
    unconverted = len(not_done) + len(unrecorded)
    ok = len(done) - len(problems)
    print(f"verified {ok} of {len(checked) + len(unrecorded)} movies; {len(problems)} bad, "
          f"{unconverted} not converted" + (f", {len(missing_parts)} shard part(s) missing"
                                            if missing_parts else ""))
    return 0 if ok == len(checked) + len(unrecorded) and not missing_parts else 1


def _shown(value) -> str:
    """A manifest value as one printable line."""
    return " ".join(str(value).split())[:300].encode("ascii", "backslashreplace").decode()
