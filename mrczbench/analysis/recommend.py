"""Facility defaults: `mrczbench recommend` turns measured rows into one configuration.

The data flow is the project's: a sweep (or the user's `--results`) -> result rows ->
`match_rows()` (only rows whose data match the scenario: detector kind, pixel type, frame
size class, dose within ±25 %; what is left out is listed with why) -> `candidates()` (one
measured contender: ratio, write and read MiB/s with their 95 % intervals at the scenario's
cores) -> `evaluate()` (the transfer and storage model below) -> `rank()` by goal, with ties
-> text or JSON.

The model, per movie (every input is stated in the output's assumptions):
  raw      = frames x ny x nx x bytes per pixel (the movie as the detector software writes it)
  write    = raw / write MiB/s at --writer-cores  (the `write` op: encode + file write into the
             page cache; `encode` where only in-memory rows exist)
  send     = raw x ratio / (link Gbit/s x 10^9/8 x usable fraction)
  read     = raw / read MiB/s at --reader-cores   (`read_cold`: the compute centre reads the
             movie that arrived over the network from its disk; else `decode`. Never a warm
             page-cache read, which no stage of the pipeline performs)
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
Ties: every time carries the 95 % interval of its medians (stats.median_ci; with 2-5 samples
the range of the samples stands in); a configuration whose interval of the goal's time
overlaps the best one's is tied with it (for archive: ratios within 1 %, our threshold). Of
the tied set the pick is, in order: python-mrcz's default settings (MRCZ zstd-1,
bitshuffle), then the fewest settings that differ from their format's defaults, then the
smallest ratio, never a difference inside the noise.

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
# Which rows are the scenario's data (match_rows)
DOSE_TOLERANCE = 0.25      # rows within ±25 % of the scenario's dose
SMALL_FRAME_SHARE = 0.25   # frames with < 1/4 of the scenario's pixels are another size class
RATIO_TIE = 0.01           # archive: ratios within 1 % (relative) are tied (our threshold)
# Synthetic Poisson counts stand for counting detectors' movies
KIND_STANDS_FOR = {"poisson": ("counting",)}
EIGHT_BIT = ("int8", "uint8")  # 8-bit counts: MRC mode 0 or unsigned TIFF, the same data
WRITE_OPS = ("write", "encode")
READ_OPS = ("read_cold", "decode")
# python-mrcz's default MRCZ settings: picked first among tied configurations
PYTHON_MRCZ_DEFAULT = {"format": "mrcz", "codec": "zstd", "level": 1}
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
    kind: str = "counting"     # the detector's data kind (its dataset spec's kind)
    dtype: str = "int8"        # its pixel type

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
    low: float | None = None   # the 95 % interval of the median MiB/s (None: unknown)
    high: float | None = None


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
    transfer_range: tuple[float, float] | None = None   # from the speeds' intervals
    occupancy_range: tuple[float, float] | None = None


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


def sweep_contenders(goal: str | None = None) -> dict[str, dict[str, Any]]:
    """The focused sweep run when no --results are given: each format's declared
    sweep_contenders (the usual candidates of each family), and its archive_contenders for
    the archive goal; label -> config."""
    return {label: {"format": cls.name, **fields} for cls in _format_classes()
            for label, fields in [*cls.sweep_contenders.items(),
                                  *(cls.archive_contenders.items() if goal == "archive" else ())]}


def is_native(config: dict, readers: tuple[str, ...]) -> bool:
    return all(format_key(config) in native_formats(r) for r in readers if r != "any")


def _ignores_threads(fmt: str) -> bool:
    from mrczbench import formats
    try:
        return formats.format_class(fmt).threads_note.startswith("ignored")
    except MrczbenchError:
        return False


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def speed_at(per_threads: dict[int, float], cores: int, op: str, ignores_threads: bool) -> Speed:
    """The median MiB/s at `cores` threads, or derived from the measured thread counts
    (see the module docstring) with a note saying how."""
    counts = sorted(per_threads)
    if cores in per_threads:
        return Speed(per_threads[cores], op)
    if ignores_threads:
        t = counts[-1]
        return Speed(per_threads[t], op, f"measured at {_threads(t)}; the format ignores threads")
    if cores > counts[-1]:
        t = counts[-1]
        if len(counts) >= 2 and counts[0] < t:
            t0 = counts[0]
            p, s = t / t0, per_threads[t] / per_threads[t0]
            serial = min(1.0, max(0.0, (1 / s - 1 / p) / (1 - 1 / p)))
            scale = (1 / (serial + (1 - serial) / (cores / t0))) / (1 / (serial + (1 - serial) / p))
            return Speed(per_threads[t] * scale, op,
                         f"extrapolated from {_threads(t)} by Amdahl's law (serial fraction "
                         f"{serial:.2f} from the {t0}-{t} thread measurements)")
        scale = 1 + PAPER_SCALING * (cores / t - 1)
        return Speed(per_threads[t] * scale, op, f"extrapolated from {_threads(t)} at "
                     f"{PAPER_SCALING} per added thread (the MRCZ paper's blosc scaling)")
    if cores < counts[0]:
        t = counts[0]
        return Speed(per_threads[t] * cores / t, op, f"scaled down linearly from {_threads(t)}")
    low = max(c for c in counts if c < cores)
    high = min(c for c in counts if c > cores)
    value = per_threads[low] + (per_threads[high] - per_threads[low]) * (cores - low) / (high - low)
    return Speed(value, op, f"interpolated between {low} and {high} threads")


def speed_interval(values) -> tuple[float, float] | None:
    """The 95 % interval of the median of `values` (stats.median_ci); with 2-5 samples their
    range stands in (a narrower coverage: 75 % at 3 samples); None for one sample."""
    from mrczbench.analysis.stats import median_ci
    values = [float(v) for v in values]
    interval = median_ci(values)
    if interval is None and len(values) >= 2:
        interval = (min(values), max(values))
    return interval


def _op_speeds(rows, ops: tuple[str, ...]):
    """(op, {threads: median}, {threads: low}, {threads: high}) of the first of `ops` with rows."""
    from mrczbench.analysis.stats import summarise
    for op in ops:
        part = rows[rows["op"] == op]
        if len(part):
            medians, lows, highs = {}, {}, {}
            for t, g in part.groupby("threads"):
                medians[int(t)] = summarise(g["mib_per_s"]).median
                interval = speed_interval(g["mib_per_s"])
                if interval:
                    lows[int(t)], highs[int(t)] = interval
            return op, medians, lows, highs
    return None


def _speed(found, cores: int, ignores: bool) -> Speed:
    op, medians, lows, highs = found
    speed = speed_at(medians, cores, op, ignores)
    if set(lows) != set(medians):  # some thread count without an interval: unknown
        return speed
    low, high = speed_at(lows, cores, op, ignores), speed_at(highs, cores, op, ignores)
    return dataclasses.replace(speed, low=low.mib_per_s, high=high.mib_per_s)


def is_stream_baseline(fmt: str) -> bool:
    """A byte-stream baseline (formats.streams: zstd, lz4 over the raw frames): a reference
    for what a general-purpose coder alone gives, not a movie format any program reads."""
    from mrczbench import formats
    try:
        return formats.format_class(fmt).__module__.endswith(".streams") and fmt != "bzip2"
    except MrczbenchError:
        return False


def _same_pixels(a, b) -> bool:
    a, b = str(a), str(b)
    return a == b or (a in EIGHT_BIT and b in EIGHT_BIT)


def data_mismatch(kind, dtype, ny, nx, dose, s: Scenario) -> str | None:
    """Why rows of this data do not stand for the scenario's movies, or None when they do."""
    kind = str(kind)
    if kind != "user" and kind != s.kind and s.kind not in KIND_STANDS_FOR.get(kind, ()):
        return f"{kind} data, the scenario is a {s.kind} detector"
    if not _same_pixels(dtype, s.dtype):
        return f"{dtype} pixels, the scenario's are {s.dtype}"
    if ny == ny and nx == nx and ny and nx and ny * nx < SMALL_FRAME_SHARE * s.shape[0] * s.shape[1]:
        return (f"{int(ny)} x {int(nx)} px frames, small beside the scenario's "
                f"{s.shape[0]} x {s.shape[1]} (speeds on small frames do not carry over)")
    if dose == dose and dose is not None and s.dose > 0 and abs(dose / s.dose - 1) > DOSE_TOLERANCE:
        return (f"dose {dose:g} e/px/frame, outside ±{DOSE_TOLERANCE:.0%} of the scenario's "
                f"{s.dose:g}")
    return None


