"""The report's figures: the MRCZ paper's Fig. 2a-d and Fig. 3, ratio vs speed with the
Pareto front, and link throughput. Each builder takes the loaded results (for the footer: machine,
date, suites) and a case table (stats.case_table) and returns a matplotlib Figure, or None
when the data does not support the figure. matplotlib is imported inside the builders."""
from __future__ import annotations

import math
from typing import Any

from mrczbench.analysis.report.about import WATERMARK, figure_mark
from mrczbench.analysis.report.links import LINK_RANGE_GBIT, link_throughput, pareto_front
from mrczbench.analysis.report.select import (FIG3, declared, first_op, link_contenders,
                                              speed_cases, sweep_cases, truthy)
from mrczbench.analysis.results import LoadedResults
from mrczbench.analysis.stats import DEFAULT_PRECISION, case_stats, case_table
from mrczbench.units import GBIT_IN_MIB_PER_S, MiB, format_number

FIG3_OPS = ("encode", "decode", "write", "read", "read_cold")
MAX_LINK_SERIES = 8  # more contenders than this: the link figure shows the Pareto front
# A series' look: colour i mod 10 and marker i mod 12 never repeat together before 60 series
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
MARKERS = ("o", "s", "D", "^", "v", "<", ">", "p", "P", "h", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
LEGEND_ROWS = 22  # legend entries per column before a second column starts
FLAT_RATIO = 0.45  # Fig. 2a: series never below this (plain MRC, 4-bit) leave the zoomed panel


def series_style(index: int, line: bool = True) -> dict:
    """Colour, marker (and for lines a dash pattern) of the index-th series of a figure:
    no two of the first 60 series share colour and marker."""
    style = {"color": COLOURS[index % len(COLOURS)], "marker": MARKERS[index % len(MARKERS)]}
    if line:
        style["linestyle"] = LINESTYLES[(index // len(COLOURS)) % len(LINESTYLES)]
    return style


def footer(results: LoadedResults, suites) -> str:
    """Machine, date and the suites a figure's data came from."""
    names = sorted({str(s) for s in suites if s}) or results.suites
    return f"{results.machine.describe()} · {results.machine.date} · suite {', '.join(names)}"


# A series whose median's 95 % interval is wider than its target (±5 %) is ringed: its
# median may move by more than that in the next run (the shaded band / error bar is the interval)
MISSED_LABEL = (f"missed ±{100 * DEFAULT_PRECISION:g} % target "
                f"(95 % CI of the median wider, or < 6 samples)")


def _figure(results: LoadedResults, title: str, cases, ncols: int = 1, width: float = 6.0,
            speed: bool = True):
    """A figure titled with `title` and, below it, the machine, date and suites of `cases`.
    Built from a quick run, the title says so and, when it shows speeds, a watermark too."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width * ncols + 3.0, 4.8), layout="constrained", dpi=100)
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    mark = figure_mark(results, cases)
    figure.suptitle(f"{title}{chr(10) + mark if mark else ''}\n"
                    f"{footer(results, cases['suite'].unique())}", fontsize=10,
                    color="#b00" if mark else "black")
    for ax in axes if mark and speed else ():
        stamp = ax.text(0.5, 0.5, WATERMARK, transform=ax.transAxes, ha="center", va="center",
                        rotation=25, fontsize=22, color="#b00", alpha=0.13, zorder=0)
        stamp.set_gid("watermark")
    return figure, list(axes)


def _legend(ax) -> None:
    """One legend right of `ax`, outside the data, gathering the entries of every panel."""
    entries: dict[str, Any] = {}
    for panel in ax.figure.axes:
        for handle, label in zip(*panel.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if MISSED_LABEL in entries:  # the flag explains the red rings: list it last
        entries[MISSED_LABEL] = entries.pop(MISSED_LABEL)
    if entries:
        columns = math.ceil(len(entries) / LEGEND_ROWS)
        rows = math.ceil(len(entries) / columns)
        width, height = ax.figure.get_size_inches()
        # tall legends get a taller figure instead of squashing the axes
        ax.figure.set_size_inches(width + 2.2 * (columns - 1), max(height, 1.6 + 0.17 * rows))
        ax.legend(entries.values(), entries.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  fontsize=8, frameon=False, ncols=columns)


def _plot_series(ax, x, y, label, missed=None, lo=None, hi=None, **style):
    """One data series (gid 'series'); the band of the medians' 95 % intervals when given;
    points that missed their precision target ringed in red (gid 'missed'; _legend keeps one
    legend entry for all rings)."""
    style = {"marker": "o", "markersize": 4, "markeredgewidth": 0.6, **style}
    line, = ax.plot(x, y, label=label, **style)
    line.set_gid("series")
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    if lo is not None and hi is not None:
        band = ax.collections[-1]
        band.set_gid("ci")
    if missed is not None and any(missed):
        xs = [a for a, bad in zip(x, missed) if bad]
        ys = [b for b, bad in zip(y, missed) if bad]
        ring = ax.scatter(xs, ys, s=110, facecolors="none", edgecolors="red", linewidths=1.2,
                          label=MISSED_LABEL, zorder=5)
        ring.set_gid("missed")
    return line


def _dose_panel(ax, cases, names, styles) -> None:
    for name in names:
        part = cases[cases["series"] == name].groupby("dose")["ratio"].median()
        _plot_series(ax, part.index.to_numpy(), part.to_numpy(), name, **styles[name])
    bound = cases.groupby("dose")["bound_ratio"].median().dropna()
    if len(bound):
        line, = ax.plot(bound.index, bound.to_numpy(), color="black", linestyle="--",
                        linewidth=1.5, label="Shannon bound (i.i.d. entropy)")
        line.set_gid("reference")
    doses = sorted(cases["dose"].unique())
    ax.set_xscale("log")
    ax.set_xticks(doses, [format_number(d) for d in doses])
    ax.xaxis.set_minor_locator(_null_locator())
    ax.set_xlim(doses[0] / 1.15, doses[-1] * 1.15)
    ax.set_xlabel("dose (e⁻/px/frame, at the swept doses)")
    ax.grid(True, which="major", alpha=0.3)


def _null_locator():
    from matplotlib.ticker import NullLocator
    return NullLocator()


def figure_dose(results: LoadedResults, cases):
    """Fig. 2a: ratio vs dose per contender, with the Shannon bound; x ticks at the swept
    doses. When some series never compress below FLAT_RATIO (plain MRC, 4-bit packing), a
    second panel leaves them out so the 0.05-0.5 band where the codecs differ is readable."""
    cases = sweep_cases(cases, "dose")
    if cases.empty:
        return None
    names = sorted(cases["series"].unique())
    styles = {name: series_style(i) for i, name in enumerate(names)}
    lowest = cases.groupby("series")["ratio"].min()
    close = [name for name in names if lowest[name] < FLAT_RATIO]
    zoom = bool(close) and len(close) < len(names)
    figure, axes = _figure(results, "Fig. 2a — compression ratio vs dose", cases,
                           ncols=2 if zoom else 1, width=4.8 if zoom else 6.0, speed=False)
    _dose_panel(axes[0], cases, names, styles)
    axes[0].set_ylabel("compression ratio (stored/raw, lower is better)")
    if zoom:
        _dose_panel(axes[1], cases[cases["series"].isin(close)], close, styles)
        axes[1].set_title("without the series that stay above "
                          f"{FLAT_RATIO:g} ({', '.join(sorted(set(names) - set(close)))})",
                          fontsize=8)
        axes[1].set_ylabel("compression ratio (stored/raw), zoomed")
    _legend(axes[-1])
    return figure


def _styles(cases) -> dict:
    return {name: series_style(i) for i, name in enumerate(sorted(cases["series"].unique()))}


def _speed_panel(ax, cases, x_column: str, op: str) -> None:
    styles = _styles(cases)
    for name, part in cases.groupby("series", sort=True):
        part = part.groupby(x_column).agg(
            mibs=(f"{op}_mibs", "median"), lo=(f"{op}_ci_lo_mibs", "median"),
            hi=(f"{op}_ci_hi_mibs", "median"), missed=(f"{op}_missed", "any")).dropna(
                subset=["mibs"])
        if len(part):
            # no interval (< 6 samples): the band shrinks to the median there
            lo = part["lo"].fillna(part["mibs"]).to_numpy()
            hi = part["hi"].fillna(part["mibs"]).to_numpy()
            _plot_series(ax, part.index.to_numpy(), part["mibs"].to_numpy(), name,
                         missed=part["missed"].astype(bool).tolist(), lo=lo, hi=hi, **styles[name])


def _ratio_and_speed_figure(results: LoadedResults, title: str, cases, x_column: str):
    """Ratio per series vs `x_column` in the left panel and, when the cases have one, the
    compression (or write) speed in the right panel (Fig. 2b and 2d share this layout)."""
    op = first_op(cases, "encode", "write")
    figure, axes = _figure(results, title, cases, ncols=2 if op else 1, width=4.8,
                           speed=bool(op))
    styles = _styles(cases)
    for name, part in cases.groupby("series", sort=True):
        part = part.groupby(x_column)["ratio"].median()
        _plot_series(axes[0], part.index.to_numpy(), part.to_numpy(), name, **styles[name])
    axes[0].set_ylabel("compression ratio (stored/raw)")
    if op:
        _speed_panel(axes[1], cases, x_column, op)
        axes[1].set_ylabel(f"{'compression' if op == 'encode' else 'write'} speed (MiB/s raw)")
    return figure, axes, op


def figure_level(results: LoadedResults, cases):
    """Fig. 2b: ratio vs compression level (and the compression speed it costs)."""
    cases = sweep_cases(cases, "level")
    if cases.empty:
        return None
    figure, axes, op = _ratio_and_speed_figure(
        results, "Fig. 2b — compression ratio and speed vs level", cases, "level")
    if op:
        from matplotlib.ticker import FuncFormatter
        axes[1].set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")  # 400, not 4 x 10^2
        axes[1].yaxis.set_major_formatter(plain)
        axes[1].yaxis.set_minor_formatter(plain)
    for ax in axes:
        ax.set_xlabel("compression level (codec effort, 1 = fastest)")
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[-1])
    return figure


def _mark_cores(ax, cores: int | None, threads) -> None:
    """Dashed line at the physical cores; beyond it a grey band saying that those points
    measure oversubscription (more threads than cores), not scaling."""
    top, low = threads.max(), threads.min()
    ax.set_xlim(low - 0.3, top + 0.3)
    if not cores:
        return
    mark = ax.axvline(cores, color="black", linestyle="--", linewidth=1,
                      label=f"{cores} physical cores (grey beyond: oversubscribed)")
    mark.set_gid("reference")
    if top > cores:
        ax.axvspan(cores, top + 0.3, color="grey", alpha=0.12, linewidth=0)
        note = ax.text((cores + top + 0.3) / 2, 0.02, "oversubscription:\nmore threads than cores",
                       transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                       fontsize=7, color="#444")
        note.set_gid("oversubscription")


def figure_threads(results: LoadedResults, cases):
    """Fig. 2c: MiB/s vs threads, compress and decompress, physical cores marked."""
    cases = sweep_cases(cases, "threads")
    ops = [op for op in (first_op(cases, "encode", "write"), first_op(cases, "decode", "read_warm"))
           if op]
    if cases.empty or not ops:
        return None
    figure, axes = _figure(results, "Fig. 2c — throughput vs threads", cases, ncols=len(ops), width=4.8)
    names = {"encode": "compression", "decode": "decompression", "write": "write",
             "read_warm": "read (warm)"}
    for ax, op in zip(axes, ops):
        _speed_panel(ax, cases, "threads", op)
        _mark_cores(ax, results.machine.physical_cores, cases["threads"])
        ax.set_xlabel("threads (count)")
        ax.set_ylabel(f"{names[op]} speed (MiB/s raw)")
        ax.set_title(names[op], fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    _legend(axes[-1])
    return figure


def figure_blocksize(results: LoadedResults, cases):
    """Fig. 2d: ratio and compression speed vs blocksize, L2/L3 cache sizes marked."""
    from matplotlib.ticker import FuncFormatter
    cases = sweep_cases(cases, "blocksize")
    if cases.empty:
        return None
    cases = cases.assign(blocksize_kib=cases["blocksize"] / 1024)
    figure, axes, _ = _ratio_and_speed_figure(
        results, "Fig. 2d — compression ratio and speed vs blocksize", cases, "blocksize_kib")
    low, high = cases["blocksize_kib"].min(), cases["blocksize_kib"].max()
    for ax in axes:
        for size, name, style in ((results.machine.l2_bytes, "L2", "--"),
                                  (results.machine.l3_bytes, "L3", ":")):
            if not size:
                continue
            if low / 2 <= size / 1024 <= high * 2:
                mark = ax.axvline(size / 1024, color="black", linestyle=style, linewidth=1,
                                  label=f"{name} cache {size / 1024:g} KiB")
                mark.set_gid("reference")
            else:  # the axis ends near the data: a cache far off it is named, not drawn
                ax.plot([], [], " ", label=f"{name} cache {size / 1024:g} KiB (off the axis)")
        ax.set_xscale("log", base=2)
        ax.set_xlim(low / 1.4, high * 1.4)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xlabel("blosc blocksize (KiB)")
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[-1])
    return figure


def figure_metadata(results: LoadedResults, cases):
    """Fig. 3: metadata serialisation, time per operation and size on disk per method."""
    import numpy as np
    from matplotlib.patches import Patch
    cases = declared(cases, FIG3)
    # the paper's Fig. 3 shows write and read; serialise-only times (encode/decode) beside them
    # tell the format's cost from the disk's. The other ops are in the tables.
    ops = [op for op in FIG3_OPS if f"{op}_s" in cases.columns and cases[f"{op}_s"].notna().any()]
    if cases.empty or not ops:
        return None
    by_method = cases.groupby("label", sort=True)
    methods = list(by_method.groups)
    figure, (ax_time, ax_size) = _figure(results, "Fig. 3 — metadata serialisation", cases, ncols=2,
                                         width=max(4.0, 0.6 * len(methods)))
    x = np.arange(len(methods))
    width = 0.8 / len(ops)
    handles = []
    any_missed = False
    for i, op in enumerate(ops):
        seconds = by_method[f"{op}_s"].median().reindex(methods).to_numpy() * 1000
        half = by_method[f"{op}_pm_s"].median().reindex(methods).to_numpy() * 1000
        missed = by_method[f"{op}_missed"].any().reindex(methods).fillna(False).to_numpy()
        bars = ax_time.bar(x + (i - (len(ops) - 1) / 2) * width, seconds, width, label=op,
                           yerr=np.nan_to_num(half), capsize=2, error_kw={"linewidth": 0.8})
        handles.append(Patch(facecolor=bars.patches[0].get_facecolor(), label=op))
        for bar, bad in zip(bars, missed):
            if bad:
                bar.set_hatch("///")
                bar.set_edgecolor("red")
                any_missed = True
    if any_missed:
        handles.append(Patch(facecolor="white", edgecolor="red", hatch="///", label=MISSED_LABEL))
    sizes = by_method["stored_bytes"].median().reindex(methods).to_numpy() / MiB
    ax_size.bar(x, sizes, 0.6, color="tab:grey")
    ax_time.set_ylabel("time per operation (ms)")
    ax_size.set_ylabel("size on disk (MiB)")
    for ax in (ax_time, ax_size):
        ax.set_xticks(x, methods, rotation=35, ha="right", fontsize=8)
        ax.set_xlabel("serialisation method (+ compression)")
        ax.grid(True, axis="y", alpha=0.3)
    # explicit handles: a container's own handle would copy its first bar's unstable hatching
    ax_size.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                   frameon=False)
    return figure


# Ratio vs speed (the paper's Fig. 2 reading): colour = codec family, marker = level, size =
# threads, so a sweep of 3 codecs x 9 levels x N threads needs 12 + N legend keys, not 27 N
FAMILY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                  "tab:pink", "tab:gray", "tab:olive", "tab:cyan", "navy", "darkgoldenrod",
                  "lime", "maroon", "magenta", "teal", "black", "salmon", "slateblue", "yellowgreen")


def _family(case) -> str:
    """The codec family of a case: its format, and the codec when it names one."""
    codec = case.get("codec")
    fmt = str(case.get("format") or case.get("label"))
    return f"{fmt} {codec}" if isinstance(codec, str) and codec and codec != fmt else fmt


def _level_key(case) -> str:
    level = case.get("level")
    return f"level {int(level)}" if level is not None and level == level else "no level"


def _thread_count(case) -> int:
    threads = case.get("threads")
    return int(threads) if threads is not None and threads == threads else 1


def _scatter_keys(cases) -> tuple[dict, list]:
    """name -> scatter style (colour by family, marker by level, size by threads), and the
    legend's key entries (handles are drawn by _scatter_legend)."""
    rows = cases.drop_duplicates("name")
    families = sorted({_family(r) for _, r in rows.iterrows()})
    levels = sorted({_level_key(r) for _, r in rows.iterrows()},
                    key=lambda k: (k == "no level", int(k.split()[1]) if k != "no level" else 0))
    threads = sorted({_thread_count(r) for _, r in rows.iterrows()})
    colour = {f: FAMILY_COLOURS[i % len(FAMILY_COLOURS)] for i, f in enumerate(families)}
    marker = {lv: MARKERS[i % len(MARKERS)] for i, lv in enumerate(levels)}
    size = {t: 30.0 * (1 + math.log2(t)) if len(threads) > 1 else 36.0 for t in threads}
    styles = {r["name"]: {"color": colour[_family(r)], "marker": marker[_level_key(r)],
                          "s": size[_thread_count(r)]} for _, r in rows.iterrows()}
    keys = ([("family", f, {"color": colour[f], "marker": "s"}) for f in families]
            + [("level", lv, {"color": "dimgray", "marker": marker[lv]}) for lv in levels]
            + ([("threads", f"{t} thread{'s' if t > 1 else ''}",
                 {"color": "dimgray", "marker": "o", "s": size[t]}) for t in threads]
               if len(threads) > 1 else []))
    return styles, keys


def _scatter_legend(ax, keys: list) -> None:
    """The keys (colour = codec family, marker = level, size = threads), the Pareto front and
    the unstable ring: one legend right of `ax`."""
    from matplotlib.lines import Line2D
    handles, labels = [], []
    for kind, label, style in keys:
        size = math.sqrt(style.get("s", 36.0))
        handles.append(Line2D([], [], linestyle="none", marker=style["marker"],
                              color=style["color"], markersize=size))
        labels.append(label)
    for panel in ax.figure.axes:  # the front and the ring, once
        for handle, label in zip(*panel.get_legend_handles_labels()):
            if label not in labels and label.startswith(("Pareto", MISSED_LABEL)):
                handles.append(handle)
                labels.append(label)
    columns = math.ceil(len(handles) / LEGEND_ROWS)
    width, height = ax.figure.get_size_inches()
    ax.figure.set_size_inches(width + 2.2 * (columns - 1),
                              max(height, 1.6 + 0.17 * math.ceil(len(handles) / columns)))
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
              frameon=False, ncols=columns, title="colour: codec · marker: level"
              + (" · size: threads" if any(k[0] == "threads" for k in keys) else ""),
              title_fontsize=8)


def _scatter_panel(ax, cases, op: str, styles: dict) -> None:
    """Ratio vs speed points per name with the 95 % interval of each speed as a horizontal
    bar, the ones that missed their target ringed, and the Pareto front with each of its
    points named."""
    for name, part in cases.groupby("name", sort=True):
        points = ax.scatter(part[f"{op}_mibs"], part["ratio"], label=name, **styles[name])
        points.set_gid("series")
        speed = part[f"{op}_mibs"]
        low = (speed - part[f"{op}_ci_lo_mibs"]).clip(lower=0).fillna(0)
        high = (part[f"{op}_ci_hi_mibs"] - speed).clip(lower=0).fillna(0)
        bars = ax.errorbar(speed, part["ratio"], xerr=[low.to_numpy(), high.to_numpy()],
                           fmt="none", ecolor=styles[name].get("color", "grey"), elinewidth=0.8,
                           alpha=0.7)
        bars[2][0].set_gid("ci") if bars[2] else None
        bad = part[part[f"{op}_missed"].fillna(True).astype(bool)]
        if len(bad):
            ring = ax.scatter(bad[f"{op}_mibs"], bad["ratio"], s=140, facecolors="none",
                              edgecolors="red", linewidths=1.2, zorder=5, label=MISSED_LABEL)
            ring.set_gid("missed")
    speed, ratio = cases[f"{op}_mibs"].tolist(), cases["ratio"].tolist()
    front = pareto_front(speed, ratio)
    line, = ax.plot([speed[i] for i in front], [ratio[i] for i in front], color="black",
                    linewidth=1, linestyle="-", label="Pareto front (nothing both faster and smaller)")
    line.set_gid("front")
    names = cases["name"].tolist()
    for i in front:  # the front's contenders by name: the ones a reader looks for
        text = ax.annotate(names[i], (speed[i], ratio[i]), xytext=(4, 3),
                           textcoords="offset points", fontsize=6)
        text.set_gid("front-label")
    from matplotlib.ticker import NullFormatter
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # a narrow log axis would label every minor tick
    ax.set_xlabel(f"{'compression' if op == 'encode' else 'write'} speed (MiB/s raw, log)")
    ax.grid(True, which="both", alpha=0.3)


def figure_scatter(results: LoadedResults, cases):
    """Ratio vs compression speed per case, with the Pareto front; when some contenders stay
    above FLAT_RATIO (plain MRC, 4-bit), a second panel shows the others' band alone."""
    cases, op, dataset = speed_cases(cases)
    if len(cases) < 2:
        return None
    several_threads = cases["threads"].nunique() > 1
    cases = cases.assign(name=cases["label"] + cases["threads"].map(
        lambda t: f" ({int(t)} thread{'s' if t > 1 else ''})" if several_threads and t == t else ""))
    styles, keys = _scatter_keys(cases)
    close = cases[cases["ratio"] < FLAT_RATIO]
    zoom = 2 <= len(close) < len(cases)
    figure, axes = _figure(results, f"Ratio vs {'compression' if op == 'encode' else 'write'} "
                                    f"speed — dataset {dataset}", cases,
                           ncols=2 if zoom else 1, width=4.8 if zoom else 6.0)
    _scatter_panel(axes[0], cases, op, styles)
    axes[0].set_ylabel("compression ratio (stored/raw, lower is better)")
    if zoom:
        _scatter_panel(axes[1], close, op, styles)
        axes[1].set_title(f"contenders below ratio {FLAT_RATIO:g} only", fontsize=8)
        axes[1].set_ylabel("compression ratio (stored/raw), zoomed")
    _scatter_legend(axes[-1], keys)
    return figure


def figure_links(results: LoadedResults, cases):
    """Effective throughput of compress + transfer + decompress over 0.1-10 Gbit/s links."""
    import numpy as np
    cases, encode_op, decode_op, dataset = link_contenders(cases)
    if cases.empty:
        return None
    cases = cases.assign(name=cases["label"])
    if len(cases) > MAX_LINK_SERIES:
        front = pareto_front(cases[f"{encode_op}_mibs"].tolist(), cases["ratio"].tolist())
        cases = cases.iloc[front]
        note = " (Pareto-front contenders)"
    else:
        note = ""
    if cases["name"].duplicated().any():
        cases["name"] = cases["name"] + " (" + cases["threads"].map(format_number) + " threads)"
    gbit = np.logspace(math.log10(LINK_RANGE_GBIT[0]), math.log10(LINK_RANGE_GBIT[1]), 60)
    link_mibs = gbit * GBIT_IN_MIB_PER_S
    figure, (ax,) = _figure(results, f"When does compression pay?\ncompress + transfer + "
                                     f"decompress — dataset {dataset}{note}", cases)
    raw, = ax.plot(gbit, link_mibs, color="black", linestyle="--", linewidth=1.5,
                   label="send raw (no compression)")
    raw.set_gid("reference")
    for i, (_, case) in enumerate(cases.sort_values("name").iterrows()):
        throughput = link_throughput(case[f"{encode_op}_mibs"], case[f"{decode_op}_mibs"],
                                     case["ratio"], link_mibs)
        missed = truthy(case.get(f"{encode_op}_missed")) or truthy(case.get(f"{decode_op}_missed"))
        # a curve has no single point to ring: an input that missed its target dots the line
        # instead; a marker every 10 points tells curves of the same colour apart
        style = series_style(i)
        _plot_series(ax, gbit, throughput, case["name"] + (" (missed target)" if missed else ""),
                     color=style["color"], marker=style["marker"], markevery=10,
                     linestyle=":" if missed else style["linestyle"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*LINK_RANGE_GBIT)
    ax.set_xlabel("link speed (Gbit/s, 1 Gbit = 10⁹ bit)")
    ax.set_ylabel("effective throughput (MiB/s of raw data)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return figure


FIGURES = {
    "fig2a_ratio_vs_dose": figure_dose,
    "fig2b_ratio_vs_level": figure_level,
    "fig2c_speed_vs_threads": figure_threads,
    "fig2d_blocksize": figure_blocksize,
    "fig3_metadata": figure_metadata,
    "ratio_vs_speed": figure_scatter,
    "link_throughput": figure_links,
}


def make_figures(results: LoadedResults, cases=None) -> dict:
    """name -> matplotlib Figure, only for the figures the data supports. `cases`
    (stats.case_table of results.rows) saves computing it again when the caller has it."""
    if cases is None:
        cases = case_table(case_stats(results.rows))
    figures = {}
    if cases.empty:
        return figures
    import matplotlib
    # labels are users' strings (contender, dataset, file names): "$x$" is text, never
    # mathtext, which would raise on "$\\undefinedmacro{$" when the figure is drawn
    with matplotlib.rc_context({"text.parse_math": False}):
        for name, build in FIGURES.items():
            figure = build(results, cases)
            if figure is not None:
                figures[name] = figure
    return figures


CAPTIONS = {
    "fig2a_ratio_vs_dose": "Compression ratio (stored/raw) vs dose per contender; the dashed line "
                           "is the Shannon bound of i.i.d. counts (no lossless coder goes below). "
                           "Ticks sit at the swept doses; where plain or 4-bit MRC are shown, the "
                           "right panel leaves them out to show the codecs' band.",
    "fig2b_ratio_vs_level": "Compression ratio and compression speed vs codec level.",
    "fig2c_speed_vs_threads": "Throughput vs threads; dashed line = the machine's physical cores. "
                              "Points in the grey band run more threads than physical cores: "
                              "they measure oversubscription, not scaling. Bands are p10–p90.",
    "fig2d_blocksize": "Compression ratio and speed vs blosc blocksize; dashed = L2, dotted = L3.",
    "fig3_metadata": "Metadata serialisation: time per operation and size on disk per method.",
    "ratio_vs_speed": "Ratio vs compression speed; colour = codec, marker = level, size = "
                      "threads (as in the paper's Fig. 2); the black line joins the Pareto front "
                      "(no other contender is both faster and smaller), whose contenders are "
                      "named.",
    "link_throughput": "Raw data moved per second when compressing, sending the stored bytes and "
                       "decompressing one after the other, vs sending raw (dashed). Compression "
                       "pays where a line is above the dashed one. Dotted: timings that missed the ±5 % target.",
}
