"""The MRCZ paper's published Table 1 and how mrczbench contenders map onto its rows."""
from __future__ import annotations

import re

from mrczbench.analysis.report.select import params_of

PAPER_CITATION = (
    "McLeod R.A., Diogo Righetto R., Stewart A., Stahlberg H. (2018). MRCZ - A file format for "
    "cryo-TEM data with fast compression. J. Struct. Biol., doi:10.1016/j.jsb.2017.11.012. "
    "Table 1: 60 x 3838 x 3710 int8 stack (854 MB), 48 threads on 2 x 12-core Xeon E5-2680 v3, "
    "RAID0 disk ~300 MB/s, caches dropped between operations, averages of 20 read/writes; "
    "pigz, lbzip2 and pxz times include a read and a write.")
# (paper contender, family, codec, level, size MB (2^20), ratio stored/raw, write s, read s)
PAPER_TABLE1 = [
    ("None/int8", "uncompressed", None, None, 854, 1.00, 3.40, 3.21),
    ("uint4", "uint4", None, None, 427, 0.50, 2.14, 6.05),
    ("blosc-lz4/int8/9", "blosc", "lz4", 9, 340, 0.40, 0.50, 0.96),
    ("blosc-zstd/int8/1", "blosc", "zstd", 1, 320, 0.37, 0.76, 1.10),
    ("blosc-zstd/int8/5", "blosc", "zstd", 5, 319, 0.37, 0.86, 1.09),
    ("JPEG2000/uint8", "jpeg2000", None, None, 317, 0.37, 106.8, None),
    ("pigz/int8/1", "gzip", None, 1, 367, 0.43, 0.86, 4.74),
    ("lbzip2/int8/9", "bzip2", None, 9, 314, 0.37, 3.17, 2.23),
    ("pxz/int8/6", "xz", None, 6, 305, 0.36, 47.5, 31.8),
]


def paper_family(format_name: str) -> str | None:
    """The paper's family of a mrczbench format name (None: the paper has no such row)."""
    name = re.sub(r"[^a-z0-9]", "", format_name.lower())
    if any(key in name for key in ("4bit", "uint4", "mode101", "mrc101")):
        return "uint4"
    if any(key in name for key in ("jpeg2000", "j2k", "jp2")):
        return "jpeg2000"
    if "bz2" in name or "bzip" in name:
        return "bzip2"
    if "xz" in name or "lzma" in name:
        return "xz"
    if "gz" in name:
        return "gzip"
    if name.startswith("mrcz") or name == "blosc":
        return "blosc"
    if name in ("mrc", "raw", "none", "uncompressed", "plain"):
        return "uncompressed"
    return None


def paper_row_for(case) -> tuple | None:
    """The PAPER_TABLE1 row a case reproduces (same family, codec and level), or None."""
    params = params_of(case["params"])
    family = paper_family(case["format"])
    codec = str(params.get("codec", case["codec"]) or "").lower()
    level = params.get("level", case["level"])
    for row in PAPER_TABLE1:
        _, paper_family_name, paper_codec, paper_level, *_ = row
        if family != paper_family_name:
            continue
        if paper_codec and codec != paper_codec:
            continue
        if paper_level is not None and level is not None and level == level and int(level) != paper_level:
            continue
        return row
    return None
