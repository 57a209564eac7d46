"""The measurement protocol of one case (runs in the worker process).

A case is one contender (a Format) on one dataset. `run_case` loads the dataset (kept for the
next case on the same data), builds the contender's Subject, times the in-memory ops in
calibrated batches and the file ops one call per sample, verifies every round trip off the
clock and emits one row per sample.

Two kinds of failure are kept apart. Anything raised inside the contender's own code (its
constructor, check_data, encode, decode, write, read) is the contender's failure: the Subject
turns it into ContenderFailed and the op gets an error row. Anything else raised here is a bug
in mrczbench's harness and propagates: the worker reports it and the run stops."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from mrczbench.bench import timing
from mrczbench.bench.suites import Case
from mrczbench.errors import MrczbenchError

FILE_OPS = ("write", "read_warm", "write_fsync", "read_cold")
MEMORY_OPS = ("encode", "decode", "alloc")
# `alloc`: a fresh output of the stack's size with one write per page (the page faults a
# decode into new memory pays), for contenders that decode into a reused, pre-faulted output
# (Format.decodes_into): huge-page faults of fresh outputs made decode timings bimodal
# (issue 28), so they are measured apart (where a suite lists `alloc`) instead of in decode.

Emit = Callable[[dict[str, Any]], None]


class ContenderFailed(Exception):
    """The contender's code raised: the message becomes the op's error (one line)."""


def _contender(func: Callable, *args: Any) -> Any:
    try:
        return func(*args)
    except Exception as exc:
        raise ContenderFailed(f"{type(exc).__name__}: {exc}") from exc


# --- what is timed ------------------------------------------------------------------------------

@dataclasses.dataclass
class Data:
    """A loaded dataset: a (frames, y, x) stack or a metadata document."""

    value: Any
    columns: dict[str, Any]      # dataset columns of the rows
    raw_bytes: int
    bound_ratio: float | None

    def same(self, other: Any) -> bool:
        """Bit-exact: same shape and bytes for a stack (a reader may label the bytes
        differently, uint8 for int8 counts 0-15, so signedness is not compared); equality for
        a document."""
        import numpy as np
        a = self.value
        if not isinstance(a, np.ndarray):
            return other == a
        if not isinstance(other, np.ndarray) or other.shape != a.shape or \
                other.dtype.itemsize != a.dtype.itemsize:
            return False
        return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                              np.ascontiguousarray(other).view(np.uint8))


@dataclasses.dataclass
class Subject:
    """The contender's operations on one dataset; each call that fails raises ContenderFailed."""

    fmt: Any                     # a mrczbench Format
    data: Data

    def encode(self) -> bytes:
        return _contender(self.fmt.encode, self.data.value)

    def decode(self, blob: bytes) -> Any:
        value = self.data.value
        return _contender(self.fmt.decode, blob, getattr(value, "shape", None),
                          getattr(value, "dtype", None))

    def decode_into(self, blob: bytes, out: Any) -> Any:
        _contender(self.fmt.decode_into, blob, out)
        return out

    def reusable_output(self) -> Any:
        """A pre-faulted output for decode_into (every page written once, off the clock), or
        None where the contender decodes into new memory only."""
        import numpy as np
        value = self.data.value
        if not (self.fmt.decodes_into and isinstance(value, np.ndarray)):
            return None
        out = np.empty(value.shape, value.dtype)
        out.fill(0)
        return out

    def write(self, path: Path) -> int:
        stored = _contender(self.fmt.write, path, self.data.value)
        return stored if stored else path.stat().st_size

    def read(self, path: Path) -> Any:
        return _contender(self.fmt.read, path)


class Skip(Exception):
    """The case cannot run (unavailable format, data it cannot store): one error row."""

    def __init__(self, reason: str, lossless: bool | None = None):
        super().__init__(reason)
        self.reason = reason
        self.lossless = lossless


def make_subject(case: Case, data: Data) -> Subject:
    from mrczbench.formats import format_class

    if case.unavailable:
        raise Skip(f"unavailable: {case.unavailable}")
    params = dict(case.format)
    cls = format_class(params.pop("format"))
    reason = cls.unavailable_reason()
    if reason:
        raise Skip(f"unavailable: {reason}")
    fmt = _contender(lambda: cls(**params))
    reason = fmt.config_unavailable_reason()
    if reason:
        raise Skip(f"unavailable: {reason}")
    lossy = _contender(fmt.check_data, data.value)
    if lossy:
        raise Skip(f"lossy: {lossy}", lossless=False)
    return Subject(fmt, data)


# --- one case -------------------------------------------------------------------------------------

