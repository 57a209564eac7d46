"""Run mutated inputs through the readers in a child process and classify each outcome.

Outcomes: `ok` (exactly the original), `documented-error` (the reader's documented error,
one line), `payload-changed` (a byte flipped inside pixel data no checksum covers, read back
with the same shape and dtype: MRCZ, MRC, TIFF, EER and .npy store no checksum),
`reinterpreted` (a header byte changed what the same pixel bytes mean, e.g. MRC mode 1 <-> 6,
or a .npy byte order '>u2' -> '<u2', whose items come back byte-swapped: nothing in the file
can tell), `warned` (a different array the reader warned about, e.g. a
plain MRC whose shrunk dimensions leave bytes after the last frame, read as mrcfile reads
it), `accepted` (an edited text file that still parses). Anything
else is UNEXPECTED: `foreign-exception`, `multi-line-error`, `memory` (MemoryError or the
address-space limit), `crash` (the worker died, e.g. a signal), `hang` (past the time limit),
`wrong-array` (a silently different shape, dtype or pixels), `seed-rejected` (the valid,
unmutated seed did not read back).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from mrczbench.fuzz.mutators import mutate
from mrczbench.fuzz.seeds import Seed, make_seeds

EXPECTED = ("ok", "documented-error", "payload-changed", "reinterpreted", "warned", "accepted")
UNEXPECTED = ("foreign-exception", "multi-line-error", "memory", "crash", "hang", "wrong-array",
              "seed-rejected")
START_SECONDS = 60.0  # importing pandas, tifffile, imagecodecs on a busy machine


@dataclasses.dataclass(frozen=True)
class Reader:
    name: str
    target: str            # "module:function" or "/path/file.py:function", run in the worker
    documented: str        # dotted name of the documented error type
    groups: tuple[str, ...]  # seed groups (mrczbench.fuzz.seeds.SEED_GROUPS)


_T = "mrczbench.fuzz.targets:"
READERS = {reader.name: reader for reader in (
    Reader("mrc", _T + "read_mrc", "mrczbench.errors.MRCZError", ("mrc",)),
    Reader("mrcz", _T + "read_mrc", "mrczbench.errors.MRCZError", ("mrcz",)),
    Reader("mrcz-frames", _T + "iter_mrc", "mrczbench.errors.MRCZError", ("mrc", "mrcz")),
    Reader("movies-mrc", _T + "movies", "mrczbench.errors.DatasetError", ("mrc", "mrcz")),
    Reader("tiff", _T + "movies", "mrczbench.errors.DatasetError", ("tiff",)),
    Reader("eer", _T + "eer_movies", "mrczbench.errors.DatasetError", ("eer",)),
    Reader("npy", _T + "movies", "mrczbench.errors.DatasetError", ("npy",)),
    Reader("lst", _T + "movies", "mrczbench.errors.DatasetError", ("lst",)),
    Reader("star", _T + "movies", "mrczbench.errors.DatasetError", ("star",)),
    Reader("framed", _T + "read_framed", "mrczbench.errors.FormatError", ("framed",)),
    Reader("suite", _T + "load_suite", "mrczbench.errors.SuiteError", ("suite",)),
    Reader("dataset", _T + "load_spec", "mrczbench.errors.DatasetError", ("dataset",)),
    Reader("results", _T + "load_results", "mrczbench.errors.ResultsError", ("results",)),
)}


@dataclasses.dataclass
class Finding:
    """One unexpected outcome, enough to reproduce it."""
    reader: str
    number: int        # input number within the reader (same seed -> same input)
    seed_file: str
    mutation: str
    outcome: str
    detail: str
    saved: str | None = None


@dataclasses.dataclass
class FuzzReport:
    seed: int
    seconds: float
    counts: dict[str, Counter]
    findings: list[Finding]
    inputs: list[tuple[str, int, str, str, str]]  # (reader, number, seed file, mutation, outcome)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    @property
    def unexpected(self) -> int:
        return len(self.findings)


class WorkerDied(Exception):
    def __init__(self, outcome: str, detail: str):
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


class Worker:
    """The child process; restarted after it dies or hangs."""

    def __init__(self, memory_mib: int, folder: Path):
        self.memory_mib = memory_mib
        self.folder = folder  # its working folder: empty, so no file of the caller's folder
        # answers for a relative name (a list entry resolves there when not beside the list)
        self.proc: subprocess.Popen | None = None
        self.buffer = b""

    def start(self) -> None:
        env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONWARNINGS": "ignore",
               "PYTHONPATH": os.pathsep.join(filter(None, [
                   str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mrczbench.fuzz.worker", str(self.memory_mib)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True, cwd=self.folder)
        self.buffer = b""
        self._answer(START_SECONDS)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None

    def ask(self, request: dict, timeout: float) -> dict:
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the answer below reports how it died
        return self._answer(timeout)

    def _answer(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise WorkerDied("hang", f"no answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.proc.wait()
                    self.proc = None
                    if code < 0:
                        detail = f"killed by {signal.Signals(-code).name}"
                        raise WorkerDied("memory" if -code == signal.SIGKILL else "crash", detail)
                    raise WorkerDied("crash", f"worker exited with status {code}")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def classify(answer: dict, expected: dict, payload_only: bool, text: bool) -> tuple[str, str]:
    """(outcome, detail) of one answer against the seed's expected answer."""
    if answer["status"] == "error":
        line = f"{answer['type']}: {answer['message']}"
        if answer["memory"]:
            return "memory", line
        if not answer["documented"]:
            return "foreign-exception", line
        if answer["lines"] > 1:
            return "multi-line-error", line
        return "documented-error", line
    if answer["digest"] == expected["digest"]:
        return "ok", ""
    if text:
        return "accepted", ""
    got = f"shape {answer['shape']} dtype {answer['dtype']}"
    want = f"shape {expected['shape']} dtype {expected['dtype']}"
    if answer["bytes"] == expected["bytes"]:
        return "reinterpreted", f"{got}, was {want}"
    if expected.get("swapped") and answer["bytes"] == expected["swapped"] and \
            answer["shape"] == expected["shape"]:
        # the byte order changed (e.g. a .npy header '>u2' -> '<u2'): the same bytes, read
        # the other way round; readers return native order, so the swapped items come back
        return "reinterpreted", f"{got}, byte order swapped"
    if payload_only and answer["shape"] == expected["shape"] and answer["dtype"] == expected["dtype"]:
        return "payload-changed", ""
    if answer.get("warnings"):
        # a different array the reader warned about (e.g. a plain MRC whose shrunk dimensions
        # leave bytes after the last frame: read with a warning, as mrcfile does)
        return "warned", f"{got}: {answer['warnings'][0]}"
    if answer["shape"] == expected["shape"] and answer["dtype"] == expected["dtype"]:
        return "wrong-array", f"different pixels, {got}"
    return "wrong-array", f"{got}, expected {want}"


