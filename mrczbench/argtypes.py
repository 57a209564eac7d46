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


EER_GROUPING = 32  # internal frames per fraction unless --eer-grouping says otherwise


def add_eer_grouping(parser: argparse.ArgumentParser) -> None:
    """--eer-grouping N: RELION's EER fractionation (--eer_grouping), one option for every
    command that renders EER movies."""
    parser.add_argument("--eer-grouping", type=positive_int, default=EER_GROUPING, metavar="N",
                        help=f"EER internal frames summed into one frame (RELION's "
                        f"--eer_grouping; remainder dropped), >= 1 (default {EER_GROUPING})")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """--no-progress, the same on every command that prints progress on stderr."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output on stderr")