def run_case(case: Case, settings: dict[str, Any], emit: Emit, loaded: dict[str, Any]) -> None:
    """Time one case and emit its rows. `settings`: scratch folder, eviction method, cache."""
    columns = case_columns(case)
    try:
        data = load_data(case, settings.get("cache_dir"), loaded)
    except (MrczbenchError, OSError, MemoryError) as exc:  # the data, not the harness
        emit({**columns, "error": f"dataset: {type(exc).__name__}: {exc}", "valid": False})
        return
    columns.update(data.columns, raw_bytes=data.raw_bytes, bound_ratio=data.bound_ratio)
    try:
        subject = make_subject(case, data)
    except (Skip, ContenderFailed) as exc:
        skip = exc if isinstance(exc, Skip) else Skip(str(exc))
        emit({**columns, "error": skip.reason, "valid": False, "lossless": skip.lossless})
        return

    def row(op: str, sample: int, **values: Any) -> None:
        regime = "memory" if op in MEMORY_OPS else "file"
        emit({**columns, "op": op, "sample": sample, "regime": regime, **values})

    memory_ops = [op for op in case.ops if op in MEMORY_OPS]
    if memory_ops and subject.fmt.has_memory_codec:
        time_memory(case, subject, memory_ops, row)
    file_ops = [op for op in case.ops if op in FILE_OPS]
    if file_ops:
        path = Path(settings["scratch"]) / f"case{case_tag(case)}-{os.getpid()}{subject.fmt.suffix}"
        try:
            FileTimer(case, subject, file_ops, path, settings["eviction"], row).run()
        finally:
            path.unlink(missing_ok=True)


def case_tag(case: Case) -> str:
    # case ids are unique in a run; a short stable hash keeps scratch names short and safe
    import zlib
    return format(zlib.crc32(case.case_id.encode()), "08x")


# --- in memory ------------------------------------------------------------------------------------

def allocate_pages(shape: tuple[int, ...], dtype: Any) -> Any:
    """A new array with one byte written per page: what a decode into new memory adds."""
    import numpy as np
    out = np.empty(shape, dtype)
    flat = out.reshape(-1).view(np.uint8)
    flat[::timing.PAGE_SIZE] = 0
    return out


def time_memory(case: Case, subject: Subject, ops: list[str], row) -> None:
    """Check one round trip, then per op: calibrate the loop count, time `repeats` batches and
    verify each batch's last result off the clock. Decode goes into one reused, pre-faulted
    output where the contender can (its rows say output "reused", else "fresh"); `alloc`
    times a fresh output's page faults alone."""
    try:
        blob = subject.encode()
        if not subject.data.same(subject.decode(blob)):
            for op in ops:
                row(op, case.first_sample, error="round trip not bit-exact", lossless=False,
                    stored_bytes=len(blob))
            return
    except ContenderFailed as exc:
        for op in ops:
            row(op, case.first_sample, error=str(exc))
        return
    out = subject.reusable_output() if "decode" in ops else None
    value = subject.data.value
    if out is None:
        ops = [op for op in ops if op != "alloc"]  # its decode already pays the allocation
    for op in ops:
        if op == "encode":
            func = subject.encode
        elif op == "alloc":
            func = lambda: allocate_pages(value.shape, value.dtype)  # noqa: E731
        elif out is not None:
            func = lambda: subject.decode_into(blob, out)  # noqa: E731
        else:
            func = lambda: subject.decode(blob)  # noqa: E731
        try:
            loops = timing.calibrate_loops(func, case.min_batch_seconds)
            for sample in case.samples():
                seconds, cpu_seconds, last = timing.time_batch(func, loops)
                if op == "alloc":
                    ok, stored = last.shape == value.shape, len(blob)
                else:
                    ok, stored = ((subject.data.same(subject.decode(last)), len(last)) if op == "encode"
                                  else (subject.data.same(last), len(blob)))
                if op == "decode" and out is not None:
                    out.fill(0)  # off the clock: the next batch must write every pixel again
                extra = {"output": "reused" if out is not None else "fresh"} if op == "decode" else {}
                if ok:
                    row(op, sample, seconds=seconds / loops, cpu_seconds=cpu_seconds / loops,
                        loops=loops, stored_bytes=stored, lossless=True, **extra)
                else:
                    row(op, sample, loops=loops, stored_bytes=stored, lossless=False,
                        error="round trip not bit-exact")
        except ContenderFailed as exc:
            row(op, case.first_sample, error=str(exc))


# --- files ----------------------------------------------------------------------------------------

def _timed(seconds: float, stored: int, ok: bool, cpu_seconds: float | None = None) -> dict[str, Any]:
    if ok:
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "loops": 1,
                "stored_bytes": stored, "lossless": True}
    return {"loops": 1, "stored_bytes": stored, "lossless": False, "error": "round trip not bit-exact"}


