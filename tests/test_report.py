"""Tests for `mrczbench report`: figures, tables and the self-contained HTML.

The result files come from a small generator that writes realistic schema-v1 rows
(docs/DESIGN.md) for every shipped suite kind, with planted trouble: an invalid cold sample,
an error row and an unstable series. Figures are built once per module (matplotlib is slow).
"""
from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from mrczbench.analysis import report, stats
from mrczbench.analysis.report import figures as report_figures
from mrczbench.analysis.report import links, paper, tables, writer
from mrczbench.analysis.results import load_result_files
from mrczbench.store import meta_path_for
from mrczbench.cli import main
from mrczbench.errors import ResultsError
from mrczbench.units import GBIT_IN_MIB_PER_S

MIB = 2**20
CPU = "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz"
CORES = 2
L2, L3 = 256 * 1024, 30 * MIB

# in-memory speeds (MiB/s, one thread) and efficiency (bound / achieved ratio) per codec
CODECS = {"lz4": (900.0, 2500.0, 0.70), "zstd": (400.0, 1500.0, 0.90), "zlib": (150.0, 600.0, 0.82)}


def poisson_bound_ratio(dose: float) -> float:
    """Shannon bound of int8 Poisson counts as stored/raw."""
    entropy, k, p = 0.0, 0, math.exp(-dose)
    while k < 60:
        if p > 0:
            entropy -= p * math.log2(p)
        k += 1
        p *= dose / k
    return entropy / 8


class RunWriter:
    """Writes `<run-id>.jsonl` + `<run-id>.run.json` the way the runner does (schema v1)."""

    def __init__(self, folder: Path, suite: str, run_id: str = "20240501T100000-abc123",
                 samples: int = 6, seed: int = 1, speed_scale: float = 1.0, figure=None,
                 profile=None, load=None):
        self.folder, self.suite, self.run_id, self.samples = folder / suite, suite, run_id, samples
        self.profile, self.load = profile, load  # run.json's profile and load_at_start
        # the suite's declared figure, as the runner copies it into run.json
        self.figure = SUITE_FIGURES.get(suite, "") if figure is None else figure
        self.random = random.Random(seed)
        self.speed_scale = speed_scale
        self.rows: list[dict] = []
        self.case_number = 0

    def case(self, *, dataset="poisson-d1", kind="poisson", dose=1.0, frames=8, ny=512, nx=512,
             dtype="int8", format="mrcz", codec="zstd", level=1, blocksize=0, threads=1,
             filter="bitshuffle", label=None, ratio=None, ops=("encode", "decode"),
             speeds=None, noise=0.02, invalid_cold=0, error=None, raw_bytes=None):
        self.case_number += 1
        case_id = f"c{self.case_number:03d}"
        itemsize = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4}[dtype]
        raw = raw_bytes or frames * ny * nx * itemsize
        bound = poisson_bound_ratio(dose) if kind == "poisson" else None
        if ratio is None and not error:
            ratio = bound / CODECS[codec][2] * (1 - 0.004 * (level - 1))
        params = {"format": format, "threads": threads}
        if codec:
            params.update(codec=codec, level=level, blocksize=blocksize, filter=filter)
        if label is None:
            label = f"{format} {codec}-{level}" if codec else format
        encode, decode, _ = CODECS.get(codec, (300.0, 600.0, 1.0))
        speeds = speeds or {"encode": encode, "decode": decode, "write": encode * 0.8,
                            "write_fsync": encode * 0.5, "read_cold": decode * 0.4,
                            "read_warm": decode * 0.9}
        base = dict(schema=1, run_id=self.run_id, suite=self.suite, case_id=case_id,
                    dataset=dataset, dataset_kind=kind, dose=dose, frames=frames, ny=ny, nx=nx,
                    dtype=dtype, format=format, codec=codec, level=level if codec else None,
                    blocksize=blocksize if codec else None, threads=threads,
                    filter=filter if codec else None, params=json.dumps(params), label=label,
                    raw_bytes=raw, stored_bytes=int(raw * ratio) if ratio else None,
                    ratio=ratio, bound_ratio=bound,
                    efficiency=bound / ratio if bound and ratio else None,
                    lossless=True, eviction="drop_caches", timestamp="2024-05-01T10:00:00Z")
        if error:
            self.rows.append({**base, "sample": 0, "op": ops[0], "seconds": None,
                              "mib_per_s": None, "loops": None, "residency": None,
                              "valid": False, "lossless": False, "error": error})
            return
        for op in ops:
            speed = speeds[op] * self.speed_scale * min(threads, CORES) ** 0.8
            for sample in range(self.samples):
                seconds = raw / MIB / speed * (1 + self.random.uniform(-noise, noise))
                cold = op == "read_cold"
                valid = not (cold and sample < invalid_cold)
                self.rows.append({**base, "sample": sample, "op": op, "seconds": seconds,
                                  "mib_per_s": raw / MIB / seconds,
                                  "loops": 1 if op.startswith(("write", "read")) else 10,
                                  "residency": (0.0 if valid else 0.93) if cold else None,
                                  "valid": valid, "error": None})

    def save(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.run_id}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in self.rows))
        meta = {"schema": 1, "run_id": self.run_id, "suite": self.suite, "figure": self.figure,
                "started": "2024-05-01T10:00:00Z",
                "machine": {"cpu_model": CPU, "physical_cores": CORES, "logical_cpus": 4,
                            "cache_sizes": {"L1d": "32K", "L1i": "32K", "L2": f"{L2 // 1024}K",
                                            "L3": f"{L3 // 1024}K"}}}  # as machine.capture()
        if self.profile:
            meta["profile"] = self.profile
        if self.load is not None:  # as bench.plan.load_at_start() records it
            meta["load_at_start"] = {"load_average": self.load, "usable_cores": CORES,
                                     "busy_threshold": 0.75 * CORES,
                                     "busy": self.load > 0.75 * CORES}
        meta_path_for(path).write_text(json.dumps(meta))
        return self.folder


FILE_OPS = ("encode", "decode", "write", "write_fsync", "read_cold", "read_warm")


