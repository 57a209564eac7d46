"""`mrczbench run`: execute a suite's cases in a worker process and append result rows.

The main process plans the run (suite → cases → seeded, shuffled order), owns the result
files and the clock for timeouts. A forked worker process executes one case at a time: it
loads the case's dataset once (kept while the next case uses the same one), times the
operations, verifies every sample's round trip and sends rows back through a pipe. A worker
that crashes or overruns the case timeout is killed; the case gets an error row and a fresh
worker takes the next case.

Rows of a case are appended (and flushed) together when the case ends, so a killed run
loses at most the case in flight and `--resume` skips exactly the cases present in the file.
"""
from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

from mrczbench.analysis import results
from mrczbench.bench import timing
from mrczbench.errors import SuiteError
from mrczbench.bench.suites import Case, load_suite

FILE_OPS = ("write", "read_warm", "write_fsync", "read_cold")
MEMORY_OPS = ("encode", "decode")


# === planning (main process) ==================================================================

def order_cases(cases: list[Case], seed: int) -> list[Case]:
    """Shuffle cases (seeded) so drift in machine speed does not favour one contender, while
    keeping cases on the same dataset together (the worker loads each dataset once)."""
    rng = random.Random(seed)
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(json.dumps(case.dataset, sort_keys=True), []).append(case)
    keys = list(groups)
    rng.shuffle(keys)
    ordered: list[Case] = []
    for key in keys:
        members = list(groups[key])
        rng.shuffle(members)  # a fresh permutation per dataset: no contender is always first
        ordered.extend(members)
    return ordered


def _runs_of_suite(folder: Path, suite: str) -> list[Path]:
    return [p for p in results.run_files(folder) if results.read_run_metadata(p).get("suite") == suite]


