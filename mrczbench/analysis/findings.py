"""The MRCZ paper's claims (McLeod et al. 2017), checked against the result rows a report is
given: each claim gets the numbers that bear on it and a verdict, `reproduced`, `refuted` or
`not measurable here` (with the reason: the rows it needs are missing, or its timings come
only from quick-profile smoke tests).

Every check reads only valid, lossless, error-free rows and medians (analysis.stats). It takes
the rows of the suites that declare the paper figure it is about (run.json `figure`, e.g.
"Fig. 2c" for thread scaling) when there are any, else looks for the sweep it needs by what
varies in the rows (levels, block sizes, threads, doses), so a user's own runs are checked the
same way. A sweep is compared only within one suite, dataset and run settings: a thread count
of the dose sweep never joins the thread sweep. Speed claims ignore quick-profile runs (4 small
frames, millisecond timings: "do not quote these speeds"). Ratios are stored/raw and are shown
beside their Shannon bound (the i.i.d. entropy of the data, `bound_ratio`)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

REPRODUCED, REFUTED, NOT_MEASURABLE = "reproduced", "refuted", "not measurable here"
SATURATED = 0.01        # a ratio within 1 % of the codec's best counts as saturated
PAPER_SCALING = 0.7     # thread efficiency the paper reports up to the physical cores
SCALING_TOLERANCE = 0.1  # 0.6 x N and better counts as "about 0.7 N"
PAPER_LOW_DOSE_MIB = 13e6 / 2 ** 20  # 10 x 4k x 4k at 0.1 e/px/frame: 13 MB (10^6 bytes)
LOW_DOSE_TOLERANCE = 0.3   # within 30 % of 13 MB counts as "about"
PAPER_DECIMATION = 10.0    # "about 10x": 7x and more counts (within 30 %, as for 13 MB)
SPEED_OPS = ("encode", "write")  # compression speed: in memory, else into a file
BLOSC_CODECS = ("zstd", "lz4", "zlib", "blosclz", "lz4hc")
QUICK_REASON = ("its timings come only from quick-profile runs (smoke tests on small stacks) "
                "or runs of unknown profile")


@dataclasses.dataclass(frozen=True)
class Finding:
    claim: str
    verdict: str
    evidence: str


# --- rows ------------------------------------------------------------------------------------
def _usable(frame):
    ok = frame[frame["error"].isna() & frame["valid"].astype(bool)]
    return ok[ok["lossless"].ne(False)]


def _median(series) -> float:
    from mrczbench.analysis.stats import summarise
    values = series.dropna()
    return summarise(values).median if len(values) else math.nan


QUOTABLE_PROFILES = ("full", "reference")


def _timed(rows):
    """Rows whose timings may be quoted: from full- or reference-profile runs. The profile is
    in every row (and, for rows written before it was, in run.json); a row of unknown
    profile may be a quick smoke test and is not quoted."""
    if "profile" not in rows.columns:
        return rows.iloc[0:0]
    return rows[rows["profile"].isin(QUOTABLE_PROFILES)]


def _prefer(frame, figure: str):
    """Rows of suites declaring `figure` (e.g. 'Fig. 2c') when there are any, else all."""
    if "figure" not in frame.columns:
        return frame
    key = figure.replace(" ", "").replace(".", "").lower()
    declared = frame[frame["figure"].fillna("").astype(str).str.replace(r"[ .]", "", regex=True)
                     .str.lower() == key]
    return declared if len(declared) else frame


def _speed(rows) -> tuple[str, Any] | None:
    """(op, rows of that op): the compression speed op measured for these rows."""
    for op in SPEED_OPS:
        part = rows[rows["op"] == op]
        if len(part):
            return op, part
    return None


def _speeds_by(rows, column: str) -> tuple[str, dict] | None:
    """(op, {value of column: median MiB/s}) of the compression speed op."""
    speed = _speed(rows)
    if not speed:
        return None
    return speed[0], {key: _median(g["mib_per_s"]) for key, g in speed[1].groupby(column)}


def _mrcz(frame, **fixed):
    rows = frame[frame["format"] == "mrcz"]
    for key, value in fixed.items():
        rows = rows[rows[key] == value]
    return rows


def _sweeps(rows, swept: str):
    """Groups of rows that differ only in `swept`: same suite, dataset and other settings."""
    keys = [k for k in ("suite", "dataset", "codec", "level", "blocksize", "threads", "filter")
            if k != swept]
    filled = rows.assign(**{k: rows[k].fillna(-1 if k in ("level", "blocksize", "threads") else "")
                            for k in keys})
    return filled.groupby(keys, sort=True)


def _bound(rows) -> str:
    bound = _median(rows["bound_ratio"])
    return f" (Shannon bound {bound:.3f})" if bound == bound else ""


# --- the claims --------------------------------------------------------------------------------
def codecs_best(frame) -> Finding:
    claim = "zstd gives the best ratio and lz4 the fastest speed among blosc codecs"
    rows = _mrcz(_prefer(frame, "Fig. 2a"))
    rows = rows[rows["codec"].isin(BLOSC_CODECS) & (rows["level"] == 1)
                & (rows["filter"].fillna("bitshuffle") == "bitshuffle")]
    ratio_ok, speed_ok, lines = [], [], []
    for (suite, dataset, dose, threads), at_dose in rows.groupby(
            ["suite", "dataset", rows["dose"].fillna(-1), rows["threads"].fillna(-1)]):
        if at_dose["codec"].nunique() < 2:
            continue
        ratios = {c: _median(g["ratio"]) for c, g in at_dose.groupby("codec")}
        # zstd within 1 % of the best ratio counts as best (a tie at the measurement's precision)
        ratio_ok.append("zstd" in ratios and ratios["zstd"] <= min(ratios.values()) * (1 + SATURATED))
        line = (f"{dataset} (dose {dose:g}, {threads:g} threads): ratio " + ", ".join(
            f"{c} {r:.3f}" for c, r in sorted(ratios.items(), key=lambda i: i[1])) + _bound(at_dose))
        speeds = _speeds_by(_timed(at_dose), "codec")
        if speeds and len(speeds[1]) >= 2:
            fastest = max(speeds[1], key=speeds[1].get)
            speed_ok.append(fastest == "lz4")
            line += f"; {speeds[0]} MiB/s " + ", ".join(
                f"{c} {s:,.0f}" for c, s in sorted(speeds[1].items(), key=lambda i: -i[1]))
        lines.append(line)
    if not ratio_ok:
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ rows of two or more blosc codecs at "
                       "level 1 on the same data (dose-sweep)")
    evidence = (f"level 1, bitshuffle; zstd has the best ratio (within 1 %) on {sum(ratio_ok)} of "
                f"{len(ratio_ok)} data sets" + (f", lz4 is fastest on {sum(speed_ok)} of {len(speed_ok)}"
                                               if speed_ok else "") + ". " + "; ".join(lines))
    if not all(ratio_ok) or (speed_ok and not all(speed_ok)):
        return Finding(claim, REFUTED, evidence)
    if not speed_ok:
        return Finding(claim, NOT_MEASURABLE, f"the ratio half holds, but the speed half is not "
                       f"measurable: {QUICK_REASON}. " + evidence)
    return Finding(claim, REPRODUCED, evidence)


def level_saturation(frame) -> Finding:
    claim = "zstd's ratio saturates by level 2-3 and zlib's by 4-5"
    limits = {"zstd": 3, "zlib": 5}
    found: dict[str, list[int]] = {}
    lines = []
    rows = _mrcz(_prefer(frame, "Fig. 2b"))
    rows = rows[rows["codec"].isin(list(limits)) & (rows["filter"].fillna("bitshuffle") == "bitshuffle")]
    for key, sweep in _sweeps(rows, "level"):
        ratios = {int(l): _median(g["ratio"]) for l, g in sweep.groupby("level")}
        if len(ratios) < 3:
            continue
        codec, best = key[2], min(ratios.values())
        level = min(l for l, r in ratios.items() if r <= best * (1 + SATURATED))
        found.setdefault(codec, []).append(level)
        lines.append(f"{codec} on {key[1]}: within 1 % of its best ratio {best:.3f} from level "
                     f"{level} (" + ", ".join(f"{l}: {r:.3f}" for l, r in sorted(ratios.items()))
                     + ")" + _bound(sweep))
    if set(found) != set(limits):
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ zstd and zlib rows at three or more "
                       "levels (level-sweep)")
    ok = all(max(found[codec]) <= limit for codec, limit in limits.items())
    return Finding(claim, REPRODUCED if ok else REFUTED, "; ".join(lines))


def blocksize(frame, l2_bytes: int | None) -> Finding:
    claim = "blocks >= 512 KB compress best and L2-sized blocks are fastest"
    rows = _mrcz(_prefer(frame, "Fig. 2d"))
    rows = rows[rows["blocksize"].fillna(0) > 0]
    ratio_ok, speed_ok, lines = [], [], []
    for key, sweep in _sweeps(rows, "blocksize"):
        if sweep["blocksize"].nunique() < 3:
            continue
        ratios = {int(b): _median(g["ratio"]) for b, g in sweep.groupby("blocksize")}
        best = min(ratios.values())
        big_best = min((r for b, r in ratios.items() if b >= 512 * 1024), default=math.inf)
        ratio_ok.append(big_best <= best * (1 + SATURATED))
        line = (f"{key[2]} on {key[1]}: best ratio {best:.3f}, best at >= 512 KiB "
                f"{big_best:.3f}{_bound(sweep)}")
        speeds = _speeds_by(_timed(sweep), "blocksize")
        if speeds and len(speeds[1]) >= 3:
            fastest = max(speeds[1], key=speeds[1].get)
            line += f"; fastest {speeds[0]} at {fastest // 1024} KiB"
            if l2_bytes:
                speed_ok.append(l2_bytes / 2 <= fastest <= l2_bytes * 2)
        lines.append(line)
    if not ratio_ok:
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ rows at three or more block sizes "
                       "(blocksize-sweep)")
    l2 = f"L2 cache {l2_bytes // 1024} KiB (fastest counts as L2-sized within a factor 2). " \
        if l2_bytes else ""
    evidence = l2 + "; ".join(lines)
    if not all(ratio_ok) or (speed_ok and not all(speed_ok)):
        return Finding(claim, REFUTED, evidence)
    if not speed_ok:
        why = "the L2 cache size was not recorded" if not l2_bytes else QUICK_REASON
        return Finding(claim, NOT_MEASURABLE, f"the ratio half holds; the speed half is not "
                       f"measurable: {why}. " + evidence)
    return Finding(claim, REPRODUCED, evidence)


def thread_scaling(frame, physical_cores: int | None) -> Finding:
    claim = "thread scaling about 0.7 N up to the physical cores"
    rows = _mrcz(_prefer(frame, "Fig. 2c"))
    lines, efficiencies, quick_only = [], [], False
    for key, sweep in _sweeps(rows, "threads"):
        threads = set(sweep["threads"].dropna().astype(int))
        top = max((t for t in threads if physical_cores is None or t <= physical_cores), default=0)
        if 1 not in threads or top < 2:
            continue
        speeds = _speeds_by(_timed(sweep), "threads")
        per = {int(t): s for t, s in speeds[1].items()} if speeds else {}
        if 1 not in per or top not in per:
            quick_only = True
            continue
        efficiency = per[top] / (top * per[1])
        efficiencies.append(efficiency)
        lines.append(f"{key[2]} {speeds[0]} on {key[1]}: {per[1]:,.0f} MiB/s at 1 thread, "
                     f"{per[top]:,.0f} at {top} = {efficiency:.2f} x N")
    if not efficiencies:
        return Finding(claim, NOT_MEASURABLE, QUICK_REASON if quick_only else
                       "needs MRCZ rows at 1 thread and at 2 or more threads up to the physical "
                       "cores (thread-sweep)")
    ok = min(efficiencies) >= PAPER_SCALING - SCALING_TOLERANCE
    cores = f"{physical_cores} physical cores" if physical_cores else "physical cores unknown"
    return Finding(claim, REPRODUCED if ok else REFUTED,
                   f"{cores}; at least {PAPER_SCALING - SCALING_TOLERANCE:.1f} x N counts; "
                   + "; ".join(lines))


def low_dose_size(frame) -> Finding:
    claim = "10 frames of 4k x 4k at 0.1 e/px/frame compress to about 13 MB"
    rows = _mrcz(_prefer(frame, "Fig. 2a"))
    rows = rows[((rows["dose"] - 0.1).abs() < 1e-9) & rows["dtype"].isin(["int8", "uint8"])]
    if rows.empty:
        return Finding(claim, NOT_MEASURABLE, "needs 8-bit MRCZ rows at dose 0.1 (dose-sweep)")
    per_label = {label: _median(g["ratio"]) for label, g in rows.groupby("label")}
    best = min(per_label, key=per_label.get)
    scale = 10 * 4096 * 4096 / 2 ** 20
    size_mib = per_label[best] * scale
    bound = _median(rows["bound_ratio"]) * scale
    ok = abs(size_mib / PAPER_LOW_DOSE_MIB - 1) <= LOW_DOSE_TOLERANCE
    return Finding(claim, REPRODUCED if ok else REFUTED,
                   f"best measured, {best}: ratio {per_label[best]:.4f} -> {size_mib:.1f} MiB for "
                   f"10 x 4096 x 4096 int8 (Shannon bound {bound:.1f} MiB; paper 13 MB = "
                   f"{PAPER_LOW_DOSE_MIB:.1f} MiB; within "
                   f"{LOW_DOSE_TOLERANCE:.0%} counts)")


def decimation(frame) -> Finding:
    claim = ("at 1 e/px/frame, decimation to integer counts plus compression cut storage and "
             "read/write time about 10x against float32")
    counts = frame[(frame["format"] == "gain-counts") & (frame["dtype"] == "float32")]
    if counts.empty:
        return Finding(claim, NOT_MEASURABLE, "needs the gain-recovery suite (gain-normalised "
                       "float32 movies stored as recovered counts, format gain-counts)")
    ratios = {label: _median(g["ratio"]) for label, g in counts.groupby("label")}
    best = min(ratios, key=ratios.get)
    storage = 1 / ratios[best]  # raw = the float32 movie, uncompressed
    part = _timed(counts[counts["label"] == best])
    plain = _timed(frame[(frame["format"] == "mrc") & (frame["dtype"] == "float32")
                         & frame["dataset"].isin(counts["dataset"].unique())])
    times = []
    for op in ("write", "read_warm", "read_cold"):
        a, b = plain[plain["op"] == op]["seconds"], part[part["op"] == op]["seconds"]
        if len(a) and len(b):
            times.append(f"{op} {_median(a) / _median(b):.1f}x faster")
    dose = _median(counts["dose"])
    least = PAPER_DECIMATION * (1 - LOW_DOSE_TOLERANCE)
    ok = storage >= least
    return Finding(claim, REPRODUCED if ok else REFUTED,
                   f"{best} on {', '.join(sorted(counts['dataset'].unique()))} (dose "
                   f"{dose:g}): ratio {ratios[best]:.3f} of the float32 movie = storage cut "
                   f"{storage:.1f}x ({least:g}x and more counts as about {PAPER_DECIMATION:g}x); "
                   + (", ".join(times) + " than plain float32 MRC" if times else
                      "no plain float32 MRC timings beside it: the time half is not measured"))


def check_all(frame, l2_bytes: int | None = None, physical_cores: int | None = None) -> list[Finding]:
    """Every claim against normalised result rows (results.normalise_rows)."""
    rows = _usable(frame)
    checks: list[Callable[[], Finding]] = [
        lambda: codecs_best(rows), lambda: level_saturation(rows),
        lambda: blocksize(rows, l2_bytes), lambda: thread_scaling(rows, physical_cores),
        lambda: low_dose_size(rows), lambda: decimation(rows)]
    return [check() for check in checks]


def check_results(results) -> list[Finding]:
    """check_all on loaded results (analysis.results.LoadedResults), with the L2 cache and the
    physical cores of the machine their run.json recorded."""
    return check_all(results.rows, results.machine.l2_bytes, results.machine.physical_cores)
