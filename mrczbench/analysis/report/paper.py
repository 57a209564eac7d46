"""The MRCZ paper's published Table 1 and how mrczbench contenders map onto its rows."""
from __future__ import annotations

from mrczbench.analysis.report.select import params_of

PAPER_CITATION = (
    "McLeod R.A., Diogo Righetto R., Stewart A., Stahlberg H. (2018). MRCZ - A file format for "
    "cryo-TEM data with fast compression. J. Struct. Biol., doi:10.1016/j.jsb.2017.11.012. "
    "Table 1: 60 x 3838 x 3710 int8 stack (854 MB), 48 threads on 2 x 12-core Xeon E5-2680 v3, "
    "RAID0 disk ~300 MB/s, caches dropped between operations, averages of 20 read/writes; "
    "pigz, lbzip2 and pxz times include a read and a write.")
PAPER_SHAPE = (60, 3838, 3710)  # frames, ny, nx of the paper's Table 1 stack
# (paper contender, formats that really are it, codec, level, size MB (10^6 bytes), ratio
# stored/raw, write s, read s). bzip2 is not lbzip2 and xz with one thread is not pxz: a paper
# row pairs only with the contender that runs the same program (pxz = xz -T with threads).
PAPER_TABLE1 = [
    ("None/int8", ("mrc",), None, None, 854, 1.00, 3.40, 3.21),
    ("uint4", ("mrc-uint4",), None, None, 427, 0.50, 2.14, 6.05),
    ("blosc-lz4/int8/9", ("mrcz",), "lz4", 9, 340, 0.40, 0.50, 0.96),
    ("blosc-zstd/int8/1", ("mrcz",), "zstd", 1, 320, 0.37, 0.76, 1.10),
    ("blosc-zstd/int8/5", ("mrcz",), "zstd", 5, 319, 0.37, 0.86, 1.09),
    ("JPEG2000/uint8", ("jpeg2000",), None, None, 317, 0.37, 106.8, None),
    ("pigz/int8/1", ("pigz",), None, 1, 367, 0.43, 0.86, 4.74),
    ("lbzip2/int8/9", ("lbzip2",), None, 9, 314, 0.37, 3.17, 2.23),
    ("pxz/int8/6", ("pxz", "xz"), None, 6, 305, 0.36, 47.5, 31.8),
]
MULTITHREADED_ONLY = {"xz"}  # formats that are the paper's program only with threads > 1


def is_paper_shape(case) -> bool:
    """The case's stack is the paper's 60 x 3838 x 3710."""
    try:
        return (int(case["frames"]), int(case["ny"]), int(case["nx"])) == PAPER_SHAPE
    except (TypeError, ValueError):
        return False


def paper_row_for(case) -> tuple | None:
    """The PAPER_TABLE1 row a case reproduces (the same program, codec and level), or None."""
    params = params_of(case["params"])
    fmt = str(case["format"])
    codec = str(params.get("codec", case["codec"]) or "").lower()
    level = params.get("level", case["level"])
    threads = params.get("threads", case["threads"])
    if fmt in MULTITHREADED_ONLY and not (isinstance(threads, (int, float)) and threads > 1):
        return None
    for row in PAPER_TABLE1:
        _, formats, paper_codec, paper_level, *_ = row
        if fmt not in formats:
            continue
        if paper_codec and codec != paper_codec:
            continue
        if paper_level is not None and level is not None and level == level \
                and int(level) != paper_level:
            continue
        return row
    return None