def run_suite(name: str, quick: bool = False, data: list[str] | None = None,
              out: str | os.PathLike | None = None, scratch: str | os.PathLike | None = None,
              resume: bool = False, repeats: int | None = None, timeout: float | None = None,
              seed: int | None = None, cache_dir: str | os.PathLike | None = None,
              eviction: str = "auto", progress: bool = True, summary: bool = True,
              command_line: list[str] | None = None) -> Path:
    """Run suite `name` (a name from suites/ or a .toml path); return the run's JSONL path.

    Results go to `out` (default results/<suite>/); scratch files to `scratch` (default: a
    hidden folder inside `out`, i.e. the same filesystem), removed at the end."""
    suite = load_suite(name, quick=quick)
    if repeats is not None:
        suite.repeats = _positive_int("--repeats", repeats)
    if timeout is not None:
        if not timeout > 0:
            raise SuiteError(f"--timeout: expected seconds > 0. Got {timeout!r}")
        suite.timeout = float(timeout)
    if seed is not None:
        suite.seed = int(seed)
    out_dir = Path(out) if out else Path("results") / suite.name

    data_files = [str(Path(p).resolve()) for p in data] if data else []
    started = results.utc_now()
    meta: dict[str, Any]
    if resume:
        # nothing is created before these checks: a refused resume leaves no empty folder
        previous = _runs_of_suite(out_dir, suite.name) if out_dir.is_dir() else []
        if not previous:
            raise SuiteError(f"--resume: no earlier run of suite {suite.name!r} in {out_dir}")
        run_path = previous[-1]
        meta = results.read_run_metadata(run_path)
        if meta.get("profile") != suite.profile or meta.get("data_files", []) != data_files:
            raise SuiteError(
                f"--resume: the latest run {run_path.name} used profile {meta.get('profile')!r} and "
                f"data {meta.get('data_files') or 'synthetic'}; run with the same options "
                f"(this run: profile {suite.profile!r}, data {data_files or 'synthetic'})")
        _check_resume_settings(run_path, meta, repeats=repeats, seed=seed, eviction=eviction)
        run_id = meta["run_id"]
        # settings not given again are taken from the original run, never from the suite's
        # current defaults: one run file holds one set of settings
        suite.seed = meta.get("seed", suite.seed)
        original_repeats = (meta.get("timing") or {}).get("repeats")
        if repeats is None and original_repeats is not None:
            suite.repeats = int(original_repeats)
        original_method = (meta.get("eviction") or {}).get("method")
        if eviction == "auto" and original_method in timing.EVICTION_METHODS:
            eviction = original_method
        done = results.finished_case_ids(run_path)
        meta.setdefault("resumed", []).append({"started": started, "command": command_line or sys.argv,
                                               "cases_done_before": len(done)})
    else:
        run_id = results.new_run_id()
        run_path = out_dir / f"{run_id}{results.RUN_SUFFIX}"
        done = set()
        meta = {}
    all_cases = suite.cases(data=data)

    ordered = order_cases(all_cases, suite.seed)
    index_of = {case.case_id: i for i, case in enumerate(ordered)}
    todo = [case for case in ordered if case.case_id not in done]

    scratch_root = Path(scratch) if scratch else out_dir
    scratch_dir = scratch_root / f".scratch-{run_id}"
    # folders this run creates; removed again if the run fails before writing anything
    new_dirs = sorted({*_missing_dirs(out_dir), *_missing_dirs(scratch_dir)} - {scratch_dir},
                      key=lambda d: len(d.parts), reverse=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        scratch_dir.mkdir(parents=True, exist_ok=True)
    except BaseException:
        _remove_empty_dirs(new_dirs)
        raise
    try:
        needs_cold = any("read_cold" in case.ops for case in todo)
        if needs_cold:
            method, note = timing.probe_eviction(scratch_dir, preferred=eviction)
        else:
            method, note = "none", "no cold reads in this suite"
        if resume and needs_cold and method != (meta.get("eviction") or {}).get("method", method):
            raise SuiteError(
                f"--resume: the latest run {run_path.name} used eviction "
                f"{meta['eviction']['method']!r}, which gives {method!r} here now; resume must "
                f"use the original settings (start a new run instead)")
        load = _load_at_start()
        from mrczbench.bench.machine import capture
        meta.update({
            "run_id": run_id, "suite": suite.name, "suite_file": str(suite.path),
            "profile": suite.profile, "description": suite.description, "figure": suite.figure,
            "seed": suite.seed, "case_order": [c.case_id for c in ordered],
            "cases": len(all_cases), "data_files": data_files,
            "eviction": {"method": method, "note": note,
                         "cold_residency_limit": timing.COLD_RESIDENCY_LIMIT,
                         "code_rewarmed": method == "drop_caches",
                         "how": {"drop_caches": "sync; echo 3 > /proc/sys/vm/drop_caches, then one "
                                                "read of a copy of the file re-warms the reader's code "
                                                "(not the file) before the timed cold read",
                                 "fadvise": "fsync + posix_fadvise(POSIX_FADV_DONTNEED) on the file",
                                 "none": "no eviction: cold reads are marked invalid"}[method]},
            "scratch_dir": str(scratch_dir.resolve()), "results_dir": str(out_dir.resolve()),
            "timing": {"clock": "time.perf_counter", "repeats": suite.repeats,
                       "min_batch_seconds": suite.min_batch_seconds, "timeout": suite.timeout},
            "suite_definition": suite.to_dict(),
            "eviction_requested": meta.get("eviction_requested", eviction),
            "load_at_start": load,
        })
        meta.setdefault("command", command_line or sys.argv)
        meta.setdefault("started", started)
        meta["machine"] = capture(out_dir)
        results.write_run_metadata(run_path, meta)

        if progress or summary:
            print(f"mrczbench run: suite {suite.name} ({suite.profile}), {len(todo)} of "
                  f"{len(all_cases)} cases to run, eviction {method} → {run_path}", file=sys.stderr)
            if method == "none" and needs_cold:
                print(f"mrczbench run: warning: {note}", file=sys.stderr)
        if load and load["busy"]:
            print(f"mrczbench run: warning: load average {load['load_average']:.2f} on "
                  f"{load['usable_cores']} cores: other work is running; timings will be noisy "
                  f"(marked unstable)", file=sys.stderr)
        settings = {"scratch": str(scratch_dir), "eviction": method,
                    "cache_dir": str(cache_dir) if cache_dir else None}
        base = {"run_id": run_id, "suite": suite.name, "eviction": method}
        with results.RunFile(run_path) as run_file:
            _execute(todo, index_of, settings, base, run_file, Progress(len(todo), enabled=progress))
        meta["finished"] = results.utc_now()
        results.write_run_metadata(run_path, meta)
    except BaseException:
        shutil.rmtree(scratch_dir, ignore_errors=True)
        _remove_empty_dirs(new_dirs)
        raise
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    if summary:
        print(summary_table(list(results.iter_rows(run_path))))
        print(f"results: {run_path}")
    return run_path


BUSY_LOAD_PER_CORE = 0.75  # load average above this x usable cores: the machine is busy
# (a 1-minute average still carries the previous run of a batch of suites: keep below 1 core)


def _load_at_start() -> dict[str, Any] | None:
    """1-minute load average against the cores this process may use, and whether other work
    is running (then timings will be noisy)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return {"load_average": round(load, 2), "usable_cores": cores,
            "busy_threshold": BUSY_LOAD_PER_CORE * cores,
            "busy": load > BUSY_LOAD_PER_CORE * cores}


def _check_resume_settings(run_path: Path, meta: dict[str, Any], repeats: int | None,
                           seed: int | None, eviction: str) -> None:
    """A resumed run must measure the remaining cases as the original run measured the others:
    refuse settings given now that differ from the original ones."""
    differing = []
    original_repeats = (meta.get("timing") or {}).get("repeats")
    if repeats is not None and original_repeats is not None and repeats != original_repeats:
        differing.append(f"--repeats {repeats} (the original run used {original_repeats})")
    if seed is not None and "seed" in meta and int(seed) != meta["seed"]:
        differing.append(f"--seed {seed} (the original run used {meta['seed']})")
    original_method = (meta.get("eviction") or {}).get("method")
    if eviction != "auto" and original_method and eviction != original_method:
        differing.append(f"--eviction {eviction} (the original run used {original_method})")
    if differing:
        raise SuiteError(f"--resume: {run_path.name} was run with other settings: "
                         f"{'; '.join(differing)}; resume must use the original settings "
                         f"(leave the option out, or start a new run without --resume)")


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


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SuiteError(f"{name}: expected an integer >= 1. Got {value!r}")
    return value


# === worker management (main process) ========================================================

class Worker:
    """A forked process that runs cases sent through a pipe; rows come back the same way."""

    def __init__(self, settings: dict[str, Any]):
        context = multiprocessing.get_context("fork")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_conn, settings), daemon=True)
        self.process.start()
        child_conn.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.kill()


def _death_reason(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"worker killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with status {code}"


def _execute(cases: list[Case], index_of: dict[str, int], settings: dict[str, Any],
             base: dict[str, Any], run_file: results.RunFile, progress: "Progress") -> None:
    worker: Worker | None = None
    try:
        for done_count, case in enumerate(cases):
            progress.update(done_count, case)
            if worker is None or not worker.process.is_alive():
                worker = Worker(settings)
            rows, failure = _run_in_worker(worker, case)
            if failure:
                worker.kill()
                worker = None
                _remove_case_files(Path(settings["scratch"]), case)
                rows.append(_error_row(case, failure, op=rows[-1].get("op") if rows else None))
            case_base = {**base, "case_id": case.case_id, "case_index": index_of[case.case_id]}
            run_file.append(results.make_row(**{**case_base, **row}) for row in rows)
        progress.update(len(cases), None)
    except BaseException:
        # Ctrl-C or a bug here: do not wait for the case in flight; its rows are not written
        if worker is not None:
            worker.kill()
            worker = None
        raise
    finally:
        progress.close()
        if worker is not None:
            worker.stop()


def _run_in_worker(worker: Worker, case: Case) -> tuple[list[dict[str, Any]], str | None]:
    """Send one case; collect its rows until 'done', a crash or the timeout."""
    worker.conn.send(case.to_dict())
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + case.timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return rows, f"timed out after {case.timeout:g} s (limit per case)"
        try:
            ready = worker.conn.poll(min(remaining, 0.5))
        except (EOFError, OSError):
            ready = True
        if not ready:
            if not worker.process.is_alive():
                return rows, _death_reason(worker.process)
            continue
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(1)
            return rows, _death_reason(worker.process)
        if kind == "row":
            rows.append(payload)
        elif kind == "done":
            return rows, None


def _remove_case_files(scratch: Path, case: Case) -> None:
    """Files a killed worker left behind (temp files of atomic writes included)."""
    for path in scratch.glob(f"*case{case_tag(case)}-*"):
        path.unlink(missing_ok=True)


def _error_row(case: Case, reason: str, op: str | None = None) -> dict[str, Any]:
    return {**_case_columns(case), "op": op, "error": reason, "valid": False}


def _case_columns(case: Case) -> dict[str, Any]:
    """Columns known from the case alone (before its dataset or format exists)."""
    params = dict(case.format)
    name = params.get("format") or ("metadata" if case.kind == "metadata" else None)
    dataset = case.dataset
    shape = dataset.get("shape") or [None, None]
    return {
        "dataset": dataset.get("name") or _synthetic_name(dataset),
        "dataset_kind": "user" if "path" in dataset else dataset.get("kind"),
        "dose": dataset.get("dose"), "frames": dataset.get("frames"),
        "ny": shape[0], "nx": shape[1], "dtype": dataset.get("dtype"),
        **_format_columns(name, params), "label": case.label or name,
    }


def _format_columns(name: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """The contender columns of a row from its format parameters."""
    return {"format": name, "codec": _codec_of(params), "level": params.get("level"),
            "blocksize": params.get("blocksize"), "threads": params.get("threads"),
            "filter": params.get("filter", params.get("shuffle")),
            "params": json.dumps(params, sort_keys=True, default=str)}


def _codec_of(params: dict[str, Any]) -> Any:
    for key in ("codec", "compression", "cname", "compressor"):
        if params.get(key) is not None:
            return params[key]
    return None


def _synthetic_name(dataset: dict[str, Any]) -> str:
    kind = dataset.get("kind", "synthetic")
    if kind == "metadata":
        return f"metadata-{dataset.get('megabytes', 25):g}MiB"
    parts = [kind]
    if dataset.get("dose") is not None:
        parts.append(f"d{dataset['dose']:g}")
    if dataset.get("frames") and dataset.get("shape"):
        parts.append(f"{dataset['frames']}x{dataset['shape'][0]}x{dataset['shape'][1]}")
    return "-".join(parts)


# === progress and summary ======================================================================

class Progress:
    """One updating line on a terminal; a line every ~10 s (and at the end) otherwise."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total = total
        self.enabled = enabled and total > 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.last_print = 0.0

    def update(self, done: int, case: Case | None) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        eta_text = "?" if math.isnan(eta) else _duration(eta)
        current = f"  {case.case_id}" if case else ""
        line = (f"[{done}/{self.total}] {100 * done / self.total:3.0f}%  "
                f"elapsed {_duration(elapsed)}  ETA {eta_text}{current}")
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
            self.stream.flush()
        elif done == self.total or time.monotonic() - self.last_print >= 10:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_print = time.monotonic()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else \
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Median per case: ratio (stored/raw), Shannon bound, efficiency, MiB/s per op.
    A '*' marks a series whose p10-p90 spread exceeds 10 % of its median (unstable)."""
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
    if not cases:
        return "(no results)"
    ops = [op for op in results.OPS if any(op in e["ops"] for e in cases.values())]
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
        ratio = statistics.median(entry["ratios"]) if entry["ratios"] else None
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
            median = statistics.median(values)
            mark = ""
            if len(values) >= 3:
                deciles = statistics.quantiles(values, n=10, method="inclusive")
                if median and (deciles[-1] - deciles[0]) / median > 0.10:
                    mark = "*"
                    unstable += 1
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
        text.append(f"* {unstable} series unstable: p10-p90 spread > 10 % of the median.")
    for note in notes:
        text.append("! " + note)
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


# === the worker process ========================================================================

def _worker_main(conn, settings: dict[str, Any]) -> None:
    # Ctrl-C reaches the whole process group; the main process decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    # A contender that crashes the worker is reported as an error row; a fault handler
    # inherited from the parent (pytest enables one) would only add a traceback dump.
    import faulthandler
    faulthandler.disable()
    loaded: dict[str, Any] = {}  # the last dataset, reused by the next case on the same data
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        case = Case(**message)
        case.ops = tuple(case.ops)

        def emit(row: dict[str, Any]) -> None:
            conn.send(("row", row))

        try:
            run_case(case, settings, emit, loaded)
        except Exception as exc:  # a bug or a contender failure outside any op: one error row
            emit(_error_row(case, f"{type(exc).__name__}: {exc}"))
        conn.send(("done", None))


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the main process dies (e.g. SIGKILL), so no
    orphan keeps writing into the scratch folder."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


@dataclasses.dataclass
class Subject:
    """What a case times, whatever the contender: stacks through a Format, or metadata."""

    label: str
    columns: dict[str, Any]                 # format columns for the rows
    has_memory_codec: bool
    suffix: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    write: Callable[[Path, Any], int | None]
    read: Callable[[Path], Any]


def run_case(case: Case, settings: dict[str, Any], emit: Callable[[dict], None],
             loaded: dict[str, Any]) -> None:
    """Time one case and emit its rows (worker process)."""
    columns = _case_columns(case)
    try:
        data, data_columns, same, raw_bytes, bound = _load_data(case, settings, loaded)
    except Exception as exc:
        emit({**columns, "error": f"dataset: {type(exc).__name__}: {exc}", "valid": False})
        return
    columns.update(data_columns)
    columns["raw_bytes"] = raw_bytes
    columns["bound_ratio"] = bound
    try:
        subject = (_metadata_subject(case) if case.kind == "metadata"
                   else _format_subject(case, data))
    except _Skip as skip:
        emit({**columns, **skip.columns, "error": skip.reason, "valid": False,
              "lossless": skip.lossless})
        return
    columns.update(subject.columns)
    columns["label"] = case.label or subject.label

    def row(op: str, sample: int, **values: Any) -> None:
        regime = "memory" if op in MEMORY_OPS else "file"
        emit({**columns, "op": op, "sample": sample, "regime": regime, **values})

    memory_ops = [op for op in case.ops if op in MEMORY_OPS]
    if memory_ops and subject.has_memory_codec:
        _time_memory(case, subject, data, same, memory_ops, row)
    file_ops = [op for op in case.ops if op in FILE_OPS]
    if file_ops:
        path = Path(settings["scratch"]) / f"case{case_tag(case)}-{os.getpid()}{subject.suffix}"
        try:
            _time_files(case, subject, data, same, file_ops, path, settings["eviction"], row)
        finally:
            path.unlink(missing_ok=True)


def case_tag(case: Case) -> str:
    # case ids are unique in a run; a short stable hash keeps scratch names short and safe
    import zlib
    return format(zlib.crc32(case.case_id.encode()), "08x")


class _Skip(Exception):
    def __init__(self, reason: str, lossless: bool | None = None, columns: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.lossless = lossless
        self.columns = columns or {}


def _time_memory(case: Case, subject: Subject, data: Any, same, ops: list[str], row) -> None:
    try:
        blob = subject.encode(data)
        if not same(subject.decode(blob), data):
            for op in ops:
                row(op, 0, error="round trip not bit-exact", lossless=False, stored_bytes=len(blob))
            return
    except Exception as exc:
        for op in ops:
            row(op, 0, error=f"{type(exc).__name__}: {exc}")
        return
    for op in ops:
        func = (lambda: subject.encode(data)) if op == "encode" else (lambda: subject.decode(blob))
        try:
            loops = timing.calibrate_loops(func, case.min_batch_seconds)
            for sample in range(case.repeats):
                seconds, last = timing.time_batch(func, loops)
                # verify the batch's last result off the clock
                if op == "encode":
                    ok = same(subject.decode(last), data)
                    stored = len(last)
                else:
                    ok = same(last, data)
                    stored = len(blob)
                if ok:
                    row(op, sample, seconds=seconds / loops, loops=loops, stored_bytes=stored, lossless=True)
                else:
                    row(op, sample, loops=loops, stored_bytes=stored, lossless=False,
                        error="round trip not bit-exact")
        except Exception as exc:
            row(op, 0, error=f"{type(exc).__name__}: {exc}")


def _time_files(case: Case, subject: Subject, data: Any, same, ops: list[str], path: Path,
                eviction: str, row) -> None:
    """Per sample: write (into the page cache) → read_warm → write_fsync → read_cold.
    Each write is verified by the read that follows it (timed if that op is asked for)."""
    folder = path.parent
    failed: set[str] = set()

    def fresh_file() -> None:
        # off the clock: remove the last file and flush earlier writes so their writeback
        # does not land inside the next timed write
        path.unlink(missing_ok=True)
        os.sync()

    def timed_write(durable: bool) -> tuple[float, int]:
        fresh_file()
        start = timing.clock()
        stored = subject.write(path, data)
        if durable:
            timing.fsync_path(path)
            timing.fsync_dir(folder)  # the format renames a temp file: make the rename durable
        seconds = timing.clock() - start
        return seconds, stored if stored else path.stat().st_size

    def evict_file_only(target: Path) -> None:
        """Evict `target` but not the reader's code. drop_caches also drops the pages of the
        libraries (and Python modules) the reader runs, which would bill page faults of code
        to the file; so read a copy of the file once after dropping (warms the code path,
        not the target's pages). fadvise evicts only the file and needs no decoy."""
        if eviction != "drop_caches":
            timing.evict(target, eviction)
            return
        decoy = target.with_name("decoy-" + target.name)
        shutil.copyfile(target, decoy)
        try:
            timing.evict(target, eviction)
            subject.read(decoy)
        finally:
            decoy.unlink(missing_ok=True)

    def timed_read() -> tuple[float, Any]:
        start = timing.clock()
        back = subject.read(path)
        return timing.clock() - start, back

    for sample in range(case.repeats):
        stored = None
        # --- page-cache write, then warm read of the same file -----------------------------
        if "write" in ops or "read_warm" in ops:
            try:
                if "write" in ops and "write" not in failed:
                    seconds, stored = timed_write(durable=False)
                    if "read_warm" not in ops:
                        ok = same(subject.read(path), data)
                        row("write", sample, **_timed(seconds, stored, ok))
                    else:
                        write_seconds = seconds
                else:
                    if not path.exists():
                        subject.write(path, data)
                    stored = path.stat().st_size
                if "read_warm" in ops:
                    if timing.residency(path) < 0.99:
                        subject.read(path)  # warm it (off the clock)
                    seconds, back = timed_read()
                    ok = same(back, data)
                    if "write" in ops and "write" not in failed:
                        row("write", sample, **_timed(write_seconds, stored, ok))
                    row("read_warm", sample, **_timed(seconds, stored, ok))
            except Exception as exc:
                for op in ("write", "read_warm"):
                    if op in ops and op not in failed:
                        row(op, sample, error=f"{type(exc).__name__}: {exc}")
                        failed.add(op)
        # --- durable write, then cold read of the same file ----------------------------------
        if "write_fsync" in ops or "read_cold" in ops:
            try:
                if "write_fsync" in ops and "write_fsync" not in failed:
                    fsync_seconds, stored = timed_write(durable=True)
                else:
                    if not path.exists():
                        subject.write(path, data)
                    stored = path.stat().st_size
                    fsync_seconds = None
                if "read_cold" in ops:
                    evict_file_only(path)
                    resident = timing.residency(path)
                    seconds, back = timed_read()
                    ok = same(back, data)
                    valid = resident <= timing.COLD_RESIDENCY_LIMIT
                else:
                    ok = same(subject.read(path), data)
                if fsync_seconds is not None:
                    row("write_fsync", sample, **_timed(fsync_seconds, stored, ok))
                if "read_cold" in ops:
                    values = _timed(seconds, stored, ok)
                    values["residency"] = resident
                    if not values.get("error"):
                        values["valid"] = valid
                    row("read_cold", sample, **values)
            except Exception as exc:
                for op in ("write_fsync", "read_cold"):
                    if op in ops and op not in failed:
                        row(op, sample, error=f"{type(exc).__name__}: {exc}")
                        failed.add(op)
        if failed >= set(ops):
            return


def _timed(seconds: float, stored: int, ok: bool) -> dict[str, Any]:
    if ok:
        return {"seconds": seconds, "loops": 1, "stored_bytes": stored, "lossless": True}
    return {"loops": 1, "stored_bytes": stored, "lossless": False, "error": "round trip not bit-exact"}


# --- stacks through a Format ----------------------------------------------------------------

def _format_subject(case: Case, stack) -> Subject:
    from mrczbench.errors import MrczbenchError
    from mrczbench.formats import format_class

    params = dict(case.format)
    name = params.pop("format")
    try:
        cls = format_class(name)
    except MrczbenchError as exc:
        raise _Skip(f"format: {exc}") from None
    reason = cls.unavailable_reason()
    if reason:
        raise _Skip(f"unavailable: {reason}")
    try:
        fmt = cls(**params)
    except (MrczbenchError, TypeError) as exc:
        raise _Skip(f"format parameters: {exc}") from None
    columns = _format_columns(name, fmt.to_dict())
    lossy = fmt.check_data(stack)
    if lossy:
        raise _Skip(f"lossy: {lossy}", lossless=False, columns=columns)
    shape, dtype = stack.shape, stack.dtype
    return Subject(label=fmt.label(), columns=columns, has_memory_codec=fmt.has_memory_codec,
                   suffix=fmt.suffix, encode=fmt.encode,
                   decode=lambda blob: fmt.decode(blob, shape, dtype),
                   write=fmt.write, read=fmt.read)


def _same_stack(a, b) -> bool:
    """Bit-exact: same shape and the same bytes. A reader may label the bytes differently
    (uint8 for int8 counts 0-15) without changing a bit, so signedness is not compared."""
    import numpy as np
    if not isinstance(a, np.ndarray) or a.shape != b.shape or a.dtype.itemsize != b.dtype.itemsize:
        return False
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


# --- datasets ---------------------------------------------------------------------------------

def _load_data(case: Case, settings: dict[str, Any], loaded: dict[str, Any]):
    """(data, dataset columns, equality check, raw bytes, bound ratio); the last dataset is
    kept in `loaded` so consecutive cases on the same data do not pay for loading again."""
    key = json.dumps(case.dataset, sort_keys=True)
    if loaded.get("key") == key:
        return loaded["value"]
    loaded.clear()  # free the previous stack before building the next one
    if case.kind == "metadata":
        document = make_metadata(case.dataset.get("megabytes", 25), case.dataset.get("seed", 0))
        # raw size = plain compact JSON (the json serializer's own output): json's ratio is 1
        raw = len(_SERIALIZERS["json"][0](document))
        columns = {"dataset": _synthetic_name({**case.dataset, "kind": "metadata"}),
                   "dataset_kind": "metadata", "dtype": "json"}
        value = (document, columns, lambda a, b: a == b, raw, None)
    else:
        from mrczbench.movies.entropy import bound_ratio
        stack, columns = _load_stack(case.dataset, settings.get("cache_dir"))
        frames, ny, nx = stack.shape
        columns.update({"frames": frames, "ny": ny, "nx": nx, "dtype": stack.dtype.name})
        value = (stack, columns, _same_stack, stack.nbytes, bound_ratio(stack))
    loaded["key"], loaded["value"] = key, value
    return value


def _load_stack(dataset: dict[str, Any], cache_dir: str | None):
    import numpy as np

    if "path" in dataset:
        from mrczbench.movies.datasets import open_movies
        movie = open_movies([dataset["path"]])[0]
        stack = np.asarray(movie.read())
        if stack.ndim == 2:
            stack = stack[None]
        return stack, {"dataset": dataset["name"], "dataset_kind": "user", "dose": None}
    from mrczbench.movies.datasets import load_stack
    spec = _dataset_spec(dataset)
    # progress=False: the worker's stderr would break the main process's progress line
    stack = load_stack(spec, cache_dir, progress=False)
    name = dataset.get("name") or _synthetic_name(dataset)
    return stack, {"dataset": name, "dataset_kind": getattr(spec, "kind", dataset.get("kind")),
                   "dose": getattr(spec, "dose", dataset.get("dose"))}


def _dataset_spec(dataset: dict[str, Any]):
    """A DatasetSpec for a suite's dataset table: a named spec from datasets/*.toml with the
    suite's fields replacing its own, or a spec built from the fields alone."""
    from mrczbench.movies import datasets

    fields = {k: v for k, v in dataset.items() if k != "name"}
    if "shape" in fields:
        fields["shape"] = tuple(fields["shape"])
    if "name" in dataset:
        spec = datasets.load_spec(dataset["name"])
        return dataclasses.replace(spec, **fields) if fields else spec
    return datasets.DatasetSpec(name=_synthetic_name(dataset), **fields)


# --- metadata (paper Fig. 3) --------------------------------------------------------------------

def make_metadata(megabytes: float, seed: int = 0) -> list[dict[str, Any]]:
    """Seeded JSON-like acquisition metadata of about `megabytes` MiB as compact JSON: per-frame
    records with nested tables, floats, strings and lists (what movie headers carry)."""
    rng = random.Random(seed)
    words = ["counting", "super-resolution", "gain", "defect", "apoferritin", "holey", "carbon",
             "tilt", "drift", "stage", "beam", "shift", "astigmatism", "ice", "thin", "grid"]
    target = int(megabytes * 2**20)
    records: list[dict[str, Any]] = []
    size = 2
    frame = 0
    while size < target:
        record = {
            "frame": frame,
            "timestamp": f"2017-03-{1 + frame % 28:02d}T{frame % 24:02d}:{frame % 60:02d}:{(frame * 7) % 60:02d}.{rng.randrange(10**6):06d}Z",
            "dose_e_per_A2": round(rng.uniform(0.5, 2.0), 6),
            "stage": {"x": rng.uniform(-1e-3, 1e-3), "y": rng.uniform(-1e-3, 1e-3),
                      "z": rng.uniform(-1e-5, 1e-5), "alpha": round(rng.uniform(-60, 60), 3)},
            "optics": {"voltage_kV": 300, "cs_mm": 2.7, "defocus_um": round(rng.uniform(-3.0, -0.5), 4),
                       "astigmatism": [rng.gauss(0, 50), rng.gauss(0, 50)], "spot_size": rng.randrange(1, 11)},
            "drift_px": [[round(rng.gauss(0, 1), 4), round(rng.gauss(0, 1), 4)] for _ in range(8)],
            "detector": {"model": rng.choice(["K2", "K3", "Falcon4"]), "mode": rng.choice(words[:2]),
                         "exposure_s": round(rng.uniform(0.02, 0.2), 5), "hot_pixels": rng.sample(range(4096), 6)},
            "notes": " ".join(rng.choice(words) for _ in range(rng.randrange(4, 16))),
            "ok": rng.random() > 0.01,
            "tags": [rng.choice(words) for _ in range(3)],
            "previous": None,
        }
        records.append(record)
        size += len(json.dumps(record, separators=(",", ":"))) + 1
        frame += 1
    return records


_SERIALIZERS = {
    "json": (lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
             lambda blob: json.loads(blob)),
}


def _serializer(name: str):
    if name == "json":
        return _SERIALIZERS["json"]
    if name == "orjson":
        import orjson
        return orjson.dumps, orjson.loads
    if name == "msgpack":
        import msgpack
        # unicode strings in and out (use_bin_type/raw=False), as the paper tested it
        return (lambda obj: msgpack.packb(obj, use_bin_type=True),
                lambda blob: msgpack.unpackb(blob, raw=False))
    raise _Skip(f"unknown serializer {name!r}")


def _metadata_subject(case: Case) -> Subject:
    from mrczbench.atomic import atomic_output

    params = dict(case.format)
    serializer = params.get("serializer", "json")
    compressor = params.get("compressor", "none")
    level = int(params.get("level", 1))
    threads = int(params.get("threads", 1))
    try:
        dumps, loads = _serializer(serializer)
    except ImportError as exc:
        raise _Skip(f"unavailable: {exc}") from None
    columns = {"format": "metadata", "codec": compressor if compressor != "none" else None,
               "level": level if compressor != "none" else None, "threads": threads,
               "params": json.dumps({"serializer": serializer, "compressor": compressor,
                                     "level": level, "threads": threads}, sort_keys=True)}
    if compressor == "none":
        encode, decode = dumps, loads
    else:
        import blosc
        if compressor not in blosc.compressor_list():
            raise _Skip(f"unavailable: blosc has no {compressor} (has {', '.join(blosc.compressor_list())})")
        blosc.set_nthreads(threads)

        def encode(obj):
            raw = dumps(obj)
            # text has no multi-byte structure to shuffle: typesize 1, no shuffle
            return blosc.compress(raw, typesize=1, clevel=level, shuffle=blosc.NOSHUFFLE, cname=compressor)

        def decode(blob):
            return loads(blosc.decompress(blob))

    def write(path: Path, obj) -> int:
        blob = encode(obj)
        with atomic_output(path) as handle:
            handle.write(blob)
        return len(blob)

    def read(path: Path):
        return decode(Path(path).read_bytes())

    label = serializer + ("" if compressor == "none" else f"+{compressor}")
    return Subject(label=label, columns=columns, has_memory_codec=True,
                   suffix=f".{serializer}" + ("" if compressor == "none" else f".{compressor}"),
                   encode=encode, decode=decode, write=write, read=read)


# === CLI ========================================================================================

def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a benchmark suite",
        description="Run a benchmark suite and append one result row per sample to "
                    "results/<suite>/<run-id>.jsonl (metadata in <run-id>.run.json).",
        epilog="Example: mrczbench run --suite dose-sweep --quick")
    parser.add_argument("--suite", required=True, help="suite name (see `mrczbench suites list`) or a .toml file")
    parser.add_argument("--quick", action="store_true", help="the suite's quick profile: small frames, few repeats")
    parser.add_argument("--data", nargs="+", metavar="FILE",
                        help="your movies (or .lst/.star lists of them) in place of the suite's synthetic datasets")
    parser.add_argument("--out", metavar="DIR", help="folder for the run files (default: results/<suite>)")
    parser.add_argument("--scratch", metavar="DIR",
                        help="folder for the files written while timing (default: inside --out, the same "
                             "filesystem); removed at the end")
    parser.add_argument("--resume", action="store_true",
                        help="continue the latest run of this suite in the output folder, skipping finished cases")
    parser.add_argument("--repeats", type=int, metavar="N", help="samples per operation (overrides the suite)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="limit per case (overrides the suite)")
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
        suite = load_suite(args.suite, quick=args.quick)
        if args.seed is not None:
            suite.seed = args.seed
        for case in order_cases(suite.cases(data=args.data), suite.seed):
            print(case.case_id)
        return 0
    path = run_suite(args.suite, quick=args.quick, data=args.data, out=args.out, scratch=args.scratch,
                     resume=args.resume, repeats=args.repeats, timeout=args.timeout, seed=args.seed,
                     cache_dir=args.cache_dir, eviction=args.eviction, progress=not args.no_progress,
                     command_line=["mrczbench"] + sys.argv[1:])
    rows = list(results.iter_rows(path))
    return 1 if rows and all(row.get("error") for row in rows) else 0