@dataclasses.dataclass
class _Plan:
    reader: Reader
    folder: Path
    seeds: list[Seed]
    expected: list[dict | None]
    rng: random.Random
    number: int = 0


def _prepare(reader: Reader, root: Path, seed: int) -> _Plan:
    from mrczbench.fuzz.worker import describe
    folder = root / reader.name
    seeds = [s for group in reader.groups for s in make_seeds(group, root / "seeds" / group)]
    folder.mkdir(parents=True)
    for s in seeds:
        for name, data in s.extras.items():
            (folder / name).write_bytes(data)
    expected = [describe(s.expected) if s.expected is not None else None for s in seeds]
    return _Plan(reader, folder, seeds, expected, random.Random(f"{seed}/{reader.name}"))


def _save(directory: Path, plan: _Plan, finding: Finding, seed_obj: Seed, data: bytes) -> str:
    where = directory / f"{plan.reader.name}-{finding.number:06d}"
    where.mkdir(parents=True, exist_ok=True)
    for name, extra in seed_obj.extras.items():
        (where / name).write_bytes(extra)
    (where / seed_obj.name).write_bytes(data)
    info = {**dataclasses.asdict(finding), "target": plan.reader.target,
            "documented": plan.reader.documented}
    info.pop("saved")
    (where / "finding.json").write_text(json.dumps(info, indent=1) + "\n")
    return str(where / seed_obj.name)


