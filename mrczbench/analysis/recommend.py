"""Facility defaults: `mrczbench recommend` turns measured rows into one configuration.

The data flow is the project's: a sweep (or the user's `--results`) -> result rows ->
`candidates()` (one measured contender: ratio, write and read MiB/s at the scenario's cores)
-> `evaluate()` (the transfer and storage model below) -> `rank()` by goal -> text or JSON.

The model, per movie (every input is stated in the output's assumptions):
  raw      = frames x ny x nx x bytes per pixel (the movie as the detector software writes it)
  write    = raw / write MiB/s at --writer-cores  (the `write` op: encode + file write into the
             page cache; `encode` where only in-memory rows exist)
  send     = raw x ratio / (link Gbit/s x 10^9/8 x usable fraction)
  read     = raw / read MiB/s at --reader-cores   (`read_warm`, else `decode`)
  convert  = read + raw / plain-MRC write MiB/s, only for a format the --readers cannot read
             when --allow-conversion accepts converting it at the compute centre
  interval = 3600 / --movies-per-hour
  keeps up = write <= (1 - headroom) x interval and send <= interval
  transfer time = max(write, send) + read (+ convert): frames stream to the link while later
             frames compress, so writing and sending overlap; the compute centre reads
             (decompresses) the movie once it has arrived.
  storage  = raw x ratio x movies/hour x hours/year, TB = 10^12 bytes, cost at $/TB/year.
Goals: live = of the configurations that keep up, the one that occupies the writer least
(max(write, send)); transfer = the shortest transfer time; archive = the lowest storage cost
among those that keep up. Configurations that do not keep up rank after those that do.

Speeds come from rows measured at the requested core counts. Where they were not, the figure
is marked: thread counts beyond the measured ones follow Amdahl's law with the serial fraction
of the measured thread sweep (Karp-Flatt), or, with one thread count measured, 0.7 per added
thread (the MRCZ paper's blosc scaling); fewer threads than measured scale down linearly.
Contenders that ignore `threads` keep their measured speed. Nothing else is estimated.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from mrczbench.errors import MrczbenchError
from mrczbench.units import MiB

GOALS = ("live", "transfer", "archive")

# The programs `--readers` names, with the sources for the formats they read natively (printed
# with --list-readers). Which formats each reads is declared on the formats
# (Format.native_readers) and collected by native_formats().
READER_SOURCES: dict[str, str] = {
    "relion": "RELION movie-compression page (MRC, TIFF LZW/deflate, EER >= 3.1.1, 4-bit MRC); "
              ".mrc.bz2 movies from RELION 4.0.1 (EMPIAR PDBj compression note); no MRCZ",
    "cryosparc": "CryoSPARC guide, Import Movies: .mrc, .mrc.bz2, .tif, .eer; MRC mode 101 "
                 "unsupported (discuss.cryosparc.com/t/importing-mrc-movies/3115)",
    "motioncor": "MotionCor2 manual: -InMrc, -InTiff (libtiff: LZW/deflate), -InEer; 4-bit MRC "
                 "not confirmed, so left out",
    "imod": "IMOD: MRC incl. mode 101 (SerialEM's 4-bit format), TIFF via libtiff (mrc2tif, "
            "newstack)",
}
READER_CHOICES = tuple(READER_SOURCES) + ("any",)

# --detector -> dataset spec: shape, frames, dtype, kind and a typical dose
DETECTORS = {
    "counting": "k2-counting", "k2": "k2-counting", "k3": "k3-counting",
    "falcon": "falcon4-counting", "gain-normalised": "k2-gain-normalised",
    "eer": "falcon4-eer-4k", "super-resolution": "k2-superres-4bit",
}

PAPER_SCALING = 0.7        # speed-up per added thread, the MRCZ paper's blosc figure
DEFAULT_LINK_FRACTION = 0.63  # the paper's 60-90 MB/s (MiB) on 1 Gbit/s: 75 MiB/s midpoint


@dataclasses.dataclass(frozen=True)
class Scenario:
    detector: str
    dose: float
    shape: tuple[int, int]
    frames: int
    bytes_per_pixel: int
    movies_per_hour: float
    link_gbps: float
    link_fraction: float
    storage_cost: float
    hours_per_year: float
    writer_cores: int
    reader_cores: int
    goal: str
    readers: tuple[str, ...]
    allow_conversion: bool
    headroom: float

    @property
    def raw_bytes(self) -> int:
        return self.frames * self.shape[0] * self.shape[1] * self.bytes_per_pixel

    @property
    def interval_s(self) -> float:
        return 3600.0 / self.movies_per_hour

    @property
    def link_bytes_per_s(self) -> float:
        return self.link_gbps * 1e9 / 8 * self.link_fraction


@dataclasses.dataclass(frozen=True)
class Speed:
    mib_per_s: float
    op: str
    note: str = ""          # "" = measured at these cores; else how it was derived


@dataclasses.dataclass(frozen=True)
class Candidate:
    label: str
    config: dict            # the format config (JSON params) without threads
    ratio: float
    dose: float | None
    write: Speed
    read: Speed
    native: bool


@dataclasses.dataclass(frozen=True)
class Evaluation:
    candidate: Candidate
    write_s: float
    send_s: float
    read_s: float
    convert_s: float
    transfer_s: float
    occupancy_s: float      # max(write, send): the writer's time per movie
    keeps_up: bool
    margin: float           # 1 - the largest share of the interval a stage uses
    tb_per_year: float
    cost_per_year: float


# ---- from result rows to candidates ----------------------------------------------------

def format_key(config: dict) -> tuple[str, str | None]:
    fmt = config.get("format")
    return (fmt, config.get("compression", "none")) if fmt == "tiff" else (fmt, None)


def _format_classes() -> list:
    """The registered format classes that load here (a broken plugin is left out)."""
    from mrczbench import formats
    found = []
    for name in formats.format_names():
        try:
            found.append(formats.format_class(name))
        except MrczbenchError:
            continue
    return found


@functools.cache
def native_formats(program: str) -> frozenset[tuple[str, str | None]]:
    """The format_key()s `program` reads natively, from the formats' native_readers: TIFF once
    per compression (all of them: libtiff), other formats with None."""
    from mrczbench.formats.tiff import TIFF_COMPRESSION
    keys = set()
    for cls in _format_classes():
        if program in cls.native_readers:
            codecs = TIFF_COMPRESSION if cls.name == "tiff" else (None,)
            keys.update((cls.name, codec) for codec in codecs)
    return frozenset(keys)


def sweep_contenders() -> dict[str, dict[str, Any]]:
    """The focused sweep run when no --results are given: each format's declared
    sweep_contenders (the usual candidates of each family), label -> config."""
    return {label: {"format": cls.name, **fields} for cls in _format_classes()
            for label, fields in cls.sweep_contenders.items()}


def is_native(config: dict, readers: tuple[str, ...]) -> bool:
    return all(format_key(config) in native_formats(r) for r in readers if r != "any")


def _ignores_threads(fmt: str) -> bool:
    from mrczbench import formats
    try:
        return formats.format_class(fmt).threads_note.startswith("ignored")
    except MrczbenchError:
        return False


def speed_at(per_threads: dict[int, float], cores: int, op: str, ignores_threads: bool) -> Speed:
    """The median MiB/s at `cores` threads, or derived from the measured thread counts
    (see the module docstring) with a note saying how."""
    counts = sorted(per_threads)
    if cores in per_threads:
        return Speed(per_threads[cores], op)
    if ignores_threads:
        t = counts[-1]
        return Speed(per_threads[t], op, f"measured at {t} threads; the format ignores threads")
    if cores > counts[-1]:
        t = counts[-1]
        if len(counts) >= 2 and counts[0] < t:
            t0 = counts[0]
            p, s = t / t0, per_threads[t] / per_threads[t0]
            serial = min(1.0, max(0.0, (1 / s - 1 / p) / (1 - 1 / p)))
            scale = (1 / (serial + (1 - serial) / (cores / t0))) / (1 / (serial + (1 - serial) / p))
            return Speed(per_threads[t] * scale, op,
                         f"extrapolated from {t} threads by Amdahl's law (serial fraction "
                         f"{serial:.2f} from the {t0}-{t} thread measurements)")
        scale = 1 + PAPER_SCALING * (cores / t - 1)
        return Speed(per_threads[t] * scale, op, f"extrapolated from {t} threads at "
                     f"{PAPER_SCALING} per added thread (the MRCZ paper's blosc scaling)")
    if cores < counts[0]:
        t = counts[0]
        return Speed(per_threads[t] * cores / t, op, f"scaled down linearly from {t} threads")
    low = max(c for c in counts if c < cores)
    high = min(c for c in counts if c > cores)
    value = per_threads[low] + (per_threads[high] - per_threads[low]) * (cores - low) / (high - low)
    return Speed(value, op, f"interpolated between {low} and {high} threads")


def _op_speeds(rows, ops: tuple[str, ...]) -> tuple[str, dict[int, float]] | None:
    from mrczbench.analysis.stats import summarise
    for op in ops:
        part = rows[rows["op"] == op]
        if len(part):
            return op, {int(t): summarise(g["mib_per_s"]).median for t, g in part.groupby("threads")}
    return None


def candidates(frame, scenario: Scenario) -> tuple[list[Candidate], list[str]]:
    """One Candidate per measured configuration (threads aside) at the dose nearest the
    scenario's, and notes on what was left out and why."""
    from mrczbench.analysis.stats import summarise
    notes: list[str] = []
    ok = frame[frame["error"].isna() & frame["valid"].astype(bool)]
    lossy = set(frame.loc[frame["lossless"].eq(False), "label"])
    if lossy:
        notes.append(f"left out as not lossless on this data: {', '.join(sorted(lossy))}")
        ok = ok[~ok["label"].isin(lossy)]
    ok = ok.assign(config=ok["params"].map(lambda p: json.dumps(
        {k: v for k, v in json.loads(p).items() if k != "threads"}, sort_keys=True)))
    found = []
    for (label, config_json), rows in ok.groupby(["label", "config"], sort=True):
        doses = rows["dose"].dropna().unique()
        dose = None
        if len(doses):
            dose = float(min(doses, key=lambda d: abs(math.log(d / scenario.dose)) if d > 0 else math.inf))
            rows = rows[rows["dose"] == dose]
        config = json.loads(config_json)
        ignores = _ignores_threads(config.get("format", ""))
        write = _op_speeds(rows, ("write", "encode"))
        read = _op_speeds(rows, ("read_warm", "decode", "read_cold"))
        if write is None or read is None:
            notes.append(f"{label}: no write/encode or read/decode timing: left out")
            continue
        ratio = summarise(rows["ratio"].dropna()).median
        found.append(Candidate(
            label=label, config=config, ratio=ratio, dose=dose,
            write=speed_at(write[1], scenario.writer_cores, write[0], ignores),
            read=speed_at(read[1], scenario.reader_cores, read[0], ignores),
            native=is_native(config, scenario.readers)))
    if "profile" in frame.columns and frame["profile"].eq("quick").any():
        notes.append("some rows come from --quick runs (small stacks): their speeds are smoke-test "
                     "figures, not for decisions")
    far = {c.dose for c in found if c.dose and abs(c.dose / scenario.dose - 1) > 0.1}
    if far:
        notes.append(f"no rows at dose {scenario.dose:g}: ratios measured at dose "
                     f"{', '.join(f'{d:g}' for d in sorted(far))} e/px/frame (nearest)")
    return found, notes