def match_rows(frame, s: Scenario):
    """The rows whose data match the scenario (data_mismatch), the datasets they come from,
    and a note per dataset left out, with why."""
    notes: list[str] = []
    keys = ["dataset", "dataset_kind", "dtype", "ny", "nx", "dose"]
    frame = frame.copy()
    for key in keys:
        if key not in frame.columns:
            frame[key] = None
    keep = []
    datasets = []
    for values, part in frame.groupby(keys, dropna=False, sort=True):
        name, kind, dtype, ny, nx, dose = values
        reason = data_mismatch(kind, dtype, ny, nx, dose, s)
        if reason:
            notes.append(f"left out {name} ({len(part)} rows): {reason}")
        else:
            keep.append(part)
            datasets.append(str(name))
    if not keep:
        return frame.iloc[0:0], [], notes
    import pandas as pd
    return pd.concat(keep), datasets, notes


def candidates(frame, scenario: Scenario) -> tuple[list[Candidate], list[str]]:
    """One Candidate per measured configuration (threads aside) of the rows whose data match
    the scenario (match_rows), and notes on what was left out and why."""
    from mrczbench.analysis.stats import summarise
    notes: list[str] = []
    matched, datasets, left_out = match_rows(frame, scenario)
    ok = matched[matched["error"].isna() & matched["valid"].astype(bool)]
    lossy = set(matched.loc[matched["lossless"].eq(False), "label"])
    if lossy:
        notes.append(f"left out as not lossless on this data: {', '.join(sorted(lossy))}")
        ok = ok[~ok["label"].isin(lossy)]
    streams = sorted({label for label, fmt in zip(ok["label"], ok["format"]) if is_stream_baseline(fmt)})
    if streams:
        notes.append(f"left out as byte-stream baselines no cryo-EM program reads: {', '.join(streams)}")
        ok = ok[~ok["label"].isin(streams)]
    ok = ok.assign(config=ok["params"].map(lambda p: json.dumps(
        {k: v for k, v in json.loads(p).items() if k != "threads"}, sort_keys=True)))
    found = []
    for (label, config_json), rows in ok.groupby(["label", "config"], sort=True):
        doses = rows["dose"].dropna().unique()
        dose = float(summarise(doses).median) if len(doses) else None
        config = json.loads(config_json)
        ignores = _ignores_threads(config.get("format", ""))
        write = _op_speeds(rows, WRITE_OPS)
        read = _op_speeds(rows, READ_OPS)
        if write is None or read is None:
            notes.append(f"{label}: no {'/'.join(WRITE_OPS)} or {'/'.join(READ_OPS)} timing "
                         f"(a warm page-cache read is no stage of the pipeline): left out")
            continue
        ratio = summarise(rows["ratio"].dropna()).median
        found.append(Candidate(
            label=label, config=config, ratio=ratio, dose=dose,
            write=_speed(write, scenario.writer_cores, ignores),
            read=_speed(read, scenario.reader_cores, ignores),
            native=is_native(config, scenario.readers)))
    if "profile" in matched.columns and matched["profile"].eq("quick").any():
        notes.append("some rows come from --quick runs (small stacks): their speeds are smoke-test "
                     "figures, not for decisions")
    if datasets:
        notes.insert(0, f"measured on {', '.join(datasets)} (the rows whose data match the "
                        f"scenario: {scenario.kind}, {scenario.dtype}, dose {scenario.dose:g} "
                        f"±{DOSE_TOLERANCE:.0%})")
    return found, notes + left_out