def run_fuzz(seconds: float | None = 60.0, seed: int = 0, readers=None, max_inputs: int | None = None,
             save_failures: str | os.PathLike | None = None, time_limit: float = 10.0,
             memory_mib: int = 512, progress: Callable[[str], None] | None = None) -> FuzzReport:
    """Fuzz `readers` (names from READERS, or Reader objects; default all) round-robin until
    `seconds` pass or `max_inputs` inputs were tried. Input n of a reader depends only on
    `seed`, the reader and n. Each reader first reads its unmutated seeds (mutation 'none')."""
    chosen = [READERS[r] if isinstance(r, str) else r for r in (readers or list(READERS))]
    counts = {reader.name: Counter() for reader in chosen}
    findings: list[Finding] = []
    inputs: list[tuple[str, int, str, str, str]] = []
    saved_to = Path(save_failures) if save_failures else None
    start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="mrczbench-fuzz-"))
    (root / "cwd").mkdir()
    worker = Worker(memory_mib, root / "cwd")
    try:
        plans = [_prepare(reader, root, seed) for reader in chosen]
        worker.start()
        pending = {id(plan): list(range(len(plan.seeds))) for plan in plans}  # seeds as-is first
        next_report = start + 10
        while True:
            for plan in plans:
                if (max_inputs is not None and sum(sum(c.values()) for c in counts.values()) >= max_inputs) \
                        or (seconds is not None and time.monotonic() - start >= seconds):
                    return FuzzReport(seed, time.monotonic() - start, counts, findings, inputs)
                outcome = _one(plan, pending[id(plan)], worker, counts, findings, saved_to, time_limit)
                inputs.append(outcome)
            if progress and time.monotonic() >= next_report:
                next_report += 10
                progress(f"fuzz: {sum(sum(c.values()) for c in counts.values())} inputs, "
                         f"{len(findings)} unexpected, {time.monotonic() - start:.0f} s")
    finally:
        worker.stop()
        shutil.rmtree(root, ignore_errors=True)


def _one(plan: _Plan, pending: list[int], worker: Worker, counts, findings, saved_to, time_limit):
    number = plan.number
    plan.number += 1
    if pending:
        index = pending.pop(0)
        mutation, data, payload_only = "none", plan.seeds[index].data, False
    else:
        index = plan.rng.randrange(len(plan.seeds))
        mutation, data, payload_only = mutate(plan.seeds[index], plan.rng)
    seed_obj = plan.seeds[index]
    path = plan.folder / seed_obj.name
    path.write_bytes(data)
    request = {"target": plan.reader.target, "documented": plan.reader.documented, "path": str(path)}
    try:
        answer = worker.ask(request, time_limit)
    except WorkerDied as died:
        outcome, detail = died.outcome, died.detail
    else:
        if mutation == "none" and plan.expected[index] is None:  # a text seed: its reading is the truth
            plan.expected[index] = answer if answer["status"] == "value" else None
            outcome, detail = ("ok", "") if answer["status"] == "value" else \
                ("seed-rejected", f"{answer['type']}: {answer['message']}")
        else:
            expected = plan.expected[index] or {"digest": None}
            outcome, detail = classify(answer, expected, payload_only, seed_obj.text)
    counts[plan.reader.name][outcome] += 1
    if outcome in UNEXPECTED:
        finding = Finding(plan.reader.name, number, seed_obj.name, mutation, outcome, detail)
        if saved_to is not None:
            finding.saved = _save(saved_to, plan, finding, seed_obj, data)
        findings.append(finding)
    return plan.reader.name, number, seed_obj.name, mutation, outcome