# ---- the model -----------------------------------------------------------------------------

def evaluate(c: Candidate, s: Scenario, plain_write_mibs: float | None = None) -> Evaluation:
    raw_mib = s.raw_bytes / MiB
    stored = s.raw_bytes * c.ratio
    write_s = raw_mib / c.write.mib_per_s
    send_s = stored / s.link_bytes_per_s
    read_s = raw_mib / c.read.mib_per_s
    convert_s = 0.0
    if not c.native:
        convert_s = read_s + raw_mib / plain_write_mibs if plain_write_mibs else math.inf
    occupancy = max(write_s, send_s)
    keeps_up = write_s <= (1 - s.headroom) * s.interval_s and send_s <= s.interval_s
    tb = stored * s.movies_per_hour * s.hours_per_year / 1e12
    return Evaluation(c, write_s, send_s, read_s, convert_s, occupancy + read_s + convert_s,
                      occupancy, keeps_up, 1 - occupancy / s.interval_s, tb, tb * s.storage_cost)


def rank(evaluations: list[Evaluation], goal: str) -> list[Evaluation]:
    objective = {
        "live": lambda e: (e.occupancy_s, e.candidate.ratio),
        "transfer": lambda e: (e.transfer_s, e.candidate.ratio),
        "archive": lambda e: (e.candidate.ratio, e.transfer_s),
    }[goal]
    return sorted(evaluations, key=lambda e: (not e.keeps_up, *objective(e)))


