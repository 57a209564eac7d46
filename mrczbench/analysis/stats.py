"""Summaries of timing samples: the one place that says what a series' median, p10/p90 and
spread are, and when a series is "unstable". The terminal summary (bench), the report and
compare all call this module, so a run is unstable in all of them or in none.

Quantiles are linear interpolation between order statistics (numpy's and pandas' default,
`statistics.quantiles(..., method="inclusive")`)."""
from __future__ import annotations

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
        return is_unstable(self.n, self.spread)


def is_unstable(n: int, spread: float) -> bool:
    """The single "unstable" rule (also applied column-wise by pandas callers)."""
    return n >= MIN_SAMPLES_FOR_SPREAD and spread > UNSTABLE_SPREAD


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
