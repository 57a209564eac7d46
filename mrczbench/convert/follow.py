"""`mrczbench convert --follow FOLDER... --out DIR`: convert movies while the detector software
writes them, each exactly once, as soon as it is complete; runs until SIGTERM/Ctrl-C (or
--exit-when-idle).

Flow: watch (watchfiles events, or polling scans: the default on network filesystems, where
inotify does not see other hosts' writes) -> candidates (movie files in the folders; never
under --out, never hidden or temporary names such as `.m.mrc.part` or `m.mrc.tmp`) ->
completeness (plain MRC: as many bytes as its header promises; TIFF, EER, MRCZ, .npy: read
to the end of the page chain / data after the size stopped changing for --settle seconds;
still incomplete --incomplete-timeout seconds after its last change: recorded `incomplete`,
not converted) -> workers (`job.convert_one`, or `adopt.adopt` for an output already there
without a manifest row; in `workers.Pool` or on Dask) -> the manifest, which is the state: a
restart converts exactly the movies not recorded as done -> with --delete-source, the output
and the input are re-read and checked against the recorded checksum before the input is
removed (recorded as `source_deleted`) -> `Monitor`: status line, --status JSON, backlog
warning.

Signals: the first SIGTERM/SIGINT stops taking movies and finishes those in flight (each is
recorded); a second abandons them (each worker removes its temporary file; nothing is
recorded, so a restart converts them)."""
from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import sys
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePath

from mrczbench.argtypes import positive_number
from mrczbench.convert import inputs, manifest
from mrczbench.convert.adopt import adopt, input_digests
from mrczbench.convert.job import (Settings, checksum_of, convert_one, frame_digests,
                                   write_gain_reference)
from mrczbench.errors import MrczbenchError
from mrczbench.units import MiB, format_duration

TICK = 0.2                # seconds between looks at files in progress and finished work
EVENT_RESCAN = 30.0       # a full scan this often even with events (missed or overflowed events)
WARNING_WINDOW = 60.0     # backlog compared with this long ago; one warning per window
RECENT = 50               # movies the latencies and rates are taken over
RETRIES = 2               # a movie whose worker died is tried this often
MRC_QUIET = 1.0           # a plain MRC holding its promised bytes must also be unchanged this
                          # long (at most --settle): a writer may preallocate, then fill in


def add_arguments(p) -> None:
    g = p.add_argument_group("following a folder the detector writes into (--follow)")
    g.add_argument("--follow", action="store_true", help="watch the MOVIES folders and convert "
                   "each new movie once it is complete; runs until SIGTERM/Ctrl-C (the first "
                   "finishes the movies in flight, a second abandons them)")
    g.add_argument("--settle", type=positive_number, default=5.0, metavar="SECONDS",
                   help="a TIFF/EER/MRCZ movie must be unchanged this long before it is read "
                   "(default 5; plain MRC is complete when it holds what its header promises "
                   f"and has not changed for {MRC_QUIET:g} s)")
    g.add_argument("--incomplete-timeout", type=positive_number, default=600.0, metavar="SECONDS",
                   help="a movie still incomplete this long after its last change is recorded "
                   "as incomplete, not converted (default 600; converted if it changes later)")
    g.add_argument("--poll", action="store_true", help="scan the folders instead of "
                   "filesystem events (the default on NFS/CIFS/GPFS and other network filesystems)")
    g.add_argument("--poll-interval", type=positive_number, default=2.0, metavar="SECONDS",
                   help="seconds between scans when polling (default 2)")
    g.add_argument("--status", metavar="FILE", help="rewrite FILE (atomically, each second) with "
                   "the state as JSON: movies done, backlog, latency, MiB/s, keep-up margin")
    g.add_argument("--delete-source", action="store_true", help="remove each original after its "
                   "output and the original were re-read and match the recorded checksum; "
                   "recorded in the manifest (default: sources are kept)")
    g.add_argument("--exit-when-idle", type=positive_number, metavar="SECONDS",
                   help="stop after SECONDS with nothing arriving or in progress")
    p.add_argument("--config", metavar="FILE", help="take format, codec, level, blocksize, filter, "
                   "compression and threads from `mrczbench recommend --json` output (its "
                   "recommended entry); they replace those options")


# ---- --config ----------------------------------------------------------------------------

