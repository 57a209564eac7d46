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


def positive_number(text: str) -> float:
    """A finite number > 0 ('1e309', 'inf' and 'nan' are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0. Got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0. Got {text!r}")
    return value


def precision_fraction(text: str) -> float:
    """A precision target: a fraction in [0, 1) (0.05 = ±5 %; 0 = no target)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1) (0.05 = ±5 %; 0 = a "
                                         f"fixed count of samples). Got {text!r}")
    return value
