"""Units and how numbers are written, for every module (docs/DESIGN.md, "Units everywhere").

MiB = 2^20 bytes (the MRCZ paper's "MB"); speeds are MiB/s of raw data; link speeds are
Gbit/s = 10^9 bit/s. One number formatter, one size formatter, one duration formatter and one
plain-text table, so tables, terminal summaries and reports write the same value the same way."""
from __future__ import annotations

import math
import re
from typing import Any

KiB = 2 ** 10
MiB = 2 ** 20
GiB = 2 ** 30
GBIT_IN_MIB_PER_S = 1e9 / 8 / MiB  # 1 Gbit/s (network, 10^9 bit) in MiB/s

_SIZE_SCALE = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": 2 ** 40}


def is_missing(value: Any) -> bool:
    """None or a float NaN (pandas' missing value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: Any, missing: str = "") -> str:
    """Integers (and integral floats) exactly; other floats with 3 significant digits below
    1000 and as whole numbers with thousands separators above (1,234); `missing` for None/NaN."""
    if is_missing(value):
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
            return format_number(value.item(), missing)
        return str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def format_bytes(size: float) -> str:
    """A size in the largest binary unit that keeps it at or above 1: '512 bytes', '1.5 MiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """Wall-clock durations: 'm:ss' below an hour, 'h:mm:ss' above."""
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def format_table(header, rows, align: str = "", rule: bool = False) -> str:
    """A plain-text table of text cells: columns two spaces apart, each as wide as its widest
    cell; align[i] is 'l' or 'r' for column i (missing: 'l'; numbers read best right-aligned);
    `rule`: a dashed line under the header. Lines carry no trailing spaces."""
    table = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]

    def line(cells) -> str:
        return "  ".join(cell.rjust(w) if align[i:i + 1] == "r" else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(table[0])] + (["  ".join("-" * w for w in widths)] if rule else [])
    return "\n".join(lines + [line(row) for row in table[1:]])


def parse_size(value: Any) -> int | None:
    """Bytes from an int or a size text as sysfs and lscpu write them ('512K', '256 KiB',
    '1 MiB (2 instances)', '30M'); None when it is not a size."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if math.isfinite(value) else None
    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\b", str(value), re.IGNORECASE)
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_SCALE[match.group(2).upper()])
