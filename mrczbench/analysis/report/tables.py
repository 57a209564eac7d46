"""The report's tables (pandas DataFrames): Table 1 next to the paper's numbers, when
compression pays on a link, every case and op with its statistics, and the error rows.
Each takes a case table or stats (mrczbench.analysis.stats) and returns None when the data
does not support it."""
from __future__ import annotations

from mrczbench.analysis.report.links import break_even_gbit, link_throughput
from mrczbench.analysis.report.paper import PAPER_SHAPE, PAPER_TABLE1, is_paper_shape, paper_row_for
from mrczbench.analysis.report.select import TABLE1, declared, first_op, movie_cases, truthy
from mrczbench.units import GBIT_IN_MIB_PER_S, GiB, MiB

FILE_OPS = ("write", "write_fsync", "read_cold", "read_warm")


def _paper_columns(paper, full: bool) -> dict:
    """The paper's numbers for a row: all of them beside a stack of the paper's size, only
    the (size-free) ratio beside another stack."""
    columns = {"paper contender": paper[0] if paper else "",
               "paper ratio": paper[5] if paper else None}
    if full:
        columns.update({"paper size (MB = 10^6 B)": paper[4] if paper else None,
                        "paper write (s)": paper[6] if paper else None,
                        "paper read (s)": paper[7] if paper else None})
    return columns


def _timing_columns(case, full: bool, write_op, read_op) -> dict:
    """Write and read times: seconds for the paper's stack, else seconds per GiB of raw data."""
    per = 1.0 if full else GiB / case["raw_bytes"]
    unit = "s" if full else "s/GiB raw"
    read_name = f"decompress-read{' warm' if read_op == 'read_warm' else ' cold'} ({unit})"

    def time(op, column="s"):
        value = case.get(f"{op}_{column}") if op else None
        return value * per if value is not None and value == value else None

    # each time with the half-width of its 95 % interval beside it (median ± half-width)
    return {f"compress-write ({unit})": time(write_op), "± (write)": time(write_op, "pm_s"),
            f"write+fsync ({unit})": time("write_fsync"), "± (fsync)": time("write_fsync", "pm_s"),
            read_name: time(read_op), "± (read)": time(read_op, "pm_s")}


def table1(cases):
    """Table 1 reproduction from the cases of suites that declare Table 1 (other suites'
    datasets are not the paper's stack): one block per dataset and run, every contender with
    its file timings, then the paper's rows not run. Beside a stack of the paper's size
    (PAPER_SHAPE) the paper's sizes and times sit next to ours; for other shapes sizes are
    per frame and times per GiB of raw data, with only the paper's ratio beside them.
    None without such cases."""
    import pandas as pd
    cases = declared(cases, TABLE1)
    if cases.empty:
        return None
    write_op = first_op(cases, "write", "write_fsync")
    read_op = first_op(cases, "read_cold", "read_warm")
    several_runs = cases["run_id"].nunique() > 1
    table = []
    for (dataset, run_id), block in cases.groupby(["dataset", "run_id"], sort=True):
        run = {"run": run_id} if several_runs else {}
        full = bool(block.apply(is_paper_shape, axis=1).all())
        matched = set()
        for _, case in block.sort_values("ratio").iterrows():
            paper = paper_row_for(case)
            if paper:
                matched.add(paper[0])
            frames = case["frames"] if case["frames"] == case["frames"] and case["frames"] else 1
            # the paper's Table 1 MB are 10^6 bytes: its 854 MB stack is 60 x 3838 x 3710 bytes
            size = ({"size (MB = 10^6 B)": case["stored_bytes"] / 1e6} if full else
                    {"stack": f"{case['frames']:g} x {case['ny']:g} x {case['nx']:g}",
                     "size (MiB/frame)": case["stored_bytes"] / MiB / frames})
            table.append({
                "dataset": case["dataset"], "contender": case["label"], "threads": case["threads"],
                **size, "ratio (stored/raw)": case["ratio"], "bound ratio": case["bound_ratio"],
                **_timing_columns(case, full, write_op, read_op),
                "missed ±5 % target": ", ".join(op for op in FILE_OPS if truthy(case.get(f"{op}_missed"))),
                **_paper_columns(paper, full), **run})
        for paper in PAPER_TABLE1:
            if paper[0] not in matched:
                table.append({"dataset": dataset, "contender": "(not run)",
                              **_paper_columns(paper, full), **run})
    table = pd.DataFrame(table)
    # a run without the write_fsync op (the quick and reference profiles) has no such column
    empty = [c for c in table.columns if c.startswith("write+fsync") and table[c].isna().all()]
    return table.drop(columns=empty)


