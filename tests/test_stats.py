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


# --- the interval of the median and the stopping rule ------------------------------------------

# Ranks of the order statistics bounding the median at >= 95 % (binomial, p = 1/2), as in the
# standard nonparametric tables (e.g. Conover, Practical Nonparametric Statistics, table A3)
KNOWN_RANKS = {6: (1, 6), 7: (1, 7), 8: (1, 8), 9: (2, 8), 10: (2, 9), 11: (2, 10), 12: (3, 10),
               20: (6, 15), 30: (10, 21), 50: (18, 33)}


def test_median_interval_ranks_match_the_binomial_tables():
    for n, ranks in KNOWN_RANKS.items():
        assert stats.median_ci_ranks(n) == ranks, n
        low = ranks[0]
        coverage = 1 - 2 * stats.binomial_cdf(low - 1, n)
        assert coverage >= 0.95
        # one rank narrower falls below 95 %
        assert 1 - 2 * stats.binomial_cdf(low, n) < 0.95
    assert stats.binomial_cdf(0, 6) == 1 / 64 and stats.binomial_cdf(1, 6) == 7 / 64


def test_fewer_than_six_samples_give_no_interval():
    for n in range(1, 6):
        assert stats.median_ci_ranks(n) is None
        summary = stats.summarise(range(1, n + 1))
        assert summary.ci_low is None and summary.precision == float("inf")
        assert not summary.met()
        assert summary.plus_minus().endswith("(n<6)")
    assert stats.MIN_SAMPLES_FOR_CI == 6


def test_interval_precision_and_plus_minus_text():
    summary = stats.summarise([10.0, 10.1, 9.9, 10.2, 9.8, 10.0, 10.05, 9.95, 10.3, 9.7])
    assert (summary.ci_low, summary.ci_high) == (9.8, 10.2)     # ranks 2 and 9 of 10
    assert summary.precision == pytest.approx(0.2 / 10.0)
    assert summary.met(0.05) and not summary.met(0.01)
    assert summary.plus_minus() == "10.00 ± 0.20"
    assert stats.format_ci(3.30, 3.1, 3.35) == "3.30 ± 0.20"
    assert stats.format_ci(2.0, 2.0, 2.0) == "2 ± 0"
    assert stats.format_ci(1234.0, 1200.0, 1300.0) == "1,234 ± 66"


def test_ties_are_overlapping_intervals():
    assert stats.intervals_overlap((1.0, 2.0), (1.9, 3.0))
    assert not stats.intervals_overlap((1.0, 2.0), (2.1, 3.0))
    assert stats.intervals_overlap(None, (2.1, 3.0))  # no interval: cannot separate


class FakeSource:
    """Samples from a list, one per round, as the runner's rounds take them."""

    def __init__(self, values, seconds_per_round=1.0):
        self.values, self.seconds_per_round = list(values), seconds_per_round

    def run(self, rule):
        taken, spent = [], 0.0
        for value in self.values:
            taken.append(value)
            spent += self.seconds_per_round
            reason = stats.stop_reason(rule, {"encode": taken}, spent, len(taken))
            if reason:
                return reason, len(taken)
        return "source ran dry", len(taken)


def test_the_stopping_rule_on_a_fake_sample_source():
    rule = stats.SamplingRule(precision=0.05, min_samples=6, max_samples=30, budget_s=100)
    steady = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99]
    assert FakeSource(steady).run(rule) == ("target met", 6)       # never fewer than 6
    noisy = [1.0, 1.5, 0.7, 1.3, 0.8, 1.2] + [1.0, 1.01, 0.99] * 20
    reason, n = FakeSource(noisy).run(rule)
    assert reason == "target met" and 6 < n < 30                   # more samples narrow it
    wild = [1.0, 2.0] * 50
    assert FakeSource(wild).run(rule) == ("max samples", 30)
    assert FakeSource(wild, seconds_per_round=10).run(rule) == ("budget spent", 10)
    # the budget never cuts below the minimum: fewer cannot give an interval
    assert FakeSource(wild, seconds_per_round=1000).run(rule) == ("budget spent", 6)
    fixed = stats.SamplingRule(precision=0, min_samples=3, max_samples=3, budget_s=0)
    assert FakeSource(wild).run(fixed) == ("fixed budget", 3)
    # an op with no valid sample (failed, or a cold read that was never cold) holds nothing back
    assert stats.stop_reason(rule, {"encode": steady[:6], "read_cold": []}, 6, 6) == "target met"


def test_case_stats_carry_the_interval_and_the_target(tmp_path):
    base = write_series(tmp_path / "base", "20250101T000000Z-aaaaaa")
    table = stats.case_stats(load_result_files([base]).rows).set_index("case_id")
    for case_id, seconds in SERIES.items():
        ci = stats.median_ci(seconds)
        row = table.loc[case_id]
        if ci is None:
            assert np.isnan(row["ci_low_s"]) and not row["met_target"]
        else:
            assert (row["ci_low_s"], row["ci_high_s"]) == ci
            assert row["met_target"] == (stats.summarise(seconds).precision <= 0.05)
        assert row["target"] == stats.DEFAULT_PRECISION
    assert table.loc["five-steady", "met_target"] == False  # 5 samples: no interval   # noqa: E712
    assert table.loc["eight-noisy", "met_target"] == False  # noqa: E712


def test_starved_samples_are_those_whose_threads_waited():
    # 2 threads: CPU/wall 2 when both ran, 1 when the machine gave the process one core
    seconds = [1.0, 1.0, 1.0, 1.9, 1.0, 2.0]
    cpu = [2.0, 2.0, 2.0, 1.9, 2.0, 2.0]
    assert stats.starved_samples(seconds, cpu) == 2
    assert stats.starved_samples(seconds, [None] * 6) == 0