def recommend(frame, scenario: Scenario) -> dict[str, Any]:
    """The ranked evaluations and notes for `scenario` from result rows (a DataFrame)."""
    found, notes = candidates(frame, scenario)
    if not found:
        raise MrczbenchError("the results hold no usable rows (no valid, lossless, error-free "
                             "write/read timings)")
    allowed = [c for c in found if c.native or scenario.allow_conversion]
    if not allowed:
        readers = ", ".join(scenario.readers)
        raise MrczbenchError(
            f"--readers {readers}: none of the measured contenders ({', '.join(c.label for c in found)}) "
            f"is read natively by {readers}; measure MRC/TIFF contenders, add --allow-conversion "
            f"or use --readers any")
    plain = next((c.write.mib_per_s for c in found if c.config.get("format") == "mrc"), None)
    evaluations = [evaluate(c, scenario, plain) for c in allowed]
    if any(math.isinf(e.convert_s) for e in evaluations):
        notes.append("conversion cost unknown (no plain 'mrc' rows): non-native formats rank last")
    ranked = rank(evaluations, scenario.goal)
    if not ranked[0].keeps_up:
        notes.append(f"nothing measured keeps up with {scenario.movies_per_hour:g} movies/hour "
                     f"on {scenario.writer_cores} writer cores and a {scenario.link_gbps:g} Gbit/s link")
    return {"scenario": scenario, "ranked": ranked, "notes": notes}
