"""The MRCZ paper's claims (McLeod et al. 2017), checked against the result rows a report is
given: each claim gets the numbers that bear on it and a verdict, `reproduced`, `refuted` or
`not measurable here` (with the reason: the rows it needs are missing).

Every check reads only valid, lossless, error-free rows and medians (analysis.stats); it looks
for the sweep it needs by what varies in the rows (levels, block sizes, threads, doses), not by
suite names, so a user's own runs are checked the same way. Ratios are stored/raw and are shown
beside their Shannon bound (the i.i.d. entropy of the data, `bound_ratio`)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

REPRODUCED, REFUTED, NOT_MEASURABLE = "reproduced", "refuted", "not measurable here"
SATURATED = 0.01        # a ratio within 1 % of the codec's best counts as saturated
PAPER_SCALING = 0.7     # thread efficiency the paper reports up to the physical cores
PAPER_LOW_DOSE_MIB = 13.0  # 10 x 4k x 4k at 0.1 e/px/frame (the paper's MB = MiB)
SPEED_OPS = ("encode", "write")  # compression speed: in memory, else into a file


@dataclasses.dataclass(frozen=True)
class Finding:
    claim: str
    verdict: str
    evidence: str


def _usable(frame):
    ok = frame[frame["error"].isna() & frame["valid"].astype(bool)]
    return ok[ok["lossless"].ne(False)]


def _median(series) -> float:
    from mrczbench.analysis.stats import summarise
    values = series.dropna()
    return summarise(values).median if len(values) else math.nan


def _speed(rows) -> tuple[str, Any] | None:
    """(op, rows of that op): the compression speed op measured for most rows."""
    for op in SPEED_OPS:
        part = rows[rows["op"] == op]
        if len(part):
            return op, part
    return None


def _mrcz(frame, **fixed):
    rows = frame[frame["format"] == "mrcz"]
    for key, value in fixed.items():
        rows = rows[rows[key] == value]
    return rows


def codecs_best(frame) -> Finding:
    claim = "zstd gives the best ratio and lz4 the fastest speed among blosc codecs"
    rows = _mrcz(frame)
    rows = rows[rows["codec"].isin(["zstd", "lz4", "zlib", "blosclz", "lz4hc"])]
    verdicts, lines = [], []
    for (dataset, dose), at_dose in rows.groupby(["dataset", "dose"]):
        level1 = at_dose[(at_dose["level"] == 1) & (at_dose["filter"].fillna("bitshuffle") == "bitshuffle")]
        if level1["codec"].nunique() < 2:
            continue
        threads = level1["threads"].max()
        level1 = level1[level1["threads"] == threads]
        ratios = {c: _median(g["ratio"]) for c, g in level1.groupby("codec")}
        speed = _speed(level1)
        speeds = {c: _median(g["mib_per_s"]) for c, g in speed[1].groupby("codec")} if speed else {}
        best_ratio = min(ratios, key=ratios.get)
        fastest = max(speeds, key=speeds.get) if speeds else None
        bound = _median(level1["bound_ratio"])
        verdicts.append(best_ratio == "zstd" and fastest in ("lz4", None))
        lines.append(f"{dataset} (dose {dose:g}): ratio " + ", ".join(f"{c} {r:.3f}" for c, r in sorted(ratios.items(), key=lambda i: i[1]))
                     + f" (bound {bound:.3f})" + (f"; {speed[0]} MiB/s " + ", ".join(
                         f"{c} {s:,.0f}" for c, s in sorted(speeds.items(), key=lambda i: -i[1])) if speeds else ""))
    if not verdicts:
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ rows of two or more codecs at level 1 "
                       "(dose-sweep or thread-sweep)")
    return Finding(claim, REPRODUCED if all(verdicts) else REFUTED,
                   f"level 1, bitshuffle, most threads measured. " + "; ".join(lines))


def level_saturation(frame) -> Finding:
    claim = "zstd's ratio saturates by level 2-3 and zlib's by 4-5"
    found, lines = {}, []
    for codec in ("zstd", "zlib"):
        rows = _mrcz(frame, codec=codec)
        rows = rows[rows["filter"].fillna("bitshuffle") == "bitshuffle"]
        for dose, at_dose in rows.groupby("dose"):
            ratios = {int(l): _median(g["ratio"]) for l, g in at_dose.groupby("level")}
            if len(ratios) < 3:
                continue
            best = min(ratios.values())
            level = min(l for l, r in ratios.items() if r <= best * (1 + SATURATED))
            found.setdefault(codec, []).append(level)
            lines.append(f"{codec} at dose {dose:g}: within 1 % of its best ratio {best:.3f} from "
                         f"level {level} (levels " + ", ".join(f"{l}: {r:.3f}" for l, r in sorted(ratios.items())) + ")")
    if set(found) != {"zstd", "zlib"}:
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ zstd and zlib rows at three or more "
                       "levels (level-sweep)")
    ok = max(found["zstd"]) <= 3 and max(found["zlib"]) <= 5
    return Finding(claim, REPRODUCED if ok else REFUTED, "; ".join(lines))


def blocksize(frame, l2_bytes: int | None) -> Finding:
    claim = "blocks >= 512 KB compress best and L2-sized blocks are fastest"
    rows = _mrcz(frame)
    rows = rows[rows["blocksize"].fillna(0) > 0]
    checks, lines = [], []
    for codec, by_codec in rows.groupby("codec"):
        if by_codec["blocksize"].nunique() < 3:
            continue
        ratios = {int(b): _median(g["ratio"]) for b, g in by_codec.groupby("blocksize")}
        best = min(ratios.values())
        big_best = min((r for b, r in ratios.items() if b >= 512 * 1024), default=math.inf)
        speed = _speed(by_codec)
        speeds = {int(b): _median(g["mib_per_s"]) for b, g in speed[1].groupby("blocksize")} if speed else {}
        fastest = max(speeds, key=speeds.get) if speeds else None
        near_l2 = bool(l2_bytes and fastest and l2_bytes / 2 <= fastest <= l2_bytes * 2)
        checks.append(big_best <= best * (1 + SATURATED) and (near_l2 or l2_bytes is None))
        lines.append(f"{codec}: best ratio {best:.3f}, best at >= 512 KiB {big_best:.3f}; fastest "
                     f"block {fastest // 1024 if fastest else '?'} KiB"
                     + (f" (L2 {l2_bytes // 1024} KiB)" if l2_bytes else " (L2 size unknown)"))
    if not checks:
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ rows at three or more block sizes "
                       "(blocksize-sweep)")
    return Finding(claim, REPRODUCED if all(checks) else REFUTED, "; ".join(lines))


def thread_scaling(frame, physical_cores: int | None) -> Finding:
    claim = "thread scaling about 0.7 N up to the physical cores"
    rows = _mrcz(frame)
    lines, efficiencies = [], []
    for codec, by_codec in rows.groupby("codec"):
        speed = _speed(by_codec)
        if not speed:
            continue
        speeds = {int(t): _median(g["mib_per_s"]) for t, g in speed[1].groupby("threads")}
        top = max((t for t in speeds if physical_cores is None or t <= physical_cores), default=None)
        if 1 not in speeds or top is None or top < 2:
            continue
        efficiency = speeds[top] / (top * speeds[1])
        efficiencies.append(efficiency)
        lines.append(f"{codec} {speed[0]}: {speeds[1]:,.0f} MiB/s at 1 thread, {speeds[top]:,.0f} at "
                     f"{top} = {efficiency:.2f} x N")
    if not efficiencies:
        return Finding(claim, NOT_MEASURABLE, "needs MRCZ rows at 1 thread and at 2 or more threads "
                       "up to the physical cores (thread-sweep)")
    ok = min(efficiencies) >= PAPER_SCALING - 0.1
    cores = f"{physical_cores} physical cores" if physical_cores else "physical cores unknown"
    return Finding(claim, REPRODUCED if ok else REFUTED, f"{cores}; " + "; ".join(lines))


def low_dose_size(frame) -> Finding:
    claim = "10 frames of 4k x 4k at 0.1 e/px/frame compress to about 13 MB"
    rows = _mrcz(frame)
    rows = rows[((rows["dose"] - 0.1).abs() < 1e-9) & rows["dtype"].isin(["int8", "uint8"])]
    if rows.empty:
        return Finding(claim, NOT_MEASURABLE, "needs 8-bit MRCZ rows at dose 0.1 (dose-sweep)")
    per_label = {label: _median(g["ratio"]) for label, g in rows.groupby("label")}
    best = min(per_label, key=per_label.get)
    size_mib = per_label[best] * 10 * 4096 * 4096 / 2 ** 20
    bound = _median(rows["bound_ratio"]) * 10 * 4096 * 4096 / 2 ** 20
    ok = abs(size_mib / PAPER_LOW_DOSE_MIB - 1) <= 0.3
    return Finding(claim, REPRODUCED if ok else REFUTED,
                   f"best measured, {best}: ratio {per_label[best]:.4f} -> {size_mib:.1f} MiB for 10 x "
                   f"4096 x 4096 int8 (bound {bound:.1f} MiB; paper 13 MB; within 30 % counts)")


def decimation(frame) -> Finding:
    claim = ("at 1 e/px/frame, decimation to integer counts plus compression cut storage and "
             "read/write time about 10x against float32")
    rows = frame[frame["dtype"] == "float32"]
    plain = rows[rows["format"] == "mrc"]
    counts = rows[rows["format"] == "gain-counts"]
    if plain.empty or counts.empty:
        return Finding(claim, NOT_MEASURABLE, "needs the gain-recovery suite (float32 stored as plain "
                       "MRC and as recovered counts)")
    best = min(((label, _median(g["ratio"])) for label, g in counts.groupby("label")), key=lambda i: i[1])
    storage = _median(plain["ratio"]) / best[1]
    part = counts[counts["label"] == best[0]]
    times = []
    for op in ("write", "read_warm", "read_cold"):
        a, b = plain[plain["op"] == op]["seconds"], part[part["op"] == op]["seconds"]
        if len(a) and len(b):
            times.append(f"{op} {_median(a) / _median(b):.1f}x")
    ok = storage >= 5  # "about 10x": the paper's K2 data; Poisson data gives more or less
    return Finding(claim, REPRODUCED if ok else REFUTED,
                   f"{best[0]}: storage {storage:.1f}x smaller than plain float32 (ratio {best[1]:.3f}); "
                   + (", ".join(times) + " faster" if times else "no file timings"))


def check_all(frame, l2_bytes: int | None = None, physical_cores: int | None = None) -> list[Finding]:
    """Every claim against normalised result rows (results.normalise_rows)."""
    rows = _usable(frame)
    checks: list[Callable[[], Finding]] = [
        lambda: codecs_best(rows), lambda: level_saturation(rows),
        lambda: blocksize(rows, l2_bytes), lambda: thread_scaling(rows, physical_cores),
        lambda: low_dose_size(rows), lambda: decimation(rows)]
    return [check() for check in checks]
