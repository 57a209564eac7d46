"""The arithmetic behind the speed figures and tables: the Pareto front of speed vs ratio and
the compress + transfer + decompress model of a network link (speeds in MiB/s of raw data,
link speeds in Gbit/s = 10^9 bit/s)."""
from __future__ import annotations

import math

from mrczbench.units import GBIT_IN_MIB_PER_S

LINK_RANGE_GBIT = (0.1, 10.0)  # the link figure's x axis


def pareto_front(speed, ratio) -> list[int]:
    """Positions of the points no other point beats on both speed (higher) and ratio (lower),
    ordered by speed."""
    order = sorted(range(len(speed)), key=lambda i: (-speed[i], ratio[i]))
    front, best_ratio = [], math.inf
    for i in order:
        if ratio[i] < best_ratio:
            front.append(i)
            best_ratio = ratio[i]
    return sorted(front, key=lambda i: speed[i])


def link_throughput(encode_mibs: float, decode_mibs: float, ratio: float, link_mibs):
    """Raw MiB/s moved when compress, transfer of ratio x the data, and decompress run one after
    the other (no overlap: the pessimistic case)."""
    return 1.0 / (1.0 / encode_mibs + ratio / link_mibs + 1.0 / decode_mibs)


def break_even_gbit(encode_mibs: float, decode_mibs: float, ratio: float) -> float:
    """Link speed below which compressing pays: 1/enc + r/L + 1/dec < 1/L."""
    if ratio >= 1.0:
        return 0.0
    return (1.0 - ratio) / (1.0 / encode_mibs + 1.0 / decode_mibs) / GBIT_IN_MIB_PER_S
