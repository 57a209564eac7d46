"""Summaries of timing samples: the one place that says what a series' median, p10/p90,
spread and the 95 % confidence interval of its median are, when a series is "unstable", when
it met its precision target, and when sampling a series may stop. The runner (bench), the
terminal summary, the report, compare and recommend all call this module, so a series is
unstable (or met its target) in all of them or in none.

The confidence interval of the median (distribution-free, order statistics) and the stopping
rule are mrczbench.sampling's (below bench and analysis, so the runner uses them while it
measures); this module re-exports them.

`summarise` works on one series of plain numbers; `case_stats` and `case_table` apply the same
statistics and the same rule to a pandas frame of result rows (one series per run, case, op).

Quantiles are linear interpolation between order statistics (numpy's and pandas' default,
`statistics.quantiles(..., method="inclusive")`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

# the interval of the median and the stopping rule live below bench and analysis
from mrczbench.sampling import (CONFIDENCE, DEFAULT_PRECISION, MIN_SAMPLES_FOR_CI,  # noqa: F401
                                SamplingRule, binomial_cdf, median_ci, median_ci_ranks,
                                relative_half_width, stop_reason)

# A series is unstable when its p10-p90 spread exceeds this fraction of its median...
UNSTABLE_SPREAD = 0.10
# ...and it has at least this many samples (with fewer, p10 and p90 are the extremes).
MIN_SAMPLES_FOR_SPREAD = 3


# A sample's threads were starved when its CPU/wall ratio is below this fraction of the
# series' typical (median) ratio: on a shared machine a 2-thread sample then ran on one core.
STARVED_FRACTION = 0.75


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p10: float
    p90: float
    ci_low: float | None = None   # 95 % interval of the median (None with < 6 samples)
    ci_high: float | None = None

    @property
    def precision(self) -> float:
        """Relative half-width of the median's interval (inf without one)."""
        return relative_half_width(self.median, self.ci_low, self.ci_high)

    def met(self, target: float = DEFAULT_PRECISION) -> bool:
        return self.precision <= target

    def plus_minus(self, scale: float = 1.0, digits: int = 3) -> str:
        """'median ± half-width' (the larger side), or 'median (n<6)' without an interval."""
        return format_ci(self.median * scale, None if self.ci_low is None else self.ci_low * scale,
                         None if self.ci_high is None else self.ci_high * scale, digits)

    @property
    def spread(self) -> float:
        """(p90 - p10) / median; 0 for a zero median."""
        return (self.p90 - self.p10) / self.median if self.median else 0.0

    @property
    def unstable(self) -> bool:
        return bool(is_unstable(self.n, self.spread))


def is_unstable(n, spread):
    """The single "unstable" rule. Works on numbers and, element-wise, on pandas columns."""
    return (n >= MIN_SAMPLES_FOR_SPREAD) & (spread > UNSTABLE_SPREAD)


UNSTABLE_RULE = (f"p10–p90 spread above {UNSTABLE_SPREAD:.0%} of the median, "
                 f"with ≥ {MIN_SAMPLES_FOR_SPREAD} samples")


def quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(values: Iterable[float]) -> Summary:
    """median, p10, p90 and the median's 95 % interval of a non-empty series."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("summarise() needs at least one value")
    ci = median_ci(ordered)
    return Summary(len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.1),
                   quantile(ordered, 0.9), *(ci or (None, None)))


def format_ci(median: float, low: float | None, high: float | None, digits: int = 3) -> str:
    """'median ± half-width': the larger half-width to 2 significant digits and the median to
    the same decimals ('10.00 ± 0.20', '1,234 ± 66'), or 'median (n<6)' without an interval."""
    if median is None or (isinstance(median, float) and math.isnan(median)):
        return "-"
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        text = f"{median:,.0f}" if abs(median) >= 10 ** digits else f"{median:.{digits}g}"
        return f"{text} (n<{MIN_SAMPLES_FOR_CI})"
    half = max(median - low, high - median)
    decimals = min(6, max(0, 1 - math.floor(math.log10(half)))) if half > 0 else 0
    return f"{median:,.{decimals}f} ± {half:,.{decimals}f}"


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """True when two medians' intervals overlap (or one has none): their difference is not
    significant, so the two are tied."""
    if a is None or b is None or any(v is None or math.isnan(v) for v in (*a, *b)):
        return True
    return a[0] <= b[1] and b[0] <= a[1]


# --- result rows (pandas) -------------------------------------------------------------------
STATS_COLUMNS = ("n", "invalid", "median_s", "p10_s", "p90_s", "min_s", "spread", "unstable",
                 "ci_low_s", "ci_high_s", "precision", "target", "met_target", "starved",
                 "mib_per_s", "ratio", "bound_ratio", "raw_bytes", "stored_bytes")


def series_target(targets) -> float:
    """A series' precision target from its rows' `precision_target` (the run's setting): the
    default where the rows name none or a fixed budget (0: the quick profile, --repeats)."""
    import pandas as pd
    values = pd.to_numeric(pd.Series(targets), errors="coerce").dropna()
    values = values[values > 0]
    return float(values.iloc[0]) if len(values) else DEFAULT_PRECISION


def starved_samples(seconds, cpu_seconds) -> int:
    """Samples whose CPU/wall ratio is below STARVED_FRACTION of the series' median ratio
    (their threads waited for a core); 0 where CPU time was not recorded."""
    import pandas as pd
    ratio = (pd.to_numeric(pd.Series(list(cpu_seconds)), errors="coerce")
             / pd.to_numeric(pd.Series(list(seconds)), errors="coerce")).dropna()
    ratio = ratio[ratio > 0]
    if len(ratio) < 2:
        return 0
    return int((ratio < STARVED_FRACTION * ratio.median()).sum())


def case_stats(rows):
    """One row per (run, case, op) of normalised rows (results.normalise_rows): statistics of
    the valid, error-free samples.

    Columns: run_id, case_id, op, the case columns, n, invalid (excluded cold samples),
    median_s, p10_s, p90_s, min_s, spread ((p90 - p10) / median), unstable (is_unstable),
    ci_low_s/ci_high_s (95 % interval of the median, NaN with < 6 samples), precision (its
    relative half-width, inf without one), target (series_target), met_target, starved
    (starved_samples), mib_per_s (raw MiB / median s), and the median ratio, bound_ratio,
    raw_bytes, stored_bytes."""
    import pandas as pd
    from mrczbench.store import CASE_COLUMNS
    from mrczbench.units import MiB
    keys = ["run_id", "case_id", "op"]  # a case id is unique within its run
    case_columns = list(CASE_COLUMNS)
    timed = rows[rows["error"].isna()]
    invalid = timed[~timed["valid"]].groupby(keys).size().rename("invalid")
    valid = timed[timed["valid"] & timed["seconds"].notna()]
    if valid.empty:
        return pd.DataFrame(columns=[*keys, *case_columns, *STATS_COLUMNS])
    grouped = valid.groupby(keys, sort=False)
    stats = grouped[case_columns].first()
    seconds = grouped["seconds"]
    # pandas' quantile interpolates linearly, as quantile() above does
    stats["n"] = seconds.count()
    stats["median_s"] = seconds.median()
    stats["p10_s"] = seconds.quantile(0.10)
    stats["p90_s"] = seconds.quantile(0.90)
    stats["min_s"] = seconds.min()
    intervals = seconds.apply(lambda values: median_ci(values) or (math.nan, math.nan))
    stats["ci_low_s"] = intervals.map(lambda ci: ci[0])
    stats["ci_high_s"] = intervals.map(lambda ci: ci[1])
    stats["precision"] = [relative_half_width(m, lo, hi) for m, lo, hi in
                          zip(stats["median_s"], stats["ci_low_s"], stats["ci_high_s"])]
    if "precision_target" in valid.columns:
        stats["target"] = grouped["precision_target"].agg(series_target)
    else:
        stats["target"] = DEFAULT_PRECISION
    stats["met_target"] = (stats["precision"] <= stats["target"]).astype(bool)
    if "cpu_seconds" in valid.columns:
        stats["starved"] = pd.Series({key: starved_samples(part["seconds"], part["cpu_seconds"])
                                      for key, part in grouped})
    else:
        stats["starved"] = 0
    for column in ("ratio", "bound_ratio", "raw_bytes", "stored_bytes"):
        stats[column] = grouped[column].median()
    stats = stats.join(invalid, how="left")
    stats["invalid"] = stats["invalid"].fillna(0).astype(int)
    median = stats["median_s"].where(stats["median_s"] != 0)
    stats["spread"] = ((stats["p90_s"] - stats["p10_s"]) / median).fillna(0.0)
    stats["unstable"] = is_unstable(stats["n"], stats["spread"]).astype(bool)
    stats["mib_per_s"] = stats["raw_bytes"] / MiB / stats["median_s"]
    return stats.reset_index()


def case_table(stats):
    """One row per (run, case) of case_stats: the case columns, the median sizes and ratio,
    and per op `<op>_s`, `<op>_mibs`, `<op>_lo_mibs`/`<op>_hi_mibs` (MiB/s at p90/p10 time),
    `<op>_ci_lo_mibs`/`<op>_ci_hi_mibs` (MiB/s at the ends of the median's interval, NaN
    without one), `<op>_pm_s`/`<op>_pm_mibs` (its larger half-width), `<op>_unstable` and
    `<op>_missed` (the series missed its precision target)."""
    import pandas as pd
    from mrczbench.store import CASE_COLUMNS
    from mrczbench.units import MiB
    case_columns = list(CASE_COLUMNS)
    if stats.empty:
        return pd.DataFrame(columns=["run_id", "case_id", *case_columns, "ratio", "bound_ratio"])
    keys = ["run_id", "case_id"]
    grouped = stats.groupby(keys, sort=False)
    cases = grouped[case_columns].first()
    # in-memory and on-disk sizes differ by the file header: one size per case, the median
    for column in ("raw_bytes", "stored_bytes", "ratio", "bound_ratio"):
        cases[column] = grouped[column].median()
    for op, part in stats.groupby("op"):
        part = part.set_index(keys)
        cases[f"{op}_s"] = part["median_s"]
        cases[f"{op}_mibs"] = part["mib_per_s"]
        cases[f"{op}_lo_mibs"] = part["raw_bytes"] / MiB / part["p90_s"]
        cases[f"{op}_hi_mibs"] = part["raw_bytes"] / MiB / part["p10_s"]
        cases[f"{op}_ci_lo_mibs"] = part["raw_bytes"] / MiB / part["ci_high_s"]
        cases[f"{op}_ci_hi_mibs"] = part["raw_bytes"] / MiB / part["ci_low_s"]
        # the larger half-width of the median's interval, in seconds and in MiB/s
        cases[f"{op}_pm_s"] = pd.concat([part["median_s"] - part["ci_low_s"],
                                         part["ci_high_s"] - part["median_s"]], axis=1).max(axis=1, skipna=False)
        cases[f"{op}_pm_mibs"] = pd.concat([cases[f"{op}_mibs"] - cases[f"{op}_ci_lo_mibs"],
                                            cases[f"{op}_ci_hi_mibs"] - cases[f"{op}_mibs"]],
                                           axis=1).max(axis=1, skipna=False)
        cases[f"{op}_unstable"] = part["unstable"].astype(bool)
        cases[f"{op}_missed"] = ~part["met_target"].astype(bool)
    return cases.reset_index()