def write_suite(folder: Path, suite: str) -> Path:
    run = RunWriter(folder, suite, run_id=f"20240501T1{SUITES.index(suite):05d}Z-abc123")
    if suite == "dose-sweep":
        for dose in (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0):
            for codec in CODECS:
                run.case(dataset=f"poisson-d{dose:g}", dose=dose, codec=codec, threads=2)
    elif suite == "level-sweep":
        for codec in CODECS:
            for level in range(1, 10):
                run.case(codec=codec, level=level, threads=2,
                         speeds={"encode": CODECS[codec][0] / level ** 0.5,
                                 "decode": CODECS[codec][1]})
    elif suite == "thread-sweep":
        for codec in CODECS:
            for threads in (1, 2, 3):
                # planted unstable series: zlib at 2 threads, +-30 % noise
                noise = 0.3 if (codec, threads) == ("zlib", 2) else 0.02
                run.case(codec=codec, threads=threads, noise=noise)
    elif suite == "blocksize-sweep":
        for codec in ("lz4", "zstd"):
            for blocksize in (0, 16384, 65536, 262144, 1 << 20, 4 << 20):
                size_penalty = 1 + 0.05 * max(0.0, math.log2((1 << 20) / max(blocksize, 16384))) / 6
                speed_penalty = 1 + abs(math.log2(max(blocksize, 16384) / L2)) / 4
                run.case(codec=codec, blocksize=blocksize, threads=2,
                         ratio=poisson_bound_ratio(1.0) / CODECS[codec][2] * size_penalty,
                         speeds={"encode": CODECS[codec][0] / speed_penalty,
                                 "decode": CODECS[codec][1] / speed_penalty})
    elif suite == "table1":
        paper = dict(frames=60, ny=3838, nx=3710)  # the paper's stack: beside its numbers
        run.case(format="mrc", codec=None, ratio=1.0, ops=FILE_OPS[2:], **paper,
                 speeds={"write": 800.0, "write_fsync": 300.0, "read_cold": 250.0,
                         "read_warm": 3000.0})
        run.case(format="mrc-uint4", codec=None, ratio=0.5, ops=FILE_OPS[2:], **paper,
                 speeds={"write": 400.0, "write_fsync": 200.0, "read_cold": 150.0,
                         "read_warm": 500.0})
        run.case(codec="lz4", level=9, threads=2, ops=FILE_OPS, **paper)
        run.case(codec="zstd", level=1, threads=2, ops=FILE_OPS, invalid_cold=1, **paper)  # planted
        run.case(codec="zstd", level=5, threads=2, ops=FILE_OPS, **paper)
        # bzip2 is not the paper's lbzip2; single-threaded xz is not its pxz
        run.case(format="bzip2", codec=None, level=9, ratio=0.33, ops=FILE_OPS, **paper,
                 speeds={op: 15.0 for op in FILE_OPS})
        run.case(format="lbzip2", codec=None, level=9, threads=2, ratio=0.33, ops=FILE_OPS,
                 **paper, speeds={op: 28.0 for op in FILE_OPS})
        run.case(format="xz", codec=None, level=6, threads=1, ratio=0.32, ops=FILE_OPS,
                 **paper, speeds={op: 2.0 for op in FILE_OPS})
        run.case(format="tiff-lzw", codec=None, ratio=0.45, ops=FILE_OPS, **paper,
                 speeds={op: 60.0 for op in FILE_OPS})
        run.case(format="jpeg2000", codec=None, ops=("write",), **paper,
                 error="imagecodecs has no JPEG 2000 encoder")  # planted error row
    elif suite == "metadata":
        for method, speed, size in (("json", 100.0, 1.0), ("orjson", 400.0, 1.0),
                                    ("msgpack", 250.0, 0.8)):
            for compression, shrink in (("", 1.0), ("+lz4", 0.5), ("+zstd", 0.33)):
                run.case(dataset="metadata-25mb", kind="metadata", dose=None, frames=1, ny=1,
                         nx=1, dtype="uint8", format=method + compression, codec=None,
                         label=method + compression, raw_bytes=25 * MIB,
                         ratio=size * shrink, ops=("write", "read"),
                         speeds={"write": speed, "read": speed * 1.5})
    elif suite == "detectors":
        for dataset, kind, dtype in (("k2-counting", "k2", "int8"), ("falcon-blobs", "falcon", "int16"),
                                     ("gain-normalised", "float-gain", "float32")):
            for codec, level in (("zstd", 1), ("lz4", 9)):
                run.case(dataset=dataset, kind=kind, dtype=dtype, codec=codec, level=level,
                         threads=2, ratio=0.3 if dtype != "float32" else 0.8, ops=FILE_OPS)
            run.case(dataset=dataset, kind=kind, dtype=dtype, format="tiff-lzw", codec=None,
                     ratio=0.4 if dtype != "float32" else 0.9, ops=FILE_OPS,
                     speeds={op: 60.0 for op in FILE_OPS})
    else:
        raise ValueError(suite)
    return run.save()


SUITE_FIGURES = {"dose-sweep": "Fig. 2a", "level-sweep": "Fig. 2b", "thread-sweep": "Fig. 2c",
                 "blocksize-sweep": "Fig. 2d", "table1": "Table 1", "metadata": "Fig. 3"}
SUITES = ["dose-sweep", "level-sweep", "thread-sweep", "blocksize-sweep", "table1", "metadata",
          "detectors"]
EXPECTED_FIGURES = {
    "dose-sweep": {"fig2a_ratio_vs_dose", "ratio_vs_speed", "link_throughput"},
    "level-sweep": {"fig2b_ratio_vs_level", "ratio_vs_speed", "link_throughput"},
    "thread-sweep": {"fig2c_speed_vs_threads", "ratio_vs_speed", "link_throughput"},
    "blocksize-sweep": {"fig2d_blocksize", "ratio_vs_speed", "link_throughput"},
    "table1": {"ratio_vs_speed", "link_throughput"},
    "metadata": {"fig3_metadata"},
    "detectors": {"ratio_vs_speed", "link_throughput"},
}


@pytest.fixture(scope="module")
def result_dirs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    return {suite: write_suite(folder, suite) for suite in SUITES}


@pytest.fixture(scope="module")
def loaded(result_dirs):
    return {suite: load_result_files([path]) for suite, path in result_dirs.items()}


@pytest.fixture(scope="module")
def figures(loaded):
    import matplotlib
    matplotlib.use("Agg")
    return {suite: report_figures.make_figures(results) for suite, results in loaded.items()}