def table1_note(cases) -> str:
    """What Table 1 compares: the paper's stack, or another shape in per-frame/per-GiB units."""
    cases = declared(cases, TABLE1)
    shape = " x ".join(str(n) for n in PAPER_SHAPE)
    if len(cases) and cases.apply(is_paper_shape, axis=1).all():
        return (f"Table 1: the stack is the paper's size ({shape}), so sizes and times (s) sit "
                f"beside the paper's; Table 1's MB are 10^6 bytes (its 854 MB stack is "
                f"854,338,800 bytes), unlike the MiB used elsewhere.")
    return (f"Table 1: the stack is not the paper's {shape}: sizes are MiB per frame and times "
            f"seconds per GiB of raw data; beside them only the paper's ratio (the paper's sizes "
            f"and times belong to its stack and machine). A paper row pairs only with the "
            f"program it names (lbzip2 with lbzip2, pxz with pxz or multithreaded xz, pigz with "
            f"pigz, blosc rows with MRCZ of that codec and level).")


def link_table(cases):
    """Per movie contender: speeds, ratio, break-even link speed and throughput at 1/10 Gbit/s."""
    import pandas as pd
    cases = movie_cases(cases)
    encode_op = first_op(cases, "encode", "write")
    decode_op = first_op(cases, "decode", "read_warm", "read_cold")
    if cases.empty or not encode_op or not decode_op:
        return None
    cases = cases[cases[f"{encode_op}_mibs"].notna() & cases[f"{decode_op}_mibs"].notna()]
    if cases.empty:
        return None
    several_runs = cases["run_id"].nunique() > 1  # each contender once per run: say which
    table = []
    for _, case in cases.sort_values(["dataset", "ratio"]).iterrows():
        encode, decode, ratio = case[f"{encode_op}_mibs"], case[f"{decode_op}_mibs"], case["ratio"]
        row = {"dataset": case["dataset"], "contender": case["label"], "threads": case["threads"],
               "ratio (stored/raw)": ratio, f"{encode_op} (MiB/s)": encode,
               f"± {encode_op}": case.get(f"{encode_op}_pm_mibs"),
               f"{decode_op} (MiB/s)": decode, f"± {decode_op}": case.get(f"{decode_op}_pm_mibs"),
               "pays below (Gbit/s)": break_even_gbit(encode, decode, ratio),
               "missed ±5 % target": ", ".join(op for op in (encode_op, decode_op)
                                               if truthy(case.get(f"{op}_missed")))}
        for gbit in (1.0, 10.0):
            link = gbit * GBIT_IN_MIB_PER_S
            row[f"speed-up vs raw at {gbit:g} Gbit/s (×)"] = link_throughput(encode, decode, ratio, link) / link
        if several_runs:
            row["run"] = case["run_id"]
        table.append(row)
    return pd.DataFrame(table)


def summary_table(stats):
    """All cases x ops with sample statistics (stats.case_stats), for the CSV and the appendix."""
    if stats is None or not len(stats):
        return None
    from mrczbench.analysis.stats import format_ci
    stats = stats.assign(median_pm=[format_ci(m, lo, hi, digits=4) for m, lo, hi in
                                    zip(stats["median_s"], stats["ci_low_s"], stats["ci_high_s"])],
                         precision_pct=100 * stats["precision"],
                         missed=~stats["met_target"].astype(bool))
    columns = ["dataset", "label", "format", "codec", "level", "blocksize", "threads", "op", "n",
               "invalid", "median_pm", "median_s", "ci_low_s", "ci_high_s", "precision_pct",
               "missed", "p10_s", "p90_s", "min_s", "spread", "unstable", "starved",
               "mib_per_s", "ratio", "bound_ratio", "stored_bytes", "run_id", "case_id"]
    table = stats[columns].rename(columns={
        "median_pm": "median ± 95% CI half-width (s)", "ci_low_s": "CI low (s)",
        "ci_high_s": "CI high (s)", "precision_pct": "± (% of median)",
        "missed": "target", "starved": "starved samples",
        "label": "contender", "median_s": "median (s)", "p10_s": "p10 (s)", "p90_s": "p90 (s)",
        "min_s": "min (s)", "spread": "spread (p10-p90 / median)", "mib_per_s": "median MiB/s",
        "ratio": "ratio (stored/raw)", "stored_bytes": "stored (bytes)", "blocksize": "blocksize (bytes)"})
    table["unstable"] = table["unstable"].map(lambda bad: "UNSTABLE" if bad else "")
    table["target"] = table["target"].map(lambda missed: "MISSED" if missed else "met")
    return table.sort_values(["dataset", "contender", "op"])


def error_table(rows):
    """One row per distinct error (dataset, contender, op, message) of the error rows."""
    errors = rows[rows["error"].notna()]
    return errors[["dataset", "label", "op", "case_id", "sample", "error", "run_id"]].rename(
        columns={"label": "contender"}).drop_duplicates(["dataset", "contender", "op", "error"])
