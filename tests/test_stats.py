"""The one summary and "unstable" rule (mrczbench.analysis.stats), and that the report and
compare give the same verdict as the rule itself on the same samples."""
from __future__ import annotations

import statistics

import numpy as np
import pytest

from mrczbench import store
from mrczbench.analysis import compare, stats
from mrczbench.analysis.report import tables
from mrczbench.analysis.results import load_result_files
from mrczbench.cli import main


def test_summary_quantiles_match_numpy_and_the_statistics_module():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.0]
    summary = stats.summarise(values)
    assert summary.n == 7
    assert summary.median == np.median(values)
    assert (summary.p10, summary.p90) == pytest.approx(tuple(np.percentile(values, [10, 90])))
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert (summary.p10, summary.p90) == pytest.approx((deciles[0], deciles[-1]))
    assert summary.spread == pytest.approx((summary.p90 - summary.p10) / summary.median)
    with pytest.raises(ValueError):
        stats.summarise([])


def test_the_rule_needs_enough_samples_and_a_wide_spread():
    wide = [1.0, 1.5]                      # spread 0.4 / 1.25, but only two samples
    assert stats.summarise(wide).spread > stats.UNSTABLE_SPREAD
    assert not stats.summarise(wide).unstable
    assert stats.summarise([1.0, 1.25, 1.5]).unstable
    assert not stats.summarise([1.0, 1.01, 1.02, 1.03, 1.04]).unstable
    assert not stats.summarise([0.0, 0.0, 0.0]).unstable  # zero median: spread 0, not NaN


# series (case id -> seconds of its samples), near and on both sides of the rule
SERIES = {
    "two-wide": [0.010, 0.015],
    "three-wide": [0.010, 0.0125, 0.015],
    "five-steady": [0.0100, 0.0101, 0.0102, 0.0101, 0.0100],
    "five-just-over": [0.0100, 0.0100, 0.0100, 0.0100, 0.0117],  # spread 0.102,
    "five-just-under": [0.0100, 0.0100, 0.0100, 0.0100, 0.0116],  # spread 0.096,
    "eight-noisy": [0.010, 0.013, 0.009, 0.011, 0.016, 0.010, 0.012, 0.010],
}


def write_series(folder, run_id):
    path = folder / f"{run_id}.jsonl"
    with store.RunFile(path) as run:
        for case_id, seconds in SERIES.items():
            run.append(store.make_row(
                run_id=run_id, suite="s", case_id=case_id, sample=i, dataset="d", dose=1.0,
                format="mrcz", codec="zstd", params={"format": "mrcz", "case": case_id},
                label=case_id, op="encode", raw_bytes=2**20, stored_bytes=2**18, seconds=s)
                for i, s in enumerate(seconds))
    return path


def test_report_and_compare_agree_with_the_rule(tmp_path, capsys):
    expected = {case_id: stats.summarise(seconds).unstable for case_id, seconds in SERIES.items()}
    # the series are chosen to land on both sides of every part of the rule
    assert expected == {"two-wide": False, "three-wide": True, "five-steady": False,
                        "five-just-over": True, "five-just-under": False, "eight-noisy": True}
    base = write_series(tmp_path / "base", "20250101T000000Z-aaaaaa")
    new = write_series(tmp_path / "new", "20250102T000000Z-bbbbbb")

    # the report: case statistics, its summary table, and the written summary.md
    case_stats = stats.case_stats(load_result_files([base]).rows)
    assert dict(zip(case_stats["case_id"], case_stats["unstable"])) == expected
    summary = tables.summary_table(case_stats).set_index("contender")
    assert {name: bool(flag) for name, flag in summary["unstable"].items()} == expected
    assert main(["report", str(base), "--out", str(tmp_path / "report")]) == 0
    lines = (tmp_path / "report" / "summary.md").read_text().splitlines()
    flagged = {case_id for case_id in SERIES
               if any(f"| {case_id} |" in line.replace("\\-", "-") and "UNSTABLE" in line
                      for line in lines)}
    assert flagged == {case_id for case_id, bad in expected.items() if bad}

    # compare: the same verdict for each side, and the same medians
    table = compare.compare_rows(load_result_files([base]).rows, load_result_files([new]).rows,
                                 min_samples=2).set_index("contender")
    for case_id, bad in expected.items():
        assert table.loc[case_id, "unstable"] == ("BASE, NEW" if bad else "")
        assert table.loc[case_id, "BASE median (s)"] == stats.summarise(SERIES[case_id]).median
    assert main(["compare", str(base), str(new), "--min-samples", "2"]) == 0
    assert "BASE, NEW" in capsys.readouterr().out


def test_median_interval_is_the_order_statistic_interval():
    from mrczbench.analysis.stats import intervals_overlap, median_ci, median_ci_ranks
    assert median_ci_ranks(5) is None and median_ci(range(5)) is None   # 93.75 % at best
    assert median_ci_ranks(6) == (1, 6) and median_ci_ranks(10) == (2, 9)
    assert median_ci_ranks(20) == (6, 15)
    assert median_ci([5, 1, 4, 2, 3, 6, 9, 8, 7, 10]) == (2.0, 9.0)
    assert intervals_overlap((1, 2), (2, 3)) and not intervals_overlap((1, 2), (2.5, 3))
    assert intervals_overlap(None, (1, 2))