def apply_config(args) -> str:
    """Set args from a `recommend --json` document; returns what was taken, for the log."""
    path = Path(args.config)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MrczbenchError(f"--config {path}: cannot read it as JSON ({exc})") from None
    entry = document.get("recommended", document) if isinstance(document, dict) else None
    if not isinstance(entry, dict) or "format" not in entry:
        raise MrczbenchError(f"--config {path}: expected `mrczbench recommend --json` output "
                             "(a 'recommended' entry with a 'format')")
    config = {**(entry.get("config") or {}), **{k: v for k, v in entry.items() if v is not None}}
    if config["format"] not in inputs.OUTPUT_SUFFIX:
        raise MrczbenchError(f"--config {path}: recommended format {config['format']!r} is not "
                             f"written by convert (valid: {', '.join(inputs.OUTPUT_SUFFIX)}); "
                             "ask recommend for those, e.g. --readers relion")
    args.format = config["format"]
    for key in ("codec", "level", "blocksize", "filter", "compression", "threads"):
        if config.get(key) is not None and hasattr(args, key):
            setattr(args, key, config[key])
    return ", ".join(f"{k} {getattr(args, k)}" for k in ("format", "codec", "level", "filter",
                                                          "compression", "threads")
                     if config.get(k) is not None)


# ---- what a candidate is, and when it is complete ----------------------------------------

