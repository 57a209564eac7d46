"""argparse `type=` validators shared by every command: a bad value is one argparse error
line (exit 2) naming the option's valid values."""
from __future__ import annotations

import argparse
import math
from typing import Callable, Iterable


def integer(valid: str, accept: Callable[[int], bool]) -> Callable[[str], int]:
    """A validator for integers that `accept` takes; `valid` says which in the error
    ('expected {valid}. Got ...')."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {valid}. Got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {valid}. Got {text!r}")
        return value
    check.__name__ = check.__qualname__ = "integer"
    return check


def number(valid: str, accept: Callable[[float], bool]) -> Callable[[str], float]:
    """A validator for finite numbers that `accept` takes ('1e309', 'inf', 'nan' refused)."""
    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {valid}. Got {text!r}") from None
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"expected {valid}. Got {text!r}")
        return value
    check.__name__ = check.__qualname__ = "number"
    return check


def names_from(choices: Iterable[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """A validator for a comma-separated list of names from `choices` (case-insensitive)."""
    choices = tuple(choices)

    def check(text: str) -> tuple[str, ...]:
        names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad) or text!r}; "
                                             f"valid: {', '.join(choices)}")
        return names
    check.__name__ = check.__qualname__ = "names"
    return check


def zero_or_range(low: int, high: int, unit: str) -> Callable[[str], int]:
    """A validator of 0 (automatic) or an integer low-high (e.g. a blosc block size in bytes)."""
    return integer(f"0 (automatic) or {low}-{high} {unit}", lambda value: value == 0 or low <= value <= high)


positive_int = integer("an integer >= 1", lambda value: value >= 1)
positive_int.__doc__ = "An integer >= 1."
positive_number = number("a finite number > 0", lambda value: value > 0)
positive_number.__doc__ = "A finite number > 0 ('1e309', 'inf' and 'nan' are refused)."
non_negative_number = number("a number >= 0", lambda value: value >= 0)
fraction = number("a fraction in (0, 1]", lambda value: 0 < value <= 1)
fraction_below_one = number("a fraction in [0, 1)", lambda value: 0 <= value < 1)
precision_fraction = number("a fraction in [0, 1) (0.05 = ±5 %; 0 = a fixed count of samples)",
                            lambda value: 0 <= value < 1)
precision_fraction.__doc__ = "A precision target: a fraction in [0, 1) (0.05 = ±5 %; 0 = no target)."


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
