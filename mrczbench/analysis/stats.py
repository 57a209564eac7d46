"""Summaries of timing samples: the one place that says what a series' median, p10/p90 and
spread are, and when a series is "unstable". The terminal summary (bench), the report and
compare all call this module, so a run is unstable in all of them or in none.

`summarise` works on one series of plain numbers; `case_stats` and `case_table` apply the same
statistics and the same rule to a pandas frame of result rows (one series per run, case, op).

Quantiles are linear interpolation between order statistics (numpy's and pandas' default,
`statistics.quantiles(..., method="inclusive")`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

# A series is unstable when its p10-p90 spread exceeds this fraction of its median...
UNSTABLE_SPREAD = 0.10
# ...and it has at least this many samples (with fewer, p10 and p90 are the extremes).
MIN_SAMPLES_FOR_SPREAD = 3


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p10: float
    p90: float

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
    """median, p10, p90 of a non-empty series."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("summarise() needs at least one value")
    return Summary(len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.1), quantile(ordered, 0.9))


# --- the 95 % interval of a median ------------------------------------------------------------
# Distribution-free (order statistics): with n sorted samples, the count below the true median
# is Binomial(n, 1/2), so [x(k), x(n+1-k)] covers it with probability 1 - 2 P(B <= k-1); the
# largest k still at >= 95 % gives the narrowest interval. Fewer than 6 samples give none
# (n = 5: [x(1), x(5)] covers 93.75 %).
CONFIDENCE = 0.95
MIN_SAMPLES_FOR_CI = 6


def binomial_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2), exactly."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2 ** n


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (lo, hi) of the order statistics bounding the median with at least
    `confidence`, as narrow as that allows; None when n samples cannot."""
    best = None
    for k in range(1, n // 2 + 1):
        if 1 - 2 * binomial_cdf(k - 1, n) < confidence:
            break
        best = (k, n + 1 - k)
    return best


def median_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The distribution-free interval of the median of `values`, or None (too few samples)."""
    ordered = sorted(float(v) for v in values)
    ranks = median_ci_ranks(len(ordered), confidence)
    return None if ranks is None else (ordered[ranks[0] - 1], ordered[ranks[1] - 1])


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """True when two medians' intervals overlap (or one has none): not a significant
    difference, a tie."""
    if a is None or b is None or any(v is None or math.isnan(v) for v in (*a, *b)):
        return True
    return a[0] <= b[1] and b[0] <= a[1]


# --- result rows (pandas) -------------------------------------------------------------------
STATS_COLUMNS = ("n", "invalid", "median_s", "p10_s", "p90_s", "min_s", "spread", "unstable",
                 "mib_per_s", "ratio", "bound_ratio", "raw_bytes", "stored_bytes")


def case_stats(rows):
    """One row per (run, case, op) of normalised rows (results.normalise_rows): statistics of
    the valid, error-free samples.

    Columns: run_id, case_id, op, the case columns, n, invalid (excluded cold samples),
    median_s, p10_s, p90_s, min_s, spread ((p90 - p10) / median), unstable (is_unstable),
    mib_per_s (raw MiB / median s), and the median ratio, bound_ratio, raw_bytes, stored_bytes."""
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
    and per op `<op>_s`, `<op>_mibs`, `<op>_lo_mibs`/`<op>_hi_mibs` (MiB/s at p90/p10 time)
    and `<op>_unstable`."""
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
        cases[f"{op}_unstable"] = part["unstable"].astype(bool)
    return cases.reset_index()
