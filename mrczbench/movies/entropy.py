"""Shannon bound of a stack: the smallest size any lossless coder can reach for i.i.d. values.

For values drawn independently from one distribution, no lossless coder beats N·H bits, where
H is the Shannon entropy of the value histogram (bits per value). We estimate H from the
stack's own histogram (the empirical entropy), so the bound is exact for the data at hand when
pixels are i.i.d. (Poisson counts). Real detector data with spatial correlations can beat it.

`bound_ratio` follows the paper's convention for ratios: stored/raw (0.2 = 20 % of the raw
size). The Poisson closed form is a helper for tests and reports.
"""
from __future__ import annotations

import math

import numpy as np


def value_counts(stack: np.ndarray) -> np.ndarray:
    """Histogram counts of the distinct values in `stack` (order irrelevant)."""
    data = np.ascontiguousarray(stack)
    if data.dtype.itemsize <= 2 and data.dtype.kind in "iub":
        # Reinterpret as unsigned of the same width: bincount is O(N) and needs non-negatives.
        unsigned = data.view(np.uint8 if data.dtype.itemsize == 1 else np.uint16)
        counts = np.bincount(unsigned.ravel())
        return counts[counts > 0]
    # Wider or float types: compare bit patterns so -0.0/+0.0 and NaNs count as stored.
    bits = data.view(f"u{data.dtype.itemsize}").ravel()
    _, counts = np.unique(bits, return_counts=True)
    return counts


def entropy_bits(stack: np.ndarray) -> float:
    """Empirical Shannon entropy of the value histogram, in bits per value."""
    counts = value_counts(stack).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts / total
    return float(-(p * np.log2(p)).sum())


def bound_ratio(stack: np.ndarray) -> float:
    """N·H bits / raw bits: the best stored/raw any lossless coder reaches on i.i.d. values."""
    bits_per_value = np.dtype(stack.dtype).itemsize * 8
    return entropy_bits(stack) / bits_per_value


def poisson_entropy_bits(dose: float, tail: float = 1e-15) -> float:
    """Closed-form entropy (bits) of a Poisson(dose) count, summing the pmf until the tail
    mass left is below `tail`."""
    if dose <= 0:
        return 0.0
    total = 0.0
    mass = 0.0
    k = 0
    while True:
        log_p = -dose + k * math.log(dose) - math.lgamma(k + 1)
        p = math.exp(log_p)
        if p > 0:
            total -= p * log_p / math.log(2)
        mass += p
        # Stop once past the mode and the remaining mass is negligible.
        if k > dose and 1.0 - mass < tail:
            return total
        k += 1


def poisson_bound_ratio(dose: float, bits_per_value: int = 8) -> float:
    """Shannon bound (stored/raw) of i.i.d. Poisson(dose) counts stored in `bits_per_value`."""
    return poisson_entropy_bits(dose) / bits_per_value