def is_candidate_name(name: str) -> bool:
    """A movie name, not a hidden or temporary one (`.m.mrc.part`, `m.mrc.tmp`, `m.tif~`)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in inputs.MOVIE_SUFFIXES


def completeness(path: Path, eer_grouping: int) -> tuple[str | None, bool]:
    """(None when the file holds the whole movie, else why not; whether it must also have
    settled). A plain MRC file is complete when it holds what its header promises (the header
    read fails on fewer bytes). Others are complete when readable to the end (TIFF/EER: the
    page chain, every page's data inside the file, EER at the run's grouping), which a file
    growing page by page also is between pages: hence the settle time."""
    from mrczbench import mrcz
    from mrczbench.movies.readers import open_movie
    settle = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if path.suffix.lower() in (".mrc", ".mrcs", ".mrcz"):
                settle = mrcz.read_header(path).codec is not None
            open_movie(path, eer_grouping=eer_grouping)
        except (MrczbenchError, OSError, ValueError, MemoryError) as exc:
            return " ".join(str(exc).split())[:300] or type(exc).__name__, settle
    return None, settle


@dataclass
class Candidate:
    """A movie file seen in a folder, not yet handed to a worker."""
    path: Path
    folder: Path
    signature: tuple          # (size, mtime_ns, inode): a change resets the settle clock
    changed: float            # monotonic time of the last change seen
    checked: tuple | None = None   # the signature completeness() last judged
    reason: str | None = "not checked yet"
    settle: bool = True
    reported: bool = False    # recorded as incomplete


def signature(path: Path) -> tuple | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    import stat
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


# ---- watching ----------------------------------------------------------------------------

class EventWatcher:
    """Paths changed under the folders, from filesystem events (watchfiles, in a thread)."""

    def __init__(self, folders: list[Path]):
        import watchfiles  # ImportError: the caller polls instead
        self.changed: queue.SimpleQueue = queue.SimpleQueue()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._watch = watchfiles.watch
        self.folders = folders
        self.thread = threading.Thread(target=self._run, name="follow-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for changes in self._watch(*self.folders, watch_filter=None, debounce=200, step=20,
                                       stop_event=self.stop_event, rust_timeout=500,
                                       yield_on_timeout=True, raise_interrupt=False,
                                       ignore_permission_denied=True):
                for _, path in changes:
                    self.changed.put(path)
        except BaseException as exc:  # inotify watch limit, a folder removed: poll instead
            self.error = exc

    def drain(self, timeout: float) -> set[str]:
        paths = set()
        try:
            paths.add(self.changed.get(timeout=timeout))
            while True:
                paths.add(self.changed.get_nowait())
        except queue.Empty:
            pass
        return paths

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(2)


def network_folders(folders: list[Path]) -> list[str]:
    from mrczbench.system import filesystem_of
    found = []
    for folder in folders:
        fs = filesystem_of(folder)
        if fs.get("network"):
            found.append(f"{folder} ({fs.get('fstype')})")
    return found


# ---- keeping up --------------------------------------------------------------------------

def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Monitor:
    """Counts, latencies and rates of a follow session; the status line and JSON; the backlog
    warning. Times are passed in, so the rules are tested without clocks."""

    def __init__(self, jobs: int, started: float):
        self.jobs = jobs
        self.started = started
        self.counts = {"done": 0, "adopted": 0, "failed": 0, "incomplete": 0, "sources_deleted": 0}
        self.arrivals: deque[float] = deque(maxlen=RECENT)          # when movies became complete
        self.finished: deque[tuple[float, float, float]] = deque(maxlen=RECENT)  # latency, s, bytes
        self.backlogs: deque[tuple[float, int]] = deque()
        self.last_warning = -float("inf")
        self.raw_bytes = 0

    def arrived(self, now: float) -> None:
        self.arrivals.append(now)

    def converted(self, record: dict, latency: float | None) -> None:
        status = record.get("status")
        if status == "done":
            self.counts["adopted" if record.get("adopted") else "done"] += 1
            self.raw_bytes += record.get("raw_bytes") or 0
            if not record.get("adopted") and latency is not None:
                self.finished.append((latency, record.get("seconds") or 0.0, record.get("raw_bytes") or 0))
        else:
            self.counts["incomplete" if status == "incomplete" else "failed"] += 1

    def rates(self) -> dict:
        latencies = [f[0] for f in self.finished]
        seconds = [f[1] for f in self.finished if f[1] > 0]
        arrival = None
        if len(self.arrivals) >= 3 and self.arrivals[-1] > self.arrivals[0]:
            arrival = (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0]) * 60
        capacity = self.jobs * 60 / statistics.median(seconds) if seconds else None
        speeds = [f[2] / MiB / f[1] for f in self.finished if f[1] > 0]
        return {"latency_s": {"last": latencies[-1] if latencies else None,
                              "median": statistics.median(latencies) if latencies else None,
                              "p90": _percentile(latencies, 0.9)},
                "mib_per_s": statistics.median(speeds) * self.jobs if speeds else None,
                "arrivals_per_min": arrival, "capacity_per_min": capacity,
                "keep_up_margin": capacity / arrival if capacity and arrival else None}

    def backlog_warning(self, now: float, backlog: int) -> str | None:
        """A warning when the backlog is above the number of jobs and larger than it was
        WARNING_WINDOW seconds ago; at most one per window."""
        self.backlogs.append((now, backlog))
        while len(self.backlogs) > 1 and self.backlogs[1][0] <= now - WARNING_WINDOW:
            self.backlogs.popleft()
        then, before = self.backlogs[0]
        if now - then < WARNING_WINDOW or backlog <= max(self.jobs, before):
            return None
        if now - self.last_warning < WARNING_WINDOW:
            return None
        self.last_warning = now
        rates = self.rates()
        detail = "".join(f", {name} {rates[key]:.1f}/min" for name, key in
                         (("arrivals", "arrivals_per_min"), ("capacity", "capacity_per_min"))
                         if rates[key] is not None)
        return (f"warning: the backlog grows: {backlog} movies waiting (was {before} "
                f"{WARNING_WINDOW:.0f} s ago){detail}; not keeping up: add --jobs, or a "
                f"faster codec/level")

    def status(self, now_wall: float, state: str, backlog: int, converting: int, growing: int,
               **extra) -> dict:
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_wall)), "state": state,
                **self.counts, "backlog": backlog, "converting": converting,
                "waiting_for_complete": growing, "raw_mib_done": self.raw_bytes / MiB,
                **self.rates(), **extra}

    @staticmethod
    def line(status: dict) -> str:
        def number(value, unit="", digits=1):
            return "?" if value is None else f"{value:.{digits}f}{unit}"
        latency = status["latency_s"]
        margin = status["keep_up_margin"]
        return (f"follow: {status['done'] + status['adopted']} done, {status['failed']} failed, "
                f"{status['incomplete']} incomplete; backlog {status['backlog']} "
                f"({status['converting']} converting, {status['waiting_for_complete']} being "
                f"written); latency {number(latency['median'], ' s')} (p90 "
                f"{number(latency['p90'], ' s')}); {number(status['mib_per_s'], ' MiB/s', 0)}; "
                f"arrivals {number(status['arrivals_per_min'], '/min')}, capacity "
                f"{number(status['capacity_per_min'], '/min')}"
                + (f" (keeps up x{margin:.1f})" if margin and margin >= 1 else
                   f" (NOT keeping up: x{margin:.2f})" if margin else ""))


# ---- the work, in worker processes --------------------------------------------------------

def source_problem(record: dict, out: str, eer_grouping: int) -> str | None:
    """None when the output (re-read from disk) and the input (re-read, EER at the run's
    grouping) both give the recorded checksum: only then may the input be deleted. Runs in a
    worker."""
    try:
        target = Path(out) / record["output"]
        reference = Path(out) / record["gain_reference"] if record.get("gain_reference") else None
        if checksum_of(frame_digests(target, record.get("format", "mrcz"), reference)) != record["checksum"]:
            return f"{target} does not verify against the manifest"
        if os.path.getsize(record["input"]) != record.get("input_bytes"):
            return f"{record['input']} changed size since it was converted"
        if checksum_of(input_digests(record["input"], eer_grouping)[1]) != record["checksum"]:
            return f"{record['input']} changed since it was converted"
    except (MrczbenchError, OSError, ValueError) as exc:
        return " ".join(str(exc).split())[:300]
    return None


class DaskJobs:
    """The pool interface over a Dask client (--scheduler)."""

    def __init__(self, address: str):
        from mrczbench.convert.workers import dask_client
        self.client = dask_client(address)
        self.futures: list = []

    def nthreads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn, *args):
        future = self.client.submit(fn, *args, pure=False)
        self.futures = [f for f in self.futures if not f.done()] + [future]
        return future

    def abandon(self) -> None:
        self.client.cancel(self.futures)
        self.client.close()

    def shutdown(self) -> None:
        self.client.close()


# ---- the session -------------------------------------------------------------------------

class Follower:
    def __init__(self, args, folders: list[Path], out: Path, settings: Settings, jobs: int):
        self.args, self.folders, self.out, self.settings, self.jobs = args, folders, out, settings, jobs
        self.suffix = inputs.OUTPUT_SUFFIX[settings.format]
        self.candidates: dict[str, Candidate] = {}
        self.queue: deque = deque()                 # (task, signature, adopt)
        self.in_flight: dict = {}                   # future -> (kind, task or record, signature)
        self.records: dict[str, dict] = {}         # output -> newest record
        self.settled: dict[str, tuple | None] = {}  # input -> signature when recorded (not done)
        self.done_inputs: set[str] = set()
        self.by_output: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.warned: set[str] = set()
        self.stops = 0
        self.broken = False
        self.next_index = 0
        self.last_activity = time.monotonic()
        self.monitor = Monitor(jobs, time.monotonic())

    # -- state from the manifest --
    def load(self) -> None:
        try:
            found = manifest.records(self.out)
        except MrczbenchError as exc:
            if "no conversion manifest" not in str(exc):
                raise
            found = []
        for record in found:
            self.records[record["output"]] = record
            self.by_output[record["output"]] = record["input"]
            target = self.out / record["output"]
            if record.get("status") == "done" and (record.get("source_deleted") or (
                    target.is_file() and target.stat().st_size == record.get("output_bytes"))):
                self.done_inputs.add(record["input"])

    # -- files --
    def look(self, path: Path, folder: Path, now: float) -> None:
        key = str(path)
        if key in self.done_inputs or any(task.input == key for task, *_ in self.queue) or \
                any(kind == "convert" and task.input == key for kind, task, _ in self.in_flight.values()):
            return
        sig = signature(path)
        if sig is None:
            self.candidates.pop(key, None)
            return
        if key in self.settled:
            if self.settled[key] == sig:
                return  # recorded as failed or incomplete, and unchanged since
            del self.settled[key]
        candidate = self.candidates.get(key)
        if candidate is None:
            self.candidates[key] = Candidate(path, folder, sig, now)
            self.last_activity = now
        elif candidate.signature != sig:
            candidate.signature, candidate.changed, candidate.reported = sig, now, False
            self.last_activity = now

    def folder_of(self, path: Path) -> Path | None:
        for folder in self.folders:
            if path.is_relative_to(folder):
                return folder
        return None

    def accept(self, raw: str, now: float) -> None:
        path = Path(raw)
        if not is_candidate_name(path.name) or path.is_relative_to(self.out):
            return
        folder = self.folder_of(path)
        if folder is not None and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            self.look(path, folder, now)

    def scan(self, now: float) -> None:
        for folder in self.folders:
            for root, dirs, files in os.walk(folder):
                here = Path(root)
                dirs[:] = [d for d in dirs if not d.startswith(".") and not (here / d).is_relative_to(self.out)]
                for name in files:
                    if is_candidate_name(name):
                        self.look(here / name, folder, now)
        for key in [k for k, c in self.candidates.items() if signature(c.path) is None]:
            del self.candidates[key]  # renamed away or deleted between scans

    # -- completeness --
    def check(self, now: float, append) -> None:
        for key, c in list(self.candidates.items()):
            sig = signature(c.path)
            if sig is None:
                del self.candidates[key]
                continue
            if sig != c.signature:
                c.signature, c.changed, c.reported = sig, now, False
                self.last_activity = now
                continue
            quiet = now - c.changed
            mrc = c.path.suffix.lower() in (".mrc", ".mrcs")
            if c.checked != sig and (mrc or quiet >= self.args.settle):
                c.reason, c.settle = completeness(c.path, self.settings.eer_grouping)
                c.checked = sig
            wait = self.args.settle if c.settle else min(MRC_QUIET, self.args.settle)
            if c.checked == sig and c.reason is None and quiet >= wait:
                del self.candidates[key]
                self.enqueue(c, now)
            elif quiet >= self.args.incomplete_timeout and not c.reported:
                c.reported = True
                self.record_incomplete(c, quiet, append)

    def task_for(self, c: Candidate):
        rel = inputs._clean_relative(PurePath(c.folder.name, *c.path.relative_to(c.folder).parts), str(c.path))
        relative = str(rel.with_suffix(self.suffix))
        task = inputs.Task(self.next_index, str(c.path), relative, None)
        self.next_index += 1
        return task

    def enqueue(self, c: Candidate, now: float) -> None:
        task = self.task_for(c)
        owner = self.by_output.setdefault(task.relative, task.input)
        if owner != task.input:
            if task.input not in self.warned:
                self.warned.add(task.input)
                print(f"mrczbench convert: warning: {task.input} and {owner} would both become "
                      f"{task.relative}: {task.input} is not converted", file=sys.stderr)
            self.settled[task.input] = c.signature
            return
        target = self.out / task.relative
        # an output there with no `done` record was not recorded as ours: adopt it or refuse it
        orphan = target.exists() and self.records.get(task.relative, {}).get("status") != "done"
        self.queue.append((task, c.signature, orphan))
        self.monitor.arrived(time.time())

    def record_incomplete(self, c: Candidate, quiet: float, append) -> None:
        task = self.task_for(c)
        record = {"input": task.input, "output": task.relative, "status": "incomplete",
                  "error": f"incomplete for {format_duration(quiet)} after its last change: "
                           f"{(c.reason or '').replace(f'{c.path}: ', '')}; not converted "
                           f"(it will be if it changes)",
                  "input_bytes": c.signature[0], "format": self.settings.format,
                  "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.records.get(task.relative, {}).get("status") == "done":
            return  # never hide a done output behind a newer record
        self.write(record, append)
        self.monitor.converted(record, None)
        print(f"mrczbench convert: {task.input}: {record['error']}", file=sys.stderr)

    # -- work --
    def write(self, record: dict, append) -> None:
        append(record)
        self.records[record["output"]] = record

    def dispatch(self, pool) -> None:
        while self.queue and len(self.in_flight) < self.jobs and not self.stops:
            task, sig, orphan = self.queue.popleft()
            future = pool.submit(adopt if orphan else convert_one, task, self.settings)
            self.in_flight[future] = ("convert", task, sig)

    def collect(self, pool, append, now: float) -> None:
        from concurrent.futures.process import BrokenProcessPool
        self.broken = False
        for future in [f for f in self.in_flight if f.done()]:
            kind, item, sig = self.in_flight.pop(future)
            self.last_activity = now
            try:
                result = future.result()
            except BrokenProcessPool as exc:  # a worker died (OOM killer, a crash): a fresh pool
                result = exc
                self.broken = True
            except Exception as exc:  # a worker failed on Dask, or a bug: retry, then record
                result = exc
            if kind == "delete":
                self.finish_delete(item, result, append)
                continue
            task = item
            if isinstance(result, Exception):
                self.attempts[task.input] = self.attempts.get(task.input, 0) + 1
                if self.attempts[task.input] < RETRIES:
                    self.queue.appendleft((task, sig, False))
                    continue
                result = {"input": task.input, "output": task.relative, "status": "failed",
                          "error": f"the worker failed: {type(result).__name__}: {result}"[:500]}
            self.write(result, append)
            latency = time.time() - sig[1] / 1e9
            self.monitor.converted(result, latency)
            if result["status"] == "done":
                self.done_inputs.add(task.input)
                print(f"converted {result['output']}" + (" (adopted: it was already there and "
                      "verifies)" if result.get("adopted") else
                      f" in {result['seconds']:.1f} s, {latency:.1f} s after its last byte, ratio "
                      f"{result['ratio']:.3f}"), file=sys.stderr, flush=True)
                if self.args.delete_source:
                    check = pool.submit(source_problem, result, self.settings.out,
                                        self.settings.eer_grouping)
                    self.in_flight[check] = ("delete", result, sig)
            else:
                self.settled[task.input] = sig
                print(f"failed: {task.input}: {result['error']}", file=sys.stderr, flush=True)

    def finish_delete(self, record: dict, problem, append) -> None:
        if isinstance(problem, Exception):
            problem = f"{type(problem).__name__}: {problem}"
        if problem:
            print(f"mrczbench convert: {record['input']} kept: {problem}", file=sys.stderr, flush=True)
            return
        try:
            os.unlink(record["input"])
        except OSError as exc:
            print(f"mrczbench convert: {record['input']} kept: cannot delete it: {exc.strerror}",
                  file=sys.stderr, flush=True)
            return
        self.write({**record, "source_deleted": True,
                    "source_deleted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, append)
        self.monitor.counts["sources_deleted"] += 1

    def backlog(self) -> tuple[int, int, int]:
        converting = sum(1 for kind, *_ in self.in_flight.values() if kind == "convert")
        growing = sum(1 for c in self.candidates.values() if not c.reported)
        return len(self.queue) + converting, converting, growing

    def idle_for(self, now: float) -> float:
        if self.queue or self.in_flight or any(not c.reported for c in self.candidates.values()):
            return 0.0
        return now - self.last_activity


def sweep_temporaries(out: Path) -> None:
    """Remove the temporary outputs of workers killed with an earlier session (atomic.py
    would only sweep a folder when it next writes there)."""
    from mrczbench.atomic import sweep_stale_temporaries
    for root, _, files in os.walk(out):
        if any(name.startswith(".") and name.endswith(".tmp") for name in files):
            sweep_stale_temporaries(Path(root))


def _stop_handler(follower: Follower):
    def handler(signum, frame):
        follower.stops += 1
        if follower.stops == 1:
            print(f"\nmrczbench convert: {signal.Signals(signum).name}: stopping after the "
                  f"{len(follower.in_flight)} movie(s) in flight (again to abandon them)",
                  file=sys.stderr, flush=True)
    return handler


class StatusOutput:
    """The live status line (stderr; one rewritten line on a terminal, a line a minute in a
    log) and the --status JSON file (rewritten atomically each second)."""

    def __init__(self, path: str | None, stream=None):
        self.path = Path(path) if path else None
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_line = self.last_file = -float("inf")

    def show(self, status: dict, now: float, final: bool = False) -> None:
        if self.path and (final or now - self.last_file >= 1.0):
            from mrczbench.atomic import atomic_output
            self.last_file = now
            with atomic_output(self.path) as handle:
                handle.write((json.dumps(status, indent=1, sort_keys=True) + "\n").encode())
        if final or now - self.last_line >= (0.5 if self.tty else 60.0):
            self.last_line = now
            text = Monitor.line(status)
            if self.tty and not final:
                import shutil
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self.stream.write("\r" + text[:width].ljust(width))
            else:
                self.stream.write(("\r" if self.tty else "") + text + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


def run_follow(args, settings_from) -> int:
    from mrczbench.system import usable_cores
    folders = []
    for item in args.movies:
        path = Path(item).expanduser()
        if not path.is_dir():
            raise MrczbenchError(f"--follow {item}: not a folder; --follow watches folders "
                                 "(give the folder the detector software writes into)")
        folders.append(path.resolve())
    if args.shard:
        raise MrczbenchError("--shard: not with --follow (one follower per folder and --out)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MrczbenchError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    settings, jobs = settings_from(args, usable_cores(), 1)
    if settings.gain and settings.format == "tiff":
        print(f"mrczbench convert: gain reference for the TIFF counts: "
              f"{write_gain_reference(out, settings.gain)}", file=sys.stderr)
    inside = [f for f in folders if out.is_relative_to(f)]
    if inside:
        print(f"mrczbench convert: note: --out {out} lies inside the input folder {inside[0]}: "
              f"files under --out are never taken as inputs", file=sys.stderr)
    network = network_folders(folders)
    polling = args.poll or bool(network)
    watcher = None
    if not polling:
        try:
            watcher = EventWatcher(folders)
        except ImportError:
            polling = True
            print("mrczbench convert: watchfiles is not installed: polling the folders instead "
                  "(pip install watchfiles)", file=sys.stderr)
    pool = DaskJobs(args.scheduler) if args.scheduler else None
    if pool and not args.jobs:
        jobs = pool.nthreads()
    follower = Follower(args, folders, out, settings, jobs)
    display = StatusOutput(args.status)
    previous = {sig: signal.signal(sig, _stop_handler(follower)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with manifest.writer(out, None) as append:
            follower.load()
            sweep_temporaries(out)
            if pool is None:
                from mrczbench.convert.workers import Pool
                pool = Pool(jobs)
                pool.start()
            mode = ("polling every " + format_duration(args.poll_interval) +
                    (f" (network filesystem: {', '.join(network)})" if network else "")) if polling \
                else "filesystem events"
            print(f"mrczbench convert --follow: watching {', '.join(map(str, folders))} "
                  f"({mode}); {len(follower.done_inputs)} movies already done; converting to "
                  f"{args.format} in {out} ({'Dask ' + args.scheduler if args.scheduler else f'{jobs} job(s)'}"
                  f" x {settings.threads} thread(s)); stop with SIGTERM or Ctrl-C", file=sys.stderr, flush=True)
            code = _loop(follower, watcher, pool, append, display, polling)
            sweep_temporaries(out)  # a worker killed at the start may have been reaped only now
            manifest.write_table(out, None, manifest.records(out / manifest.part_name(None)))
            return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if watcher:
            watcher.close()


def _loop(follower: Follower, watcher, pool, append, display: StatusOutput, polling: bool) -> int:
    args = follower.args
    now = time.monotonic()
    follower.scan(now)
    next_scan = now + (args.poll_interval if polling else EVENT_RESCAN)
    state = "running"
    try:
        while True:
            if watcher is not None:
                changed = watcher.drain(TICK)
                if watcher.error is not None:
                    display.message(f"mrczbench convert: filesystem events failed ({watcher.error}); "
                                    f"polling every {format_duration(args.poll_interval)} instead")
                    watcher.close()
                    watcher, polling = None, True
            else:
                time.sleep(TICK)
                changed = set()
            now = time.monotonic()
            if follower.stops >= 2:
                display.message(f"mrczbench convert: abandoning {len(follower.in_flight)} movie(s) "
                                f"in flight (not recorded: a restart converts them)")
                pool.abandon()
                state = "abandoned"
                break
            if not follower.stops:
                for path in changed:
                    follower.accept(path, now)
                if now >= next_scan:
                    follower.scan(now)
                    next_scan = now + (args.poll_interval if polling else EVENT_RESCAN)
                follower.check(now, append)
                follower.dispatch(pool)
            follower.collect(pool, append, now)
            if follower.broken and not isinstance(pool, DaskJobs):
                from mrczbench.convert.workers import Pool
                pool.shutdown(wait=False)
                pool = Pool(follower.jobs)
                follower.dispatch(pool)
            backlog, converting, growing = follower.backlog()
            warning = follower.monitor.backlog_warning(now, backlog)
            if warning:
                display.message(f"mrczbench convert: {warning}")
            display.show(follower.monitor.status(time.time(), "stopping" if follower.stops else "running",
                                                 backlog, converting, growing, jobs=follower.jobs,
                                                 out=str(follower.out),
                                                 folders=[str(f) for f in follower.folders]), now)
            if follower.stops and not follower.in_flight:
                state = "stopped"
                break
            if args.exit_when_idle and follower.idle_for(now) >= args.exit_when_idle:
                state = "idle"
                break
        if state != "abandoned":
            pool.shutdown()
    except BaseException:
        pool.abandon()
        raise
    backlog, converting, growing = follower.backlog()
    display.show(follower.monitor.status(time.time(), state, backlog, converting, growing,
                                         jobs=follower.jobs, out=str(follower.out),
                                         folders=[str(f) for f in follower.folders]),
                 time.monotonic(), final=True)
    counts = follower.monitor.counts
    if state == "abandoned":
        return 130
    return 1 if state == "idle" and (counts["failed"] or counts["incomplete"]) else 0