@pytest.fixture(scope="module")
def reports(loaded, figures, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return {suite: (out / suite, writer.write_report(results, out / suite, figures[suite]))
            for suite, results in loaded.items()}


def bars(ax):
    from matplotlib.container import BarContainer
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def series(ax, gid="series"):
    return [a for a in [*ax.lines, *ax.collections] if a.get_gid() == gid]


# --- loading ------------------------------------------------------------------------------------
def test_machine_and_date_come_from_run_metadata(loaded):
    machine = loaded["dose-sweep"].machine
    assert (machine.cpu, machine.physical_cores, machine.l2_bytes, machine.l3_bytes) == (CPU, 2, L2, L3)
    assert machine.date == "2024-05-01"
    footer = report_figures.footer(loaded["dose-sweep"], loaded["dose-sweep"].suites)
    assert CPU in footer and "dose-sweep" in footer


def test_missing_and_empty_inputs_are_results_errors(tmp_path):
    with pytest.raises(ResultsError, match="no such"):
        load_result_files([tmp_path / "nope.jsonl"])
    with pytest.raises(ResultsError, match="no result files"):
        load_result_files([tmp_path])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema": 1, "case_id": "c1", "op": null}\nnot json\n')
    with pytest.raises(ResultsError, match="bad.jsonl:2"):
        load_result_files([bad])


def test_machine_facts_are_read_by_known_keys(tmp_path):
    # a run.json as machine.capture() writes it, and one from a machine that recorded less
    run = RunWriter(tmp_path, "dose-sweep", samples=1)
    run.case()
    folder = run.save()
    meta_file = next(folder.glob("*.run.json"))
    meta = json.loads(meta_file.read_text())
    meta["machine"] = {"cpu_model": "AMD EPYC", "physical_cores": None,
                       "cache_sizes": {"L2": "512K"}, "notes": {"l3": 123, "cores": 64}}
    meta_file.write_text(json.dumps(meta))
    machine = load_result_files([folder]).machine
    # no fuzzy search: keys elsewhere in run.json named like "l3" or "cores" are not facts
    assert (machine.cpu, machine.physical_cores, machine.l2_bytes, machine.l3_bytes) == (
        "AMD EPYC", None, 512 * 1024, None)
    assert machine.describe() == "AMD EPYC"


def test_sizes_as_sysfs_and_lscpu_write_them():
    from mrczbench.units import parse_size
    assert parse_size(262144) == 262144
    assert parse_size("256 KiB") == parse_size("256K") == 262144
    assert parse_size("1 MiB (2 instances)") == MIB
    assert parse_size("30M") == 30 * MIB
    assert parse_size("n/a") is None and parse_size(None) is None


# --- summaries ----------------------------------------------------------------------------------
def test_invalid_cold_samples_are_excluded_and_counted(loaded):
    summary = stats.case_stats(loaded["table1"].rows)
    zstd_cold = summary[(summary["label"] == "mrcz zstd-1") & (summary["op"] == "read_cold")].iloc[0]
    assert (zstd_cold["n"], zstd_cold["invalid"]) == (5, 1)


def test_unstable_series_are_flagged(loaded, figures):
    summary = stats.case_stats(loaded["thread-sweep"].rows)
    unstable = summary[summary["unstable"]]
    assert set(zip(unstable["codec"], unstable["threads"])) == {("zlib", 2)}
    threads_figure = figures["thread-sweep"]["fig2c_speed_vs_threads"]
    # the planted noisy series also misses its ±5 % target: ringed, and only it
    missed = summary[~summary["met_target"]]
    assert set(zip(missed["codec"], missed["threads"])) == {("zlib", 2)}
    assert series(threads_figure.axes[0], "missed")
    assert series(threads_figure.axes[0], "ci")  # the intervals are drawn
    assert report_figures.MISSED_LABEL in threads_figure.axes[0].get_legend_handles_labels()[1] + \
        threads_figure.axes[-1].get_legend_handles_labels()[1]


def test_pareto_front_and_break_even():
    speed = [100.0, 200.0, 300.0, 150.0]
    ratio = [0.30, 0.35, 0.50, 0.40]   # the 150 MiB/s point is beaten by the 200 one
    assert links.pareto_front(speed, ratio) == [0, 1, 2]
    # 1/enc + 1/dec = 1/100 MiB/s-1, saved 0.6 of the data: pays below 60 MiB/s ~ 0.503 Gbit/s
    assert links.break_even_gbit(200.0, 200.0, 0.4) == pytest.approx(60 / GBIT_IN_MIB_PER_S)
    assert links.break_even_gbit(200.0, 200.0, 1.0) == 0.0
    link = 60.0
    assert links.link_throughput(200.0, 200.0, 0.4, link) == pytest.approx(link)


# --- figures ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_gives_the_figures_its_data_supports(figures, suite):
    assert set(figures[suite]) == EXPECTED_FIGURES[suite]


@pytest.mark.parametrize("suite", SUITES)
def test_every_axis_has_units_and_every_figure_names_machine_date_suite(figures, suite):
    for name, figure in figures[suite].items():
        title = figure._suptitle.get_text()
        assert CPU in title and "2 physical cores" in title and "2024-05-01" in title
        assert suite in title, name
        for ax in figure.axes:
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                assert re.search(r"\(.+\)", label), f"{name}: axis label without unit: {label!r}"


def test_dose_figure_has_one_series_per_contender_and_the_bound(figures):
    ax = figures["dose-sweep"]["fig2a_ratio_vs_dose"].axes[0]
    assert sorted(line.get_label() for line in series(ax)) == ["mrcz lz4-1", "mrcz zlib-1", "mrcz zstd-1"]
    assert [line.get_label() for line in series(ax, "reference")] == ["Shannon bound (i.i.d. entropy)"]
    assert all(len(line.get_xdata()) == 7 for line in series(ax))
    assert ax.get_xscale() == "log"
    # every contender stays above the entropy bound
    bound = series(ax, "reference")[0].get_ydata()
    assert all((line.get_ydata() >= bound).all() for line in series(ax))


def test_level_figure_has_a_series_per_codec(figures):
    ratio_ax, speed_ax = figures["level-sweep"]["fig2b_ratio_vs_level"].axes[:2]
    assert sorted(line.get_label() for line in series(ratio_ax)) == ["mrcz lz4", "mrcz zlib", "mrcz zstd"]
    assert len(series(speed_ax)) == 3
    assert all(len(line.get_xdata()) == 9 for line in series(ratio_ax))


def test_threads_figure_marks_physical_cores(figures):
    figure = figures["thread-sweep"]["fig2c_speed_vs_threads"]
    assert len(figure.axes) == 2  # compression, decompression
    for ax in figure.axes:
        assert len(series(ax)) == 3
        (cores,) = series(ax, "reference")
        assert list(cores.get_xdata()) == [CORES, CORES]


def test_blocksize_figure_marks_l2_l3_and_skips_automatic(figures):
    figure = figures["blocksize-sweep"]["fig2d_blocksize"]
    for ax in figure.axes[:2]:
        assert len(series(ax)) == 2
        assert all(len(line.get_xdata()) == 5 for line in series(ax))  # blocksize 0 left out
        marks = sorted(line.get_xdata()[0] for line in series(ax, "reference"))
        # L2 (256 KiB) sits inside the swept 16 KiB - 4 MiB; L3 (30 MiB) is far off the data:
        # named in the legend, not drawn, so the axis still ends near the data
        assert marks == [L2 / 1024]
        assert ax.get_xscale() == "log"
        low, high = ax.get_xlim()
        assert 16 / 2 < low < 16 and 4096 < high < 4096 * 2
    labels = [t.get_text() for t in figure.legends[0].get_texts()] if figure.legends else \
        [t.get_text() for t in figure.axes[-1].get_legend().get_texts()]
    assert f"L3 cache {L3 // 1024} KiB (off the axis)" in labels


def test_metadata_figure_has_time_per_op_and_size_per_method(figures):
    time_ax, size_ax = figures["metadata"]["fig3_metadata"].axes[:2]
    assert len(bars(time_ax)) == 2  # write, read (each with its 95 % interval as an error bar)
    assert len(time_ax.containers) == 4
    assert len(size_ax.containers) == 1
    assert len(time_ax.get_xticklabels()) == 9  # 3 methods x (none, lz4, zstd)


def test_scatter_has_pareto_front_and_link_figure_a_raw_reference(figures):
    scatter = figures["table1"]["ratio_vs_speed"].axes[0]
    assert len(series(scatter)) == 9  # every table1 contender that ran
    assert len(series(scatter, "front")) == 1
    zoomed = figures["table1"]["ratio_vs_speed"].axes[1]  # without mrc (1.0) and mrc-uint4 (0.5)
    zoomed_names = {p.get_label().split(" (")[0] for p in series(zoomed)}
    assert not {"mrc", "mrc-uint4", "tiff-lzw"} & zoomed_names  # 1.0, 0.5, 0.45: not below 0.45
    assert {"mrcz zstd-1", "lbzip2", "bzip2"} <= zoomed_names
    links = figures["table1"]["link_throughput"].axes[0]
    assert 2 <= len(series(links)) <= 8  # 9 contenders: the Pareto front's
    assert [line.get_label() for line in series(links, "reference")] == ["send raw (no compression)"]
    assert links.get_xscale() == links.get_yscale() == "log"
    low, high = links.get_xlim()
    assert low <= 0.1 and high >= 10


def test_link_figure_keeps_the_pareto_front_when_crowded_and_marks_unstable_inputs(figures):
    links = figures["thread-sweep"]["link_throughput"].axes[0]
    names = [line.get_label() for line in series(links)]
    assert 1 <= len(names) < 9  # 9 cases, more than MAX_LINK_SERIES: the front only
    assert "Pareto-front" in figures["thread-sweep"]["link_throughput"]._suptitle.get_text()
    table1_links = figures["table1"]["link_throughput"].axes[0]
    assert not any("unstable" in line.get_label() for line in series(table1_links))


def test_one_report_over_all_suites_keeps_metadata_out_of_movie_figures(result_dirs):
    results = load_result_files(list(result_dirs.values()))
    assert results.suites == sorted(SUITES)
    figures = report_figures.make_figures(results)
    assert set(figures) == set().union(*EXPECTED_FIGURES.values())
    scatter = figures["ratio_vs_speed"].axes[0]
    assert not any("json" in a.get_label() for a in series(scatter))
    assert report.default_out(results).name == "+".join(sorted(SUITES))


def test_detector_doses_do_not_join_the_dose_sweep(result_dirs, tmp_path):
    # The detectors suite runs the same contenders at one dose per detector model; in a report
    # over both suites those points must not become part of the Fig. 2a lines.
    run = RunWriter(tmp_path, "detectors", run_id="20240501T200000Z-def456")
    for dataset, kind, dose in (("falcon", "falcon", 0.37), ("eer", "eer", 0.44),
                                ("gain", "gain-normalised", 1.45)):
        run.case(dataset=dataset, kind=kind, dose=dose, codec="zstd", threads=2, ratio=0.9)
    results = load_result_files([result_dirs["dose-sweep"], run.save()])
    figure = report_figures.make_figures(results)["fig2a_ratio_vs_dose"]
    ax = figure.axes[0]
    assert sorted(line.get_label() for line in series(ax)) == ["mrcz lz4-1", "mrcz zlib-1", "mrcz zstd-1"]
    assert all(len(line.get_xdata()) == 7 for line in series(ax))
    assert "detectors" not in figure._suptitle.get_text()


# --- tables and files ---------------------------------------------------------------------------
def test_table1_sits_next_to_the_paper(loaded):
    cases = stats.case_table(stats.case_stats(loaded["table1"].rows))
    table = tables.table1(cases).set_index("contender")
    assert table.loc["mrcz zstd-1", "paper contender"] == "blosc-zstd/int8/1"
    assert table.loc["mrcz zstd-1", "paper ratio"] == 0.37
    assert table.loc["mrcz lz4-9", "paper contender"] == "blosc-lz4/int8/9"
    assert table.loc["mrc", "paper contender"] == "None/int8"
    assert table.loc["mrc-uint4", "paper contender"] == "uint4"
    assert table.loc["lbzip2", "paper contender"] == "lbzip2/int8/9"
    assert table.loc["bzip2", "paper contender"] == ""   # bzip2 is not lbzip2
    assert table.loc["xz", "paper contender"] == ""      # one-thread xz is not pxz
    assert table.loc["tiff-lzw", "paper contender"] == ""
    # the paper's MB are 10^6 bytes: 60 x 3838 x 3710 int8 = 854.3 MB, its 854
    assert table.loc["mrc", "size (MB = 10^6 B)"] == pytest.approx(854.3388)
    assert table.loc["mrc", "paper size (MB = 10^6 B)"] == 854
    assert table.loc["mrc", "paper write (s)"] == 3.40
    not_run = set(table.loc["(not run)", "paper contender"])
    assert not_run == {"JPEG2000/uint8", "pigz/int8/1", "pxz/int8/6"}


def test_table1_of_another_shape_is_per_frame_and_per_gib_without_paper_sizes(tmp_path):
    run = RunWriter(tmp_path, "table1", samples=3)
    run.case(format="mrc", codec=None, ratio=1.0, ops=FILE_OPS[2:], frames=4, ny=384, nx=371,
             speeds={op: 512.0 for op in FILE_OPS})
    run.case(codec="zstd", level=1, ratio=0.3, ops=FILE_OPS, frames=4, ny=384, nx=371)
    run.case(format="xz", codec=None, level=6, threads=2, ratio=0.28, ops=FILE_OPS, frames=4,
             ny=384, nx=371, speeds={op: 3.0 for op in FILE_OPS})
    results = load_result_files([run.save()])
    cases = stats.case_table(stats.case_stats(results.rows))
    table = tables.table1(cases).set_index("contender")
    assert not {"paper size (MB = 10^6 B)", "paper write (s)", "size (MB = 10^6 B)"} & set(table.columns)
    assert table.loc["mrc", "size (MiB/frame)"] == pytest.approx(384 * 371 / MIB)
    assert table.loc["mrc", "stack"] == "4 x 384 x 371"
    # 512 MiB/s -> 2 s per GiB of raw data, whatever the stack's size
    assert table.loc["mrc", "compress-write (s/GiB raw)"] == pytest.approx(2.0, rel=0.05)
    assert table.loc["mrcz zstd-1", "paper ratio"] == 0.37
    assert table.loc["xz", "paper contender"] == "pxz/int8/6"  # xz with threads is pxz
    assert "not the paper's 60 x 3838 x 3710" in tables.table1_note(cases)
    writer.write_report(results, tmp_path / "out", figures={})
    assert "MiB per frame" in (tmp_path / "out" / "report.md").read_text()


def test_table1_uses_only_table1_rows_in_a_mixed_report(result_dirs, tmp_path):
    # level-sweep shares the table1 dataset name ("poisson-d1"): its rows must not leak in
    mixed = load_result_files([result_dirs[s] for s in ("dose-sweep", "level-sweep", "table1")])
    table = tables.table1(stats.case_table(stats.case_stats(mixed.rows)))
    only = tables.table1(stats.case_table(stats.case_stats(
        load_result_files([result_dirs["table1"]]).rows)))
    assert list(table["contender"]) == list(only["contender"])
    assert "mrcz zstd-9" not in set(table["contender"])
    assert set(table["dataset"]) == {"poisson-d1"}
    assert table.set_index("contender").loc["mrcz zstd-1", "compress-write (s)"] > 0
    files = writer.write_report(mixed, tmp_path / "mixed", figures={})
    assert tmp_path / "mixed" / "table1.md" in files


def test_no_table1_without_table1_rows(loaded, tmp_path):
    for suite in ("dose-sweep", "level-sweep", "metadata"):
        cases = stats.case_table(stats.case_stats(loaded[suite].rows))
        assert tables.table1(cases) is None
    writer.write_report(loaded["dose-sweep"], tmp_path / "dose", figures={})
    assert not (tmp_path / "dose" / "table1.md").exists()
    assert "Table 1" not in (tmp_path / "dose" / "index.html").read_text()


def test_table1_and_fig3_follow_the_declared_figure_not_the_suite_name(tmp_path):
    # a Table 1 suite under another name gives Table 1; a suite called "table1" that declares
    # no figure does not
    paper_run = RunWriter(tmp_path, "my-paper-stack", figure="Table 1", samples=3,
                          run_id="20240501T100001Z-aaaaaa")
    paper_run.case(codec="zstd", level=1, ops=FILE_OPS)
    named_run = RunWriter(tmp_path, "table1", figure="", samples=3, run_id="20240501T100002Z-bbbbbb")
    named_run.case(codec="lz4", level=9, ops=FILE_OPS)
    # metadata serialisation as an ordinary contender in a suite declaring Fig. 3
    meta_run = RunWriter(tmp_path, "serialisers", figure="fig. 3", samples=3,
                         run_id="20240501T100003Z-cccccc")
    for method in ("json", "msgpack"):
        meta_run.case(dataset="acquisition", kind="user", dose=None, format="metadata",
                      codec=None, label=method, ratio=0.5, ops=("encode", "decode", "write"))
    results = load_result_files([paper_run.save(), named_run.save(), meta_run.save()])
    cases = stats.case_table(stats.case_stats(results.rows))
    table = tables.table1(cases)
    assert set(table["contender"]) - {"(not run)"} == {"mrcz zstd-1"}
    assert table.set_index("contender").loc["mrcz zstd-1", "paper contender"] == "blosc-zstd/int8/1"
    figures = report_figures.make_figures(results, cases)
    assert "fig3_metadata" in figures
    time_ax = figures["fig3_metadata"].axes[0]
    assert [t.get_text() for t in time_ax.get_xticklabels()] == ["json", "msgpack"]
    # Fig. 3 cases are not movie compression: not in the speed figures or the link table
    scatter = figures["ratio_vs_speed"].axes[0]
    assert {a.get_label() for a in series(scatter)} == {"mrcz zstd-1", "mrcz lz4-9"}
    assert not {"json", "msgpack"} & set(tables.link_table(cases)["contender"])


def test_table1_has_one_block_per_dataset_of_the_table1_run(tmp_path):
    run = RunWriter(tmp_path, "table1", samples=3)
    for movie in ("movie-a", "movie-b", "movie-c"):
        run.case(dataset=movie, kind="user", format="mrc", codec=None, ratio=1.0,
                 ops=FILE_OPS[2:], speeds={op: 300.0 for op in FILE_OPS})
        run.case(dataset=movie, kind="user", codec="zstd", level=1, ratio=0.4, ops=FILE_OPS)
    results = load_result_files([run.save()])
    table = tables.table1(stats.case_table(stats.case_stats(results.rows)))
    assert list(dict.fromkeys(table["dataset"])) == ["movie-a", "movie-b", "movie-c"]
    for movie in ("movie-a", "movie-b", "movie-c"):
        block = table[table["dataset"] == movie].set_index("contender")
        assert block.loc["mrcz zstd-1", "paper contender"] == "blosc-zstd/int8/1"
        assert block.loc["mrc", "paper ratio"] == 1.0
        assert len(block.loc["(not run)"]) == len(paper.PAPER_TABLE1) - 2
    writer.write_report(results, tmp_path / "out", figures={})
    page = (tmp_path / "out" / "table1.md").read_text()
    assert "datasets movie-a, movie-b, movie-c" in page
    assert all(movie in page for movie in ("movie-a", "movie-b", "movie-c"))


def test_report_into_an_old_report_folder_removes_only_its_own_stale_files(loaded, tmp_path):
    out = tmp_path / "out"
    writer.write_report(loaded["dose-sweep"], out)
    assert (out / "fig2a_ratio_vs_dose.png").exists()
    (out / "table1.md").write_text("my own table, not written by mrczbench\n")
    (out / "notes.txt").write_text("mine\n")
    (out / "fig2a_ratio_vs_dose.txt").write_text("not a report file name\n")
    written = writer.write_report(loaded["metadata"], out)
    names = {path.name for path in out.iterdir()}
    user_files = {"notes.txt", "fig2a_ratio_vs_dose.txt", "table1.md"}
    assert names == {path.name for path in written} | user_files | {writer.MANIFEST}
    assert "fig3_metadata.png" in names and "fig2a_ratio_vs_dose.png" not in names
    assert "link_break_even.csv" not in names  # ours, from the dose-sweep report: removed
    assert (out / "table1.md").read_text() == "my own table, not written by mrczbench\n"


REPORT_NAMES = ("index.html", "report.md", "summary.csv", "summary.md", "errors.csv",
                "table1.md", "fig3_metadata.png", "link_break_even.csv", "fig2a_ratio_vs_dose.svg")


def test_user_files_with_report_names_are_never_overwritten_or_removed(result_dirs, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    for name in REPORT_NAMES:
        (out / name).write_text(f"user data in {name}\n")
    assert main(["report", str(result_dirs["metadata"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not written by mrczbench report" in err[0]
    assert "choose another --out" in err[0] and str(out) in err[0]
    for name in REPORT_NAMES:
        assert (out / name).read_text() == f"user data in {name}\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_NAMES)  # nothing added


def test_a_report_file_the_user_changed_is_no_longer_ours(result_dirs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(result_dirs["dose-sweep"]), "--out", str(out)]) == 0
    assert main(["report", str(result_dirs["dose-sweep"]), "--out", str(out)]) == 0  # ours: rewritten
    (out / "report.md").write_text("my annotated copy\n")
    (out / "fig2a_ratio_vs_dose.svg").write_text("my edited figure\n")
    capsys.readouterr()
    assert main(["report", str(result_dirs["dose-sweep"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "fig2a_ratio_vs_dose.svg, report.md exist and were not written" in err
    assert (out / "report.md").read_text() == "my annotated copy\n"
    # a stale file of ours that the user edited is kept, not removed
    (out / "report.md").unlink()
    assert main(["report", str(result_dirs["metadata"]), "--out", str(out)]) == 0
    assert (out / "fig2a_ratio_vs_dose.svg").read_text() == "my edited figure\n"
    assert not (out / "fig2a_ratio_vs_dose.png").exists()


def test_a_foreign_manifest_or_forged_names_touch_nothing(result_dirs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / writer.MANIFEST).write_text("{}")
    assert main(["report", str(result_dirs["metadata"]), "--out", str(out)]) == 2
    assert "not a manifest written by mrczbench report" in capsys.readouterr().err
    # a manifest naming files outside the folder is never followed
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (out / writer.MANIFEST).write_text(json.dumps(
        {"written_by": writer.MANIFEST_OWNER, "files": {"../victim.txt": None, str(victim): None}}))
    assert main(["report", str(result_dirs["metadata"]), "--out", str(out)]) == 0
    assert victim.read_text() == "keep me\n"


def test_out_naming_a_file_is_a_one_line_error(result_dirs, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    assert main(["report", str(result_dirs["metadata"]), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0] and "notes.txt" in err[0]
    assert target.read_text() == "mine\n"


def test_user_controlled_strings_are_escaped_in_html_and_markdown(tmp_path):
    hostile = "<img src=x onerror=alert(7)>"
    run = RunWriter(tmp_path, "table1", samples=3)
    run.case(dataset=f"d{hostile}", label=f"c<script>alert(1)</script>|x", ops=FILE_OPS)
    run.case(dataset=f"d{hostile}", format="jpeg2000", codec=None, ops=("write",),
             label="[click](javascript:alert(2))", error=f"boom {hostile}")
    run.save()
    folder = tmp_path / "in"
    folder.mkdir()
    source = next((tmp_path / "table1").glob("*.jsonl"))
    named = folder / f"t{hostile}.jsonl"
    named.write_text(source.read_text() + '{"schema": 1, "run_id": "cut')  # a cut-off line
    meta_path_for(named).write_text(meta_path_for(source).read_text())
    assert main(["report", str(folder), "--out", str(tmp_path / "out")]) == 0
    for name in ("index.html", "report.md", "table1.md", "errors.md", "summary.md"):
        text = (tmp_path / "out" / name).read_text()
        assert "<img src=x" not in text and "<script" not in text, name
        if name.endswith(".md"):  # Markdown link syntax is plain text in HTML
            assert not re.search(r"(?<!\\)\]\(javascript:", text), name
    page = (tmp_path / "out" / "index.html").read_text()
    assert "t&lt;img src=x onerror=alert(7)&gt;.jsonl" in page  # the skipped-lines note
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "&lt;img src=x onerror=alert(7)&gt;.jsonl" in markdown
    assert "c&lt;script&gt;alert(1)&lt;/script&gt;\\|x" in (tmp_path / "out" / "summary.md").read_text()
    # what a Markdown viewer shows: no tag, no link, and the table keeps its columns
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(
        (tmp_path / "out" / "errors.md").read_text())
    assert "<img" not in rendered and "<a " not in rendered and "<script" not in rendered
    assert "[click](javascript:alert(2))" in rendered
    assert rendered.count("<td>") == 7 * rendered.count("<tr>") - 7  # header row has <th>


def test_cut_off_lines_are_warned_and_counted_in_the_report(result_dirs, tmp_path, capsys):
    source = next(result_dirs["metadata"].glob("*.jsonl"))
    folder = tmp_path / "crashed"
    folder.mkdir()
    (folder / source.name).write_text(source.read_text() + '{"schema": 1, "run_id": "cut')
    assert main(["report", str(folder), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and source.name in err and "skipped 1 cut-off line" in err
    assert "cut-off lines skipped" in (tmp_path / "out" / "index.html").read_text()


def test_binary_and_metadata_files_are_one_line_errors(result_dirs, tmp_path, capsys):
    movie = tmp_path / "m1.mrc"
    movie.write_bytes(bytes(range(256)) * 4)
    assert main(["report", str(movie)]) == 2
    err = capsys.readouterr().err
    assert "m1.mrc: not a result file (binary data)" in err and "Traceback" not in err
    meta = next(result_dirs["metadata"].glob("*.run.json"))
    assert main(["report", str(meta)]) == 2
    assert "is run metadata; pass the .jsonl beside it" in capsys.readouterr().err


@pytest.mark.parametrize("suite", SUITES)
def test_report_files_exist_and_html_is_self_contained(reports, figures, suite):
    out, written = reports[suite]
    for name in figures[suite]:
        assert (out / f"{name}.png").stat().st_size > 1000
        assert (out / f"{name}.svg").stat().st_size > 1000
    assert (out / "summary.csv").exists() and (out / "summary.md").exists()
    page = (out / "index.html").read_text()
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(link|script)\b|src=['\"](?!data:)", page)  # nothing fetched
    assert page.count("src='data:image/png;base64,") == len(figures[suite])
    assert CPU in page and "2024-05-01" in page
    assert all(path.exists() for path in written)


def test_report_counts_invalid_samples_and_lists_errors(reports):
    out, _ = reports["table1"]
    page = (out / "index.html").read_text()
    assert "invalid cold samples excluded: 1" in page
    assert "error rows: 1" in page
    assert "imagecodecs has no JPEG 2000 encoder" in (out / "errors.md").read_text()
    assert "blosc-zstd/int8/1" in (out / "table1.md").read_text()
    assert "doi:10.1016/j.jsb.2017.11.012" in page


def test_unstable_series_marked_in_tables(reports):
    out, _ = reports["thread-sweep"]
    summary = (out / "summary.md").read_text()
    assert summary.count("UNSTABLE") == 2  # encode and decode of zlib at 2 threads
    assert summary.count("MISSED") == 2 and " ± " in summary


def test_cli_report_writes_into_out_and_reports_missing_files(result_dirs, tmp_path, capsys):
    out = tmp_path / "metadata-report"
    assert main(["report", str(result_dirs["metadata"]), "--out", str(out)]) == 0
    assert (out / "index.html").exists() and (out / "fig3_metadata.png").exists()
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such result file" in capsys.readouterr().err


# --- real rows from the runner ------------------------------------------------------------------
TINY_DOSE_SUITE = """
description = "tiny dose sweep for the report tests"
figure = "Fig. 2a"
ops = ["encode", "decode", "write", "read_cold"]
repeats = 2
min_batch_seconds = 0.001
timeout = 60
[dataset]
kind = "poisson"
frames = 2
shape = [64, 64]
dtype = "int8"
seed = 1
[format]
threads = 1
[contenders]
"mrcz zstd-1" = { format = "mrcz", codec = "zstd", level = 1 }
"mrcz lz4-1"  = { format = "mrcz", codec = "lz4", level = 1 }
[sweep]
dose = [0.1, 1, 4]
contender = ["mrcz zstd-1", "mrcz lz4-1"]
"""

TINY_METADATA_SUITE = """
description = "tiny metadata serialisation for the report tests"
figure = "Fig. 3"
ops = ["encode", "decode", "write", "read_cold"]
repeats = 2
min_batch_seconds = 0.001
timeout = 60
[dataset]
kind = "metadata"
megabytes = 0.02
seed = 0
[format]
format = "metadata"
level = 1
threads = 1
[sweep]
serializer = ["json", "msgpack"]
compressor = ["none", "zstd"]
"""


@pytest.fixture(scope="module")
def runner_results(tmp_path_factory):
    pytest.importorskip("mrczbench.bench.runner")
    folder = tmp_path_factory.mktemp("runner")
    found = {}
    for name, text in (("tiny-dose", TINY_DOSE_SUITE), ("tiny-metadata", TINY_METADATA_SUITE)):
        suite_file = folder / f"{name}.toml"
        suite_file.write_text(text)
        # fadvise, not drop_caches: never empty the page cache of a shared machine in a test
        code = main(["run", "--suite", str(suite_file), "--out", str(folder / name),
                     "--cache-dir", str(folder / "cache"), "--eviction", "fadvise",
                     "--no-progress"])
        assert code == 0
        found[name] = folder / name
    return found


def test_report_from_real_runner_rows(runner_results, tmp_path):
    results = load_result_files([runner_results["tiny-dose"]])
    figures = report_figures.make_figures(results)
    assert set(figures) == {"fig2a_ratio_vs_dose", "ratio_vs_speed", "link_throughput"}
    dose_ax = figures["fig2a_ratio_vs_dose"].axes[0]
    assert sorted(line.get_label() for line in series(dose_ax)) == ["mrcz lz4-1", "mrcz zstd-1"]
    assert results.machine.cpu != "unknown CPU" and results.machine.physical_cores
    written = writer.write_report(results, tmp_path / "dose", figures)
    # a dose sweep is not the paper's Table 1 stack: no Table 1 beside the paper's numbers
    assert not (tmp_path / "dose" / "table1.md").exists()
    assert "Table 1" not in (tmp_path / "dose" / "report.md").read_text()
    assert not re.search(r"https?://", (tmp_path / "dose" / "index.html").read_text())
    assert all(path.exists() for path in written)


def test_metadata_report_from_real_runner_rows(runner_results):
    results = load_result_files([runner_results["tiny-metadata"]])
    figures = report_figures.make_figures(results)
    assert set(figures) == {"fig3_metadata"}
    time_ax, size_ax = figures["fig3_metadata"].axes[:2]
    assert len(bars(time_ax)) == 4  # encode, decode, write, read_cold
    assert [t.get_text() for t in time_ax.get_xticklabels()] == [
        "json", "json+zstd", "msgpack", "msgpack+zstd"]


# --- what a report is: profile, load, cores (issue 15) ----------------------------------------------
def small_dose_run(folder: Path, profile=None, load=None, with_plain=False, error=False):
    run = RunWriter(folder, "dose-sweep", samples=3, profile=profile, load=load,
                    run_id="20240501T100000Z-dddddd")
    for dose in (0.1, 0.5, 1.0, 4.0):
        for codec in CODECS:
            run.case(dataset=f"poisson-d{dose:g}", dose=dose, codec=codec, threads=2,
                     ops=FILE_OPS)
        if with_plain:
            run.case(dataset=f"poisson-d{dose:g}", dose=dose, format="mrc", codec=None,
                     ratio=1.0, ops=FILE_OPS[2:])
            run.case(dataset=f"poisson-d{dose:g}", dose=dose, format="mrc-uint4", codec=None,
                     ratio=0.5, ops=FILE_OPS[2:])
    if error:
        run.case(format="jpeg2000", codec=None, ops=("write",), error="no encoder")
    return run.save()


def test_a_quick_report_says_so_on_its_first_screen_and_in_its_figures(tmp_path):
    results = load_result_files([small_dose_run(tmp_path / "in", profile="quick", load=1.9)])
    figures = report_figures.make_figures(results)
    for name, figure in figures.items():
        assert report.about.QUICK_MARK in figure._suptitle.get_text(), name
        stamps = [t for ax in figure.axes for t in ax.texts if t.get_gid() == "watermark"]
        # the ratio-only Fig. 2a is marked in its title; speed figures also carry the watermark
        assert bool(stamps) == (name != "fig2a_ratio_vs_dose"), name
    writer.write_report(results, tmp_path / "out", figures)
    page = (tmp_path / "out" / "index.html").read_text()
    first_screen = page[:page.index("<h2")]
    assert "QUICK PROFILE" in first_screen and "do not quote these speeds" in first_screen
    assert "BUSY machine at the start of 1 of 1 runs" in first_screen
    runs = page[page.index("id='runs'"):]
    assert "quick (smoke test)" in runs and "1.9 on 2 usable cores" in runs and ">BUSY<" in runs
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.splitlines()[0].endswith("(QUICK PROFILE)")
    assert "do not quote these speeds" in markdown[:600]


def test_a_full_quiet_report_has_no_quick_marks_and_no_red_banner(tmp_path):
    results = load_result_files([small_dose_run(tmp_path / "in", profile="full", load=0.2)])
    figures = report_figures.make_figures(results)
    assert all(report.about.QUICK_MARK not in f._suptitle.get_text() for f in figures.values())
    writer.write_report(results, tmp_path / "out", figures)
    page = (tmp_path / "out" / "index.html").read_text()
    assert "QUICK" not in page and "class=warn" not in page
    assert "quiet at the start of every run" in page and "2 physical cores" in page
    # something failed: the banner appears
    results = load_result_files([small_dose_run(tmp_path / "in2", profile="full", error=True)])
    writer.write_report(results, tmp_path / "out2", figures={})
    assert "class=warn" in (tmp_path / "out2" / "index.html").read_text()


def test_tables_scroll_inside_their_own_box(reports):
    page = (reports["table1"][0] / "index.html").read_text()
    assert "overflow-x:auto" in page
    assert page.count("<table>") == page.count("<div class=scroll><table>") > 3


def test_no_two_series_share_colour_and_marker(figures):
    ax = figures["level-sweep"]["ratio_vs_speed"].axes[0]
    points = series(ax)
    assert len(points) == 27  # bzip2 none here: 3 codecs x 9 levels
    looks = {(tuple(p.get_facecolor()[0]), p.get_paths()[0].vertices.tobytes()) for p in points}
    assert len(looks) == len(points)
    for i in range(60):
        for j in range(i):
            a, b = report_figures.series_style(i), report_figures.series_style(j)
            assert (a["color"], a["marker"]) != (b["color"], b["marker"])


def test_dose_axis_is_labelled_at_the_swept_doses_with_a_zoomed_panel(tmp_path):
    results = load_result_files([small_dose_run(tmp_path, with_plain=True)])
    figure = report_figures.figure_dose(results, stats.case_table(stats.case_stats(results.rows)))
    full, zoom = figure.axes[:2]
    assert [t.get_text() for t in full.get_xticklabels()] == ["0.1", "0.5", "1", "4"]
    assert {l.get_label() for l in series(full)} >= {"mrc", "mrc-uint4"}
    assert not {"mrc", "mrc-uint4"} & {l.get_label() for l in series(zoom)}
    top = max(max(l.get_ydata()) for l in series(zoom))
    assert full.get_ylim()[1] > 1.0 and top < zoom.get_ylim()[1] < top * 1.1  # ends near the data


def test_threads_figure_says_points_past_the_cores_are_oversubscription(figures):
    figure = figures["thread-sweep"]["fig2c_speed_vs_threads"]
    for ax in figure.axes[:2]:
        notes = [t.get_text() for t in ax.texts if t.get_gid() == "oversubscription"]
        assert notes and "oversubscription" in notes[0]
        assert ax.get_xlim()[1] < 3.5  # ends near the last measured thread count (3)


# --- gain recovery beside RELION (issue 11) ---------------------------------------------------------
def gain_run(folder: Path) -> Path:
    """A gain-recovery run as the issue-11 suite writes it: float32 stored directly and as
    gain-counts wrapping the same inner format (params carry `inner`)."""
    run = RunWriter(folder, "gain-recovery", samples=3, figure="RELION movie compression",
                    run_id="20240501T100000Z-gggggg")
    movie = dict(dataset="k2-gain-normalised", kind="k2-gain-normalised", dose=1.45,
                 dtype="float32", frames=10, ny=384, nx=371, codec=None, threads=2)
    # params as the runner records them: every field of the format's config, defaults included
    counts = {"codec": None, "compression": None, "filter": None, "format": "gain-counts",
              "level": None, "thresh": 0, "tolerance": 0.0001}
    for name, params, ratio in (
            ("tiff deflate", {"format": "tiff", "compression": "deflate", "level": None,
                              "line_by_line": False}, 0.62),
            ("counts tiff deflate", {**counts, "inner": "tiff", "compression": "deflate"}, 0.071),
            ("mrcz zstd-1", {"format": "mrcz", "codec": "zstd", "level": 1, "blocksize": 0,
                             "filter": "bitshuffle"}, 0.77),
            ("mrcz lz4-1", {"format": "mrcz", "codec": "lz4", "level": 1, "blocksize": 0,
                            "filter": "bitshuffle"}, 0.79),
            ("counts mrcz zstd-1", {**counts, "inner": "mrcz", "codec": "zstd", "level": 1}, 0.066),
            ("counts mrc", {**counts, "inner": "mrc"}, 0.255)):
        run.case(format=params["format"], label=name, ratio=ratio, ops=FILE_OPS, **movie)
        for row in run.rows:
            if row["label"] == name:
                row["params"] = json.dumps({**params, "threads": 2})
                row["codec"] = params.get("codec")
    return run.save()


def test_gain_recovery_sits_beside_relions_percentages(tmp_path):
    results = load_result_files([gain_run(tmp_path / "in")])
    cases = stats.case_table(stats.case_stats(results.rows))
    table = report.sections.gain_table(cases).set_index("contender")
    assert table.loc["tiff deflate", "RELION stored (% of float32)"] == 55.9
    assert table.loc["counts tiff deflate", "RELION stored (% of float32)"] == 11.9
    assert table.loc["counts mrc", "RELION stored (% of float32)"] == 25.0
    assert table.loc["counts tiff deflate", "stored (% of float32)"] == pytest.approx(7.1, rel=0.01)
    assert table.loc["counts tiff deflate", "same format on float32 (%)"] == pytest.approx(62, rel=0.01)
    assert table.loc["counts mrcz zstd-1", "same format on float32 (%)"] == pytest.approx(77, rel=0.01)
    assert table.loc["counts mrcz zstd-1", "stored as"] == "integer counts + gain"
    writer.write_report(results, tmp_path / "out", figures={})
    for name in ("index.html", "report.md"):
        text = (tmp_path / "out" / name).read_text()
        assert "Gain recovery" in text and "EMPIAR-10317" in text and "55.9" in text
        assert "tiff deflate: 62.0 % -&gt; 7.1 %" in text or "tiff deflate: 62.0 % -> 7.1 %" in text
    findings = (tmp_path / "out" / "report.md").read_text()
    assert "storage cut 15.2x" in findings  # 1 / 0.066: the decimation claim from these rows


def test_no_gain_section_without_gain_counts_rows(loaded):
    cases = stats.case_table(stats.case_stats(loaded["detectors"].rows))
    assert report.sections.gain_table(cases) is None


# --- recommended defaults (issue 12) ------------------------------------------------------------------
def test_recommended_defaults_for_the_stated_scenario(reports, result_dirs):
    page = (reports["table1"][0] / "report.md").read_text()
    section = page[page.index("## Recommended defaults"):]
    assert "60 movies/hour, 1 Gbit/s at 0.63 usable, goal transfer, any reader" in section
    assert "ratios at dose 1 e/px/frame" in section and "| recommended |" in section
    rec = report.sections.recommended_defaults(load_result_files([result_dirs["table1"]]))
    assert rec.document["recommended"]["label"] in {"mrc", "mrc-uint4", "mrcz lz4-9", "mrcz zstd-1",
                                                     "mrcz zstd-5", "bzip2", "lbzip2", "xz", "tiff-lzw"}


def test_no_recommendation_without_movie_rows_says_why(reports):
    page = (reports["metadata"][0] / "index.html").read_text()
    assert "No recommendation: no 8-bit movie rows with a dose in these results." in page


def test_table1_without_the_write_fsync_op_has_no_empty_fsync_column(tmp_path):
    # the quick and reference profiles of table1 time write and read_cold only
    run = RunWriter(tmp_path, "table1", samples=3)
    run.case(format="mrc", codec=None, ratio=1.0, ops=("write", "read_cold"), frames=4, ny=384, nx=371)
    run.case(codec="zstd", level=1, ratio=0.3, ops=("write", "read_cold"), frames=4, ny=384, nx=371)
    cases = stats.case_table(stats.case_stats(load_result_files([run.save()]).rows))
    table = tables.table1(cases)
    assert not [c for c in table.columns if c.startswith("write+fsync")]
    assert table.set_index("contender").loc["mrc", "compress-write (s/GiB raw)"] > 0


def test_two_runs_of_one_suite_name_the_run_of_each_link_row(tmp_path):
    paths = []
    for number, run_id in enumerate(("20240501T100000-aaaaaa", "20240502T100000-bbbbbb")):
        run = RunWriter(tmp_path / run_id, "dose-sweep", run_id=run_id, samples=3, seed=number)
        run.case(codec="zstd", level=1)
        run.case(codec="lz4", level=1)
        paths.append(run.save())
    cases = stats.case_table(stats.case_stats(load_result_files(paths).rows))
    table = tables.link_table(cases)
    assert len(table) == 4 and set(table["run"]) == {"20240501T100000-aaaaaa", "20240502T100000-bbbbbb"}
    assert not table.duplicated(["contender", "run"]).any()


def _sweep_figure(tmp_path, threads=(1, 2)):
    run = RunWriter(tmp_path, "level-sweep", samples=3)
    for codec in CODECS:
        for level in range(1, 10):
            for t in threads:
                run.case(codec=codec, level=level, threads=t,
                         speeds={op: CODECS[codec][0] * t / level for op in ("encode", "decode")})
    results = load_result_files([run.save()])
    return report_figures.figure_scatter(results, stats.case_table(stats.case_stats(results.rows)))


def test_ratio_vs_speed_encodes_codec_level_threads_and_names_the_front(tmp_path):
    # 3 codecs x 9 levels x 2 thread counts: 54 points. The legend held one entry per point
    # (about 60, colours repeating); now colour = codec, marker = level, size = threads
    figure = _sweep_figure(tmp_path)
    ax = figure.axes[0]
    points = series(ax)
    assert len(points) == 54
    legend = figure.axes[-1].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:3] == ["mrcz lz4", "mrcz zlib", "mrcz zstd"]
    assert [f"level {n}" for n in range(1, 10)] == labels[3:12]
    assert labels[12:14] == ["1 thread", "2 threads"]
    assert len(labels) <= 16
    colour_of = {}
    for p in points:
        family = " ".join(p.get_label().split()[:2])
        colour_of.setdefault(family, set()).add(tuple(p.get_facecolor()[0]))
    assert all(len(c) == 1 for c in colour_of.values())  # one colour a codec
    assert len({next(iter(c)) for c in colour_of.values()}) == 3  # and no two codecs share it
    front = series(ax, "front")[0]
    named = [t for t in ax.texts if t.get_gid() == "front-label"]
    assert len(named) == len(front.get_xdata()) >= 2
    assert {t.get_text().split(" (")[0] for t in named} <= {p.get_label().split(" (")[0] for p in points}


def test_link_figure_title_fits_the_figure(figures):
    figure = figures["table1"]["link_throughput"]
    renderer = figure.canvas.get_renderer() if hasattr(figure.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw_without_rendering()
    title = figure._suptitle
    box = title.get_window_extent(renderer)
    assert title.get_text().startswith("When does compression pay?\n")
    assert box.x0 >= 0 and box.x1 <= figure.bbox.x1  # the whole title inside: not clipped
