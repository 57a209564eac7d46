"""argparse `type=` validators shared by every command: a bad value is one argparse error
line (exit 2) naming the option's valid values."""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1. Got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1. Got {text!r}")
    return value


def zero_or_range(low: int, high: int, unit: str):
    """A validator of 0 (automatic) or an integer low-high (e.g. a blosc block size in bytes)."""
    valid = f"0 (automatic) or {low}-{high} {unit}"

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text!r}") from None
        if not (value == 0 or low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be {valid}, got {value}")
        return value

    return check


def positive_number(text: str) -> float:
    """A finite number > 0 ('1e309', 'inf' and 'nan' are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0. Got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0. Got {text!r}")
    return value