class FileTimer:
    """Per sample, two steps on one scratch file: a page-cache write then a warm read
    (`cached_step`), and a durable write then a cold read (`durable_step`). Each write is
    verified by the read that follows it (timed if that op is asked for). An op whose
    contender failed is not tried again."""

    def __init__(self, case: Case, subject: Subject, ops: list[str], path: Path, eviction: str, row):
        self.case, self.subject, self.ops, self.path = case, subject, ops, path
        self.eviction, self.row = eviction, row
        self.failed: set[str] = set()

    def run(self) -> None:
        for sample in self.case.samples():
            for step, step_ops in ((self.cached_step, ("write", "read_warm")),
                                   (self.durable_step, ("write_fsync", "read_cold"))):
                wanted = [op for op in step_ops if op in self.ops]
                if not wanted:
                    continue
                try:
                    step(sample)
                except ContenderFailed as exc:
                    for op in wanted:
                        if op not in self.failed:
                            self.row(op, sample, error=str(exc))
                            self.failed.add(op)
            if self.failed >= set(self.ops):
                return

    def wants(self, op: str) -> bool:
        return op in self.ops and op not in self.failed

    def cached_step(self, sample: int) -> None:
        path, same = self.path, self.subject.data.same
        if self.wants("write"):
            write_seconds, write_cpu, stored = self.timed_write(durable=False)
        else:
            stored = self.existing_file()
        if "read_warm" not in self.ops:
            if self.wants("write"):
                self.row("write", sample, **_timed(write_seconds, stored, same(self.subject.read(path)),
                                                  write_cpu))
            return
        if timing.residency(path) < 0.99:
            self.subject.read(path)  # warm it (off the clock)
        seconds, cpu, back = self.timed_read()
        ok = same(back)
        if self.wants("write"):
            self.row("write", sample, **_timed(write_seconds, stored, ok, write_cpu))
        if self.wants("read_warm"):
            self.row("read_warm", sample, **_timed(seconds, stored, ok, cpu))

    def durable_step(self, sample: int) -> None:
        same = self.subject.data.same
        if self.wants("write_fsync"):
            fsync_seconds, fsync_cpu, stored = self.timed_write(durable=True)
        else:
            stored, fsync_seconds, fsync_cpu = self.existing_file(), None, None
        if "read_cold" in self.ops:
            self.evict_file_only()
            resident = timing.residency(self.path)
            seconds, cpu, back = self.timed_read()
            ok = same(back)
        else:
            ok = same(self.subject.read(self.path))
        if fsync_seconds is not None:
            self.row("write_fsync", sample, **_timed(fsync_seconds, stored, ok, fsync_cpu))
        if self.wants("read_cold"):
            values = _timed(seconds, stored, ok, cpu)
            values["residency"] = resident
            if not values.get("error"):
                values["valid"] = resident <= timing.COLD_RESIDENCY_LIMIT
            self.row("read_cold", sample, **values)

    def existing_file(self) -> int:
        """The file a skipped write would have made (written off the clock if missing)."""
        if not self.path.exists():
            self.subject.write(self.path)
        return self.path.stat().st_size

    def timed_write(self, durable: bool) -> tuple[float, float, int]:
        """Wall and CPU seconds of one write (fsynced when durable), and the bytes stored."""
        # off the clock: remove the last file and flush earlier writes so their writeback
        # does not land inside the next timed write
        self.path.unlink(missing_ok=True)
        os.sync()
        cpu_start, start = timing.cpu_clock(), timing.clock()
        stored = self.subject.write(self.path)
        if durable:
            timing.fsync_path(self.path)
            timing.fsync_dir(self.path.parent)  # the format renames a temp file: make it durable
        return timing.clock() - start, timing.cpu_clock() - cpu_start, stored

    def timed_read(self) -> tuple[float, float, Any]:
        cpu_start, start = timing.cpu_clock(), timing.clock()
        back = self.subject.read(self.path)
        return timing.clock() - start, timing.cpu_clock() - cpu_start, back

    def evict_file_only(self) -> None:
        """Evict the file but not the reader's code. drop_caches also drops the pages of the
        libraries (and Python modules) the reader runs, which would bill page faults of code
        to the file; so read a copy of the file once after dropping (warms the code path,
        not the target's pages). fadvise evicts only the file and needs no decoy."""
        if self.eviction != "drop_caches":
            timing.evict(self.path, self.eviction)
            return
        decoy = self.path.with_name("decoy-" + self.path.name)
        shutil.copyfile(self.path, decoy)
        try:
            timing.evict(self.path, self.eviction)
            self.subject.read(decoy)
        finally:
            decoy.unlink(missing_ok=True)


# --- datasets and row columns ---------------------------------------------------------------------

