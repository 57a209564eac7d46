"""Plain MRC2014 bytes for the general-purpose compressors (bzip2 and the command-line tools).

Those contenders compress an ordinary .mrc file, as the paper and RELION's users do, so the
decompressed file opens in any MRC reader and carries its own shape and dtype. The header is
built from the package's one header table (mrczbench.mrc.header, mrcfile's layout); statistics are marked "not computed" (dmax < dmin,
dmean < min, rms < 0, as MRC2014 allows) so that writing does not pay for an extra pass.

8-bit data is mode 0 with the same bytes, signed or not. Which one it was is recorded the way
IMOD does it: the IMOD stamp (bytes 152-155) with imodFlags bit 0 set for signed bytes (int8)
and clear for unsigned ones (uint8). Reading gives uint8 only for a stamped file without the
signed flag, so IMOD/3dmod show the same values and any other reader still gets the bytes.
"""
from __future__ import annotations

import numpy as np

from mrczbench.errors import FormatError
from mrczbench.mrc import header as mrc_header
from mrczbench.mrc.header import DTYPE_MODES, HEADER_BYTES, IMOD_SIGNED_BYTES, IMOD_STAMP

# MRC2014 modes that hold these dtypes exactly; uint8 shares mode 0 with int8 (same bytes,
# told apart by the IMOD flags). One table for the whole package: mrczbench.mrc.header.
MODES = {dtype.name: mode for dtype, mode in DTYPE_MODES.items()}
DTYPES = {mode: np.dtype(name).newbyteorder("<") for name, mode in MODES.items()
          if name != "uint8"}
__all__ = ["MODES", "DTYPES", "HEADER_BYTES", "IMOD_STAMP", "IMOD_SIGNED_BYTES",
           "header_bytes", "data_bytes", "parse_header", "from_bytes", "read_file"]


def header_bytes(shape: tuple[int, int, int], dtype: np.dtype) -> bytes:
    dtype = np.dtype(dtype)
    if dtype.name not in MODES:
        raise FormatError(f"plain MRC cannot store {dtype.name}; supported: {', '.join(MODES)}")
    nz, ny, nx = shape
    header = mrc_header.new_header()
    header["nx"], header["ny"], header["nz"] = nx, ny, nz
    header["mode"] = MODES[dtype.name]
    if header["mode"] == 0:
        mrc_header.set_imod_bytes(header, signed=dtype.name == "int8")
    header["mx"], header["my"], header["mz"] = nx, ny, 1  # image stack: ispg 0, mz 1 (MRC2014)
    header["cella"] = (nx, ny, 1)
    header["cellb"] = (90.0, 90.0, 90.0)
    header["mapc"], header["mapr"], header["maps"] = 1, 2, 3
    # "not computed" statistics, as MRC2014 allows: writing pays for no extra pass
    (header["dmin"], header["dmax"], header["dmean"],
     header["rms"]) = mrc_header.UNDETERMINED_STATS
    header["map"] = mrc_header.MAP_STAMP
    header["machst"] = mrc_header.MACHST_LITTLE_ALT  # little-endian, as mrcfile writes it
    header["nversion"] = mrc_header.MRC_VERSION
    mrc_header.set_label(header, b"mrczbench raw MRC payload")
    return header.tobytes()


def data_bytes(stack: np.ndarray) -> bytes:
    """The stack as little-endian bytes in file order."""
    return np.ascontiguousarray(stack, dtype=stack.dtype.newbyteorder("<")).tobytes()


def to_bytes(stack: np.ndarray) -> bytes:
    return header_bytes(stack.shape, stack.dtype) + data_bytes(stack)


def parse_header(head: bytes) -> tuple[tuple[int, int, int], np.dtype, int]:
    """(shape, dtype, data offset) from the first 1024 bytes of a plain MRC file (as written
    by header_bytes: little-endian)."""
    if len(head) < HEADER_BYTES:
        raise FormatError(f"not an MRC file: {len(head)} bytes, the header needs {HEADER_BYTES}")
    header = np.frombuffer(head[:HEADER_BYTES], dtype=mrc_header.HEADER_DTYPE)[0]
    mode = int(header["mode"])
    if mode not in DTYPES:
        raise FormatError(f"unsupported MRC mode {mode}; supported: {sorted(DTYPES)}")
    shape = (int(header["nz"]), int(header["ny"]), int(header["nx"]))
    dtype = DTYPES[mode]
    if mode == 0 and mrc_header.imod_unsigned(header):
        dtype = np.dtype(np.uint8)
    return shape, dtype, HEADER_BYTES + int(header["nsymbt"])


def from_bytes(blob: bytes) -> np.ndarray:
    shape, dtype, offset = parse_header(blob[:HEADER_BYTES])
    count = shape[0] * shape[1] * shape[2]
    if len(blob) < offset + count * dtype.itemsize:
        raise FormatError("truncated MRC payload")
    data = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_file(path) -> np.ndarray:
    with open(path, "rb") as handle:
        shape, dtype, offset = parse_header(handle.read(HEADER_BYTES))
        handle.seek(offset)
        count = shape[0] * shape[1] * shape[2]
        data = np.fromfile(handle, dtype=dtype, count=count)
    if data.size != count:
        raise FormatError(f"{path}: truncated MRC payload")
    return data.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
