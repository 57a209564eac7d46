"""IMOD/SerialEM mode 101: two 4-bit pixels per byte, the left pixel in the low nibble, each
row padded to (nx + 1) // 2 bytes.

When nx is odd, each row ends with a padding nibble (the high nibble of its last byte). IMOD,
SerialEM and mrczbench write it as 0, so a non-zero padding nibble means the header's nx is
probably one less than the width written (a 14-wide file whose nx says 13 holds the same
bytes): `warn_if_padding_used` says so with a UserWarning.
"""
from __future__ import annotations

import warnings

import numpy as np

from mrczbench.errors import MRCZError


def pack_4bit(frame: np.ndarray, clip: bool = False, path="<array>") -> np.ndarray:
    """Pack a 2-D integer frame to IMOD mode 101: two pixels per byte, the left pixel in the
    low nibble, each row padded to (nx + 1) // 2 bytes. Values outside 0..15 raise MRCZError
    unless clip=True (then they are clipped to 0..15)."""
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype.kind not in "iu":
        raise MRCZError(f"{path}: 4-bit packing needs a 2-D integer frame, got "
                        f"{frame.shape} {frame.dtype}")
    if clip:
        values = np.clip(frame, 0, 15).astype(np.uint8)
    else:
        low, high = frame.min(), frame.max()
        if low < 0 or high > 15:
            raise MRCZError(f"{path}: 4-bit (mode 101) pixels must be 0..15, found values "
                            f"{low}..{high}; pass clip=True to clip them")
        values = frame.astype(np.uint8)
    ny, nx = values.shape
    if nx % 2:
        values = np.concatenate([values, np.zeros((ny, 1), np.uint8)], axis=1)
    return values[:, 0::2] | (values[:, 1::2] << 4)


def unpack_4bit(packed: np.ndarray, nx: int) -> np.ndarray:
    """Inverse of pack_4bit: (ny, (nx + 1) // 2) bytes -> (ny, nx) uint8 pixels."""
    packed = np.asarray(packed, dtype=np.uint8)
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & 0x0F
    out[:, 1::2] = packed >> 4
    return out[:, :nx]


def warn_if_padding_used(packed: np.ndarray, nx: int, path) -> None:
    """UserWarning if nx is odd and a row's padding nibble (after pixel nx) is not 0."""
    if nx % 2 and np.any(np.asarray(packed)[..., -1] >> 4):
        warnings.warn(f"{path}: mode 101 rows are padded to whole bytes but the padding nibble "
                      f"after pixel {nx} of a row is not 0 (IMOD, SerialEM and mrczbench write "
                      f"0): the header's nx ({nx}) is probably wrong, e.g. one less than the "
                      f"width written", UserWarning, stacklevel=3)