def load_data(case: Case, cache_dir: str | None, loaded: dict[str, Any]) -> Data:
    """The case's dataset; the last one is kept in `loaded` so consecutive cases on the same
    data do not pay for loading again."""
    key = json.dumps(case.dataset, sort_keys=True)
    if loaded.get("key") == key:
        return loaded["value"]
    loaded.clear()  # free the previous dataset before building the next one
    if case.dataset.get("kind") == "metadata":
        from mrczbench.formats.metadata import dumps_json, make_document
        document = make_document(case.dataset.get("megabytes", 25), case.dataset.get("seed", 0))
        columns = {"dataset": synthetic_name(case.dataset), "dataset_kind": "metadata",
                   "dtype": "json"}
        # raw size = plain compact JSON (the json serializer's own output): json's ratio is 1
        value = Data(document, columns, len(dumps_json(document)), None)
    else:
        from mrczbench.movies.entropy import bound_ratio
        stack, columns = _load_stack(case.dataset, cache_dir)
        frames, ny, nx = stack.shape
        columns.update({"frames": frames, "ny": ny, "nx": nx, "dtype": stack.dtype.name})
        value = Data(stack, columns, stack.nbytes, bound_ratio(stack))
    loaded["key"], loaded["value"] = key, value
    return value


def _load_stack(dataset: dict[str, Any], cache_dir: str | None):
    import numpy as np

    if "path" in dataset:
        from mrczbench.movies.readers import open_movies
        from mrczbench.argtypes import EER_GROUPING
        movie = open_movies([dataset["path"]],
                            eer_grouping=dataset.get("eer_grouping", EER_GROUPING))[0]
        subset = dataset.get("subset")
        stack = read_subset(movie, subset["frames"], subset["shape"]) if subset else \
            np.asarray(movie.read())
        if stack.ndim == 2:
            stack = stack[None]
        return stack, {"dataset": dataset["name"], "dataset_kind": "user", "dose": None}
    from mrczbench.movies.datasets import load_stack
    spec = dataset_spec(dataset)
    # progress=False: the worker's stderr would break the main process's progress line
    stack = load_stack(spec, cache_dir, progress=False)
    name = dataset.get("name") or synthetic_name(dataset)
    return stack, {"dataset": name, "dataset_kind": getattr(spec, "kind", dataset.get("kind")),
                   "dose": getattr(spec, "dose", dataset.get("dose"))}


def read_subset(movie, frames: int | None, shape: list[int] | None):
    """The first `frames` frames of a user's movie, each cut to a central `shape` (ny, nx)
    crop; a movie that is smaller keeps its own size. Only those frames are read."""
    import itertools
    import numpy as np
    kept = []
    for frame in itertools.islice(movie.iter_frames(), frames):
        frame = np.asarray(frame)
        if shape:
            top, left = ((size - min(size, want)) // 2 for size, want in zip(frame.shape, shape))
            frame = frame[top:top + shape[0], left:left + shape[1]]
        kept.append(np.ascontiguousarray(frame))
    return np.stack(kept)


def dataset_spec(dataset: dict[str, Any]):
    """A DatasetSpec for a suite's dataset table: a named spec from datasets/*.toml with the
    suite's fields replacing its own, or a spec built from the fields alone."""
    from mrczbench.movies import datasets

    fields = {k: v for k, v in dataset.items() if k != "name"}
    if "shape" in fields:
        fields["shape"] = tuple(fields["shape"])
    if "name" in dataset:
        spec = datasets.load_spec(dataset["name"])
        return dataclasses.replace(spec, **fields) if fields else spec
    return datasets.DatasetSpec(name=synthetic_name(dataset), **fields)


def case_columns(case: Case) -> dict[str, Any]:
    """Columns known from the case alone (before its dataset is loaded)."""
    dataset = case.dataset
    shape = dataset.get("shape") or [None, None]
    return {
        "dataset": dataset.get("name") or synthetic_name(dataset),
        "dataset_kind": "user" if "path" in dataset else dataset.get("kind"),
        "dose": dataset.get("dose"), "frames": dataset.get("frames"),
        "ny": shape[0], "nx": shape[1], "dtype": dataset.get("dtype"), **case.columns,
    }


def error_row(case: Case, reason: str, op: str | None = None) -> dict[str, Any]:
    return {**case_columns(case), "op": op, "error": reason, "valid": False}


def synthetic_name(dataset: dict[str, Any]) -> str:
    kind = dataset.get("kind", "synthetic")
    if kind == "metadata":
        return f"metadata-{dataset.get('megabytes', 25):g}MiB"
    parts = [kind]
    if dataset.get("dose") is not None:
        parts.append(f"d{dataset['dose']:g}")
    if dataset.get("frames") and dataset.get("shape"):
        parts.append(f"{dataset['frames']}x{dataset['shape'][0]}x{dataset['shape'][1]}")
    return "-".join(parts)