# ---- the model -----------------------------------------------------------------------------

def evaluate(c: Candidate, s: Scenario, plain_write_mibs: float | None = None) -> Evaluation:
    raw_mib = s.raw_bytes / MiB
    stored = s.raw_bytes * c.ratio
    send_s = stored / s.link_bytes_per_s

    def times(write_mibs: float, read_mibs: float) -> tuple[float, float, float, float]:
        write_s = raw_mib / write_mibs
        read_s = raw_mib / read_mibs
        convert_s = 0.0
        if not c.native:
            convert_s = read_s + raw_mib / plain_write_mibs if plain_write_mibs else math.inf
        occupancy = max(write_s, send_s)
        return write_s, read_s, convert_s, occupancy

    write_s, read_s, convert_s, occupancy = times(c.write.mib_per_s, c.read.mib_per_s)
    ranges = None
    if None not in (c.write.low, c.write.high, c.read.low, c.read.high) and \
            min(c.write.low, c.read.low) > 0:
        fast = times(c.write.high, c.read.high)
        slow = times(c.write.low, c.read.low)
        ranges = ((fast[3] + fast[1] + fast[2], slow[3] + slow[1] + slow[2]), (fast[3], slow[3]))
    keeps_up = write_s <= (1 - s.headroom) * s.interval_s and send_s <= s.interval_s
    tb = stored * s.movies_per_hour * s.hours_per_year / 1e12
    return Evaluation(c, write_s, send_s, read_s, convert_s, occupancy + read_s + convert_s,
                      occupancy, keeps_up, 1 - occupancy / s.interval_s, tb, tb * s.storage_cost,
                      *(ranges or (None, None)))


