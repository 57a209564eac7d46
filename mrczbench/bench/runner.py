"""`mrczbench run`: the command, its steps, progress and the terminal summary.

A run is: plan (bench/plan.py: suite → validated cases, resume, run.json), then execute the
cases in rounds: round r times every case once, as sample r, each round in its own seeded
order, so that the machine's slow drift in speed spreads over the samples of every case
(within-run spread that compare's tests see) instead of shifting whole cases between two
runs. Each case runs in a worker process (bench/worker.py), which times it by the measurement
protocol (bench/measure.py) and sends its rows back; the rows of a case's round are appended
(and flushed) together when it ends, so a killed run loses at most the round of the case in
flight and `--resume` runs exactly the rounds missing from the file. A contender that fails
gives error rows and the run goes on; a failure of mrczbench's own harness stops the run with
its traceback.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mrczbench import store
from mrczbench.argtypes import positive_int, positive_number
from mrczbench.bench import timing
from mrczbench.bench.measure import case_tag, error_row
from mrczbench.bench.plan import (Plan, RunLock, check_folder_option, order_cases, plan_run,
                                  run_metadata)
from mrczbench.bench.suites import PROFILES, Case, load_suite
from mrczbench.bench.worker import TIMED_OUT, Worker
from mrczbench.errors import SuiteError
from mrczbench.progress import Progress


def run_suite(name: str, quick: bool = False, profile: str | None = None, data: list[str] | None = None,
              out: str | os.PathLike | None = None, scratch: str | os.PathLike | None = None,
              resume: bool = False, repeats: int | None = None, timeout: float | None = None,
              seed: int | None = None, cache_dir: str | os.PathLike | None = None,
              eviction: str = "auto", progress: bool = True, summary: bool = True,
              command_line: list[str] | None = None) -> Path:
    """Run suite `name` (a name from suites/ or a .toml path); return the run's JSONL path.

    Results go to `out` (default results/<suite>/); scratch files to `scratch` (default: a
    hidden folder inside `out`, i.e. the same filesystem), removed at the end. With `resume`,
    the latest run of the suite in `out` continues with its own profile and settings."""
    plan = plan_run(name, quick=quick, profile=profile, data=data, out=out, resume=resume, repeats=repeats,
                    timeout=timeout, seed=seed, eviction=eviction, cache_dir=cache_dir,
                    command_line=command_line)
    check_folder_option("--scratch", scratch)
    scratch_dir = Path(scratch or plan.out_dir) / f".scratch-{plan.run_id}"
    new_dirs = _make_folders(plan.out_dir, scratch_dir)
    try:
        with RunLock(plan.run_path):
            todo = plan.todo()
            method, note = _eviction(plan, todo, scratch_dir)
            meta = run_metadata(plan, method, note, scratch_dir, command_line)
            store.write_run_metadata(plan.run_path, meta)
            _announce(plan, todo, method, note, meta["load_at_start"], progress or summary)
            settings = {"scratch": str(scratch_dir), "eviction": method,
                        "cache_dir": str(cache_dir) if cache_dir else None}
            base = {"run_id": plan.run_id, "suite": plan.suite.name, "eviction": method}
            execute(todo, plan, settings, base, progress)
            meta["finished"] = store.utc_now()
            store.write_run_metadata(plan.run_path, meta)
    except BaseException:
        shutil.rmtree(scratch_dir, ignore_errors=True)
        if plan.run_path.exists() and plan.run_path.stat().st_size == 0 and not plan.resume \
                and not store.meta_path_for(plan.run_path).exists():
            plan.run_path.unlink()  # the lock made it; nothing was written
        _remove_empty_dirs(new_dirs)
        raise
    shutil.rmtree(scratch_dir, ignore_errors=True)
    if summary:
        print(summary_table(list(store.iter_rows(plan.run_path))))
        print(f"results: {plan.run_path}")
    return plan.run_path


def _make_folders(out_dir: Path, scratch_dir: Path) -> list[Path]:
    """Create the output and scratch folders; return the ones created (deepest first, without
    the scratch folder itself) so a failed start can remove them again."""
    new_dirs = sorted({*_missing_dirs(out_dir), *_missing_dirs(scratch_dir)} - {scratch_dir},
                      key=lambda d: len(d.parts), reverse=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        scratch_dir.mkdir(parents=True, exist_ok=True)
    except BaseException:
        _remove_empty_dirs(new_dirs)
        raise
    return new_dirs


def _eviction(plan: Plan, todo: list[Case], scratch_dir: Path) -> tuple[str, str]:
    """The page-cache eviction method for cold reads, probed on the scratch filesystem; a
    resumed run must get its original method."""
    if not any("read_cold" in case.ops for case in todo):
        return "none", "no cold reads in this suite"
    method, note = timing.probe_eviction(scratch_dir, preferred=plan.eviction)
    original = (plan.meta.get("eviction") or {}).get("method", method)
    if plan.resume and method != original:
        raise SuiteError(
            f"--resume: the latest run {plan.run_path.name} used eviction {original!r}, which "
            f"gives {method!r} here now; resume must use the original settings (start a new "
            f"run instead)")
    return method, note


def _announce(plan: Plan, todo: list[Case], method: str, note: str, load: dict | None,
              enabled: bool) -> None:
    if enabled:
        left = sum(plan.rounds_left(case) for case in todo)
        print(f"mrczbench run: suite {plan.suite.name} ({plan.suite.profile}), {len(todo)} of "
              f"{len(plan.cases)} cases to run ({left} case rounds of "
              f"{len(plan.cases) * plan.rounds()}), eviction {method} → {plan.run_path}",
              file=sys.stderr)
        if method == "none" and any("read_cold" in case.ops for case in todo):
            print(f"mrczbench run: warning: {note}", file=sys.stderr)
        if plan.data_subset:
            print(f"mrczbench run: {plan.data_subset['note']}", file=sys.stderr)
    if load and load["busy"]:
        print(f"mrczbench run: warning: load average {load['load_average']:.2f} on "
              f"{load['usable_cores']} cores: other work is running; timings will be noisy "
              f"(marked unstable)", file=sys.stderr)


def _missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists() or folder == folder.parent:
            break
        missing.append(folder)
    return missing


def _remove_empty_dirs(folders: list[Path]) -> None:
    """Remove folders (deepest first) that this run created and left empty."""
    for folder in folders:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            pass


# --- executing the cases --------------------------------------------------------------------------

def execute(cases: list[Case], plan: Plan, settings: dict[str, Any], base: dict[str, Any],
            show_progress: bool) -> None:
    """Run `cases` in rounds (plan.round_cases): each round times every case once, in a
    worker, and appends its rows; a worker that crashed or timed out is killed (with its
    process group) and the case gets an error row and leaves the later rounds."""
    index_of = {case.case_id: i for i, case in enumerate(plan.cases)}
    progress = Progress(sum(plan.rounds_left(case) for case in cases),
                        "run", enabled=show_progress)
    failed: set[str] = set()
    steps = 0
    worker: Worker | None = None
    try:
        with store.RunFile(plan.run_path) as run_file:
            for number in range(plan.rounds()):
                for case in plan.round_cases(number, failed):
                    label = f"round {number + 1}/{plan.rounds()} {case.case_id}"
                    progress.update(steps, label)
                    if worker is None or not worker.process.is_alive():
                        worker = Worker(settings)
                    samples = max(1, len(case.ops))
                    received = []

                    def on_row(row, steps=steps, label=label, received=received):
                        # progress within a case: one step per sample row
                        received.append(row)
                        progress.update(steps + min(len(received) / samples, 0.99),
                                        f"{label} {row.get('op') or ''}")

                    rows, failure = worker.run(case, on_row)
                    if failure:
                        worker.kill()
                        worker = None
                        _remove_case_files(Path(settings["scratch"]), case)
                        rows.append(error_row(case, failure, op=rows[-1].get("op") if rows else None))
                    if any(row.get("error") for row in rows):
                        failed.add(case.case_id)
                    case_base = {**base, "case_id": case.case_id, "case_index": index_of[case.case_id]}
                    run_file.append(store.make_row(**{**case_base, **row}) for row in rows)
                    steps += 1
            progress.update(progress.total)
    except BaseException:
        # Ctrl-C or a harness bug: do not wait for the case in flight; its rows are not written
        if worker is not None:
            worker.kill()
            worker = None
        raise
    finally:
        progress.close()
        if worker is not None:
            worker.stop()


def _remove_case_files(scratch: Path, case: Case) -> None:
    """Files a killed worker left behind (temp files of atomic writes included)."""
    for path in scratch.glob(f"*case{case_tag(case)}-*"):
        path.unlink(missing_ok=True)


# --- terminal summary -----------------------------------------------------------------------------

def _per_case(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """case id -> first row, ratios, MiB/s of valid samples per op, errors, invalid count."""
    cases: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = cases.setdefault(row["case_id"], {"first": row, "ops": {}, "ratios": [], "errors": [],
                                                  "invalid": 0})
        if row.get("error"):
            entry["errors"].append(f"{row.get('op') or 'case'}: {row['error']}")
            continue
        if row.get("ratio") is not None and row.get("op") in ("write", "write_fsync", "encode"):
            entry["ratios"].append(row["ratio"])
        if not row.get("valid"):
            entry["invalid"] += 1
            continue
        if row.get("mib_per_s") is not None:
            entry["ops"].setdefault(row["op"], []).append(row["mib_per_s"])
    return cases


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Median per case: ratio (stored/raw), Shannon bound, efficiency, MiB/s per op.
    A '*' marks an unstable series (mrczbench.analysis.stats: the report's and compare's rule)."""
    from mrczbench.analysis.stats import MIN_SAMPLES_FOR_SPREAD, UNSTABLE_SPREAD, summarise

    cases = _per_case(rows)
    if not cases:
        return "(no results)"
    ops = [op for op in store.OPS if any(op in e["ops"] for e in cases.values())]
    # show a parameter column only where it tells one contender's cases apart (a sweep)
    varying = []
    for key in ("level", "threads", "blocksize"):
        per_label: dict[str, set] = {}
        for entry in cases.values():
            per_label.setdefault(str(entry["first"].get("label")), set()).add(entry["first"].get(key))
        if any(len(values) > 1 for values in per_label.values()):
            varying.append(key)
    header = ["contender", "dataset", "dose (e/px/frame)"] + [_param_header(k) for k in varying] + \
        ["ratio (stored/raw)", "bound (stored/raw)", "efficiency (%)"] + [f"{op} (MiB/s)" for op in ops]
    table = []
    unstable = 0
    notes = []
    def sort_key(entry):
        first = entry["first"]
        return (str(first.get("dataset")), first.get("dose") or 0, str(first.get("format")),
                str(first.get("codec")), *[first.get(k) or 0 for k in ("level", "threads", "blocksize")],
                str(first.get("label")))
    order = sorted(cases.values(), key=sort_key)
    for entry in order:
        first = entry["first"]
        ratio = summarise(entry["ratios"]).median if entry["ratios"] else None
        bound = first.get("bound_ratio")
        line = [str(first.get("label")), str(first.get("dataset")), _num(first.get("dose"))]
        line += [_num(first.get(k)) if k != "blocksize" else _blocksize(first.get(k)) for k in varying]
        line += [_num(ratio, 3), _num(bound, 3),
                 _num(100 * bound / ratio, 0) if (ratio and bound is not None) else "-"]
        for op in ops:
            values = entry["ops"].get(op)
            if not values:
                line.append("-")
                continue
            series = summarise(values)
            median = series.median
            mark = "*" if series.unstable else ""
            unstable += series.unstable
            line.append(f"{median:,.0f}{mark}" if median >= 100 else f"{median:.3g}{mark}")
        if entry["errors"]:
            notes.append(f"{first.get('label')} / {first.get('dataset')}: {entry['errors'][0]}"
                         + (f" (+{len(entry['errors']) - 1} more)" if len(entry["errors"]) > 1 else ""))
        if entry["invalid"]:
            notes.append(f"{first.get('label')} / {first.get('dataset')}: {entry['invalid']} invalid "
                         f"sample(s) left out (cold read not cold)")
        table.append(line)
    keep = [i for i in range(len(header)) if i < 2 or any(r[i] != "-" for r in table)]
    header = [header[i] for i in keep]
    table = [[r[i] for i in keep] for r in table]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    text = ["  ".join(h.rjust(w) if i >= 2 else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    text.append("  ".join("-" * w for w in widths))
    for line in table:
        text.append("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))))
    text.append("ratio = stored/raw (0.37 = 37 % of the raw size); MiB = 2^20 bytes of raw data per "
                "second, median of valid samples; efficiency = bound/ratio.")
    if unstable:
        text.append(f"* {unstable} series unstable: p10-p90 spread > {UNSTABLE_SPREAD:.0%} of the "
                    f"median (series of {MIN_SAMPLES_FOR_SPREAD} or more samples).")
    for note in notes:
        text.append("! " + note)
    timed_out = {row["case_id"]: row["error"] for row in rows
                 if str(row.get("error") or "").startswith(TIMED_OUT)}
    if timed_out:
        limit = next(iter(timed_out.values()))[len(TIMED_OUT):].split()[0]
        text.append(f"! {len(timed_out)} case(s) timed out at the limit of {limit} s per case "
                    f"(--timeout {limit}): run again with a larger --timeout SECONDS, or with "
                    f"--quick for a short run")
    return "\n".join(text)


def _param_header(key: str) -> str:
    return {"blocksize": "blocksize (bytes)", "threads": "threads", "level": "level"}[key]


def _blocksize(value: Any) -> str:
    if value == 0:
        return "auto"
    if isinstance(value, int) and value >= 1024:
        return f"{value // 1024}KiB" if value < 2**20 else f"{value / 2**20:g}MiB"
    return _num(value)


def _num(value: Any, digits: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- command line ---------------------------------------------------------------------------------

def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a benchmark suite",
        description="Run a benchmark suite and append one result row per sample to "
                    "results/<suite>/<run-id>.jsonl (metadata in <run-id>.run.json).",
        epilog="Example: mrczbench run --suite dose-sweep --quick")
    parser.add_argument("--suite", required=True, help="suite name (see `mrczbench suites list`) or a .toml file")
    parser.add_argument("--quick", action="store_true", help="the suite's quick profile: small frames, few "
                        "repeats; a smoke test, not figures to quote (= --profile quick)")
    parser.add_argument("--profile", choices=PROFILES, help="full (default: what to quote), quick, or "
                        "reference (the full profile reduced as the suite's [reference] table says, "
                        "for the committed reference runs)")
    parser.add_argument("--data", nargs="+", metavar="FILE",
                        help="your movies (or .lst/.star lists of them) in place of the suite's synthetic datasets")
    parser.add_argument("--out", metavar="DIR", help="folder for the run files (default: results/<suite>)")
    parser.add_argument("--scratch", metavar="DIR",
                        help="folder for the files written while timing (default: inside --out, the same "
                             "filesystem); removed at the end")
    parser.add_argument("--resume", action="store_true",
                        help="continue the latest run of this suite in the output folder, skipping "
                             "finished cases, with that run's profile, data and settings")
    parser.add_argument("--repeats", type=positive_int, metavar="N",
                        help="samples per operation (overrides the suite)")
    parser.add_argument("--timeout", type=positive_number, metavar="SECONDS",
                        help="limit per case (overrides the suite)")
    parser.add_argument("--seed", type=int, help="seed of the shuffled case order (overrides the suite)")
    parser.add_argument("--cache-dir", metavar="DIR", help="dataset cache (default $MRCZBENCH_CACHE or ~/.cache/mrczbench)")
    parser.add_argument("--eviction", choices=("auto",) + timing.EVICTION_METHODS, default="auto",
                        help="page-cache eviction before cold reads. Default auto = fadvise: fsync + "
                             "posix_fadvise DONTNEED on the benchmark's own files only (on --resume: the "
                             "original run's method). drop_caches empties the page cache of the whole "
                             "machine, other users' jobs included: opt-in, for a dedicated machine, as "
                             "root. none: cold reads are marked invalid")
    parser.add_argument("--list-cases", action="store_true", help="print the cases in run order and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    parser.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    if args.list_cases:
        suite = load_suite(args.suite, quick=args.quick, profile=args.profile)
        if args.seed is not None:
            suite.seed = args.seed
        for case in order_cases(suite.cases(data=args.data), suite.seed):
            print(case.case_id)
        return 0
    path = run_suite(args.suite, quick=args.quick, profile=args.profile, data=args.data, out=args.out, scratch=args.scratch,
                     resume=args.resume, repeats=args.repeats, timeout=args.timeout, seed=args.seed,
                     cache_dir=args.cache_dir, eviction=args.eviction, progress=not args.no_progress,
                     command_line=["mrczbench"] + sys.argv[1:])
    rows = list(store.iter_rows(path))
    return 1 if rows and all(row.get("error") for row in rows) else 0
