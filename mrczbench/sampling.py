"""The 95 % confidence interval of a median and when sampling a series may stop: the
statistics the runner needs while it measures (mrczbench.bench) and the analysis uses after
(mrczbench.analysis.stats re-exports them), so both apply one rule.

The interval is distribution-free (order statistics): with n sorted samples x(1) <= ... <=
x(n), the number of samples below the true median is Binomial(n, 1/2), so [x(k), x(n+1-k)]
covers the median with probability 1 - 2 P(B <= k-1). `median_ci_ranks` takes the largest k
whose coverage is still >= 95 %. Fewer than 6 samples cannot give a 95 % interval (n = 5:
[x(1), x(5)] covers 93.75 %). The precision of a series is the interval's larger half-width
relative to its median; a series meets its target when that is <= the target (±5 % by
default)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

# The interval of the median: its confidence, and the fewest samples that can give one.
CONFIDENCE = 0.95
MIN_SAMPLES_FOR_CI = 6
# Precision target of a series (relative half-width of its median's interval) where its rows
# name none: the full and reference profiles' default.
DEFAULT_PRECISION = 0.05
def binomial_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2), exactly (integer arithmetic)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2 ** n


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (lo, hi) of the order statistics that bound the median with at least
    `confidence`, as narrow as that allows; None when n samples cannot (n < 6 at 95 %)."""
    best = None
    for k in range(1, n // 2 + 1):
        if 1 - 2 * binomial_cdf(k - 1, n) >= confidence:
            best = (k, n + 1 - k)
        else:
            break
    return best


def median_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The distribution-free interval of the median of `values`, or None (too few samples)."""
    ordered = sorted(float(v) for v in values)
    ranks = median_ci_ranks(len(ordered), confidence)
    if ranks is None:
        return None
    return ordered[ranks[0] - 1], ordered[ranks[1] - 1]


def relative_half_width(median: float, low: float | None, high: float | None) -> float:
    """The interval's larger half-width over the median; inf without an interval, 0 for a
    zero median with a zero-width interval."""
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return math.inf
    half = max(median - low, high - median)
    if median == 0:
        return 0.0 if half == 0 else math.inf
    return half / abs(median)


def median(values: Iterable[float]) -> float:
    """The median (the mean of the middle two for an even count) of a non-empty series."""
    ordered = sorted(float(v) for v in values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def precision(values: Sequence[float]) -> float:
    """Relative half-width of the median's 95 % interval (inf with fewer than 6 samples)."""
    interval = median_ci(values)
    if interval is None:
        return math.inf
    return relative_half_width(median(values), *interval)


# --- when sampling a series may stop ----------------------------------------------------------
@dataclass(frozen=True)
class SamplingRule:
    """How many samples a case gets. precision > 0: sample until every op's median interval is
    within ±precision (at least `min_samples`, at most `max_samples`) or `budget_s` seconds of
    the case's rounds are spent; precision 0: exactly `min_samples` (a fixed budget)."""
    precision: float
    min_samples: int
    max_samples: int
    budget_s: float

    @property
    def fixed(self) -> bool:
        return not self.precision


def stop_reason(rule: SamplingRule, samples: dict[str, Sequence[float]], spent_s: float,
                rounds: int) -> str | None:
    """Why a case leaves the rounds after `rounds` rounds ("fixed budget", "target met",
    "budget spent", "max samples"), or None to sample it again. `samples`: per op, the
    valid seconds so far; an op without valid samples yet does not hold the case back once
    the minimum is reached (it failed or is not measurable: nothing more to learn)."""
    if rounds < rule.min_samples:
        return None  # the minimum comes first, budget or not: fewer cannot give an interval
    if rule.fixed:
        return "fixed budget"
    if all(precision(values) <= rule.precision for values in samples.values() if len(values)):
        return "target met"
    if rounds >= rule.max_samples:
        return "max samples"
    if rule.budget_s and spent_s >= rule.budget_s:
        return "budget spent"
    return None