def _objective(e: Evaluation, goal: str) -> tuple:
    return {"live": (e.occupancy_s, e.candidate.ratio),
            "transfer": (e.transfer_s, e.candidate.ratio),
            "archive": (e.candidate.ratio, e.transfer_s)}[goal]


def tied(e: Evaluation, best: Evaluation, goal: str) -> bool:
    """Whether `e` cannot be told apart from `best` on the goal's measure: overlapping 95 %
    intervals of the time (live: the writer's occupancy; transfer: the transfer time), or for
    archive ratios within RATIO_TIE."""
    from mrczbench.analysis.stats import intervals_overlap
    if e.keeps_up != best.keeps_up:
        return False
    if goal == "archive":
        return abs(e.candidate.ratio / best.candidate.ratio - 1) <= RATIO_TIE
    if goal == "live":
        return e.occupancy_s == best.occupancy_s or intervals_overlap(e.occupancy_range, best.occupancy_range)
    return e.transfer_s == best.transfer_s or intervals_overlap(e.transfer_range, best.transfer_range)


def non_default_settings(config: dict) -> int:
    """How many settings of `config` differ from its format's defaults (threads aside)."""
    from mrczbench import formats
    try:
        defaults = formats.format_class(config.get("format", "")).Config.defaults()
    except MrczbenchError:
        return len(config)
    return sum(1 for key, value in config.items()
               if key not in ("format", "threads") and key in defaults and defaults[key] != value)


def is_python_mrcz_default(config: dict) -> bool:
    return all(config.get(k) == v for k, v in PYTHON_MRCZ_DEFAULT.items()) and \
        non_default_settings(config) == 0


def pick_key(e: Evaluation, goal: str) -> tuple:
    """The stated rule that picks from a tied set: python-mrcz's defaults first, then the
    fewest non-default settings, then the smallest ratio, then the goal's measure."""
    config = e.candidate.config
    return (not is_python_mrcz_default(config), non_default_settings(config), e.candidate.ratio,
            *_objective(e, goal))


def rank(evaluations: list[Evaluation], goal: str) -> list[Evaluation]:
    """By goal, configurations that keep up first; the set tied with the best comes first,
    ordered by pick_key, then the others by the goal's measure."""
    ordered = sorted(evaluations, key=lambda e: (not e.keeps_up, *_objective(e, goal)))
    if not ordered:
        return ordered
    best = ordered[0]
    ties = sorted((e for e in ordered if tied(e, best, goal)), key=lambda e: pick_key(e, goal))
    return ties + [e for e in ordered if not any(e is t for t in ties)]


def tied_set(ranked: list[Evaluation], goal: str) -> list[Evaluation]:
    """The configurations tied with the best measured one (the head of `rank`)."""
    if not ranked:
        return []
    best = min(ranked, key=lambda e: (not e.keeps_up, *_objective(e, goal)))
    return [e for e in ranked if tied(e, best, goal)]


def recommend(frame, scenario: Scenario) -> dict[str, Any]:
    """The ranked evaluations, the tied set and notes for `scenario` from result rows."""
    found, notes = candidates(frame, scenario)
    if not found:
        left = "; ".join(note for note in notes if note.startswith("left out")) or "none"
        raise MrczbenchError(f"the results hold no usable rows for a {scenario.kind} detector "
                             f"({scenario.dtype}, dose {scenario.dose:g}); left out: {left}")
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
    ties = tied_set(ranked, scenario.goal)
    if len(ties) > 1:
        measure = {"live": "writer time", "transfer": "transfer time",
                   "archive": f"ratio (within {RATIO_TIE:.0%})"}[scenario.goal]
        notes.insert(0, f"tied on {measure} (95 % intervals overlap): "
                        f"{', '.join(e.candidate.label for e in ties)}; picked by the stated rule: "
                        f"python-mrcz's defaults first, then the fewest non-default settings, "
                        f"then the smallest ratio")
    if any(e.candidate.config.get("format") == "mrc-uint4" for e in ranked[:1 + 4]):
        notes.append("mrc uint4 (4-bit MRC) is lossless only while every count is <= 15: "
                     "check your movies' maximum count before you use it")
    if not ranked[0].keeps_up:
        notes.append(f"nothing measured keeps up with {scenario.movies_per_hour:g} movies/hour "
                     f"on {scenario.writer_cores} writer cores and a {scenario.link_gbps:g} Gbit/s link")
    return {"scenario": scenario, "ranked": ranked, "tied": ties, "notes": notes}
