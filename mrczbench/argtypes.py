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
