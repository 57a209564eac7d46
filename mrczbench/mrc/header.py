"""The MRC2014 header, declared once, and the constants of the MRC/MRCZ formats.

`HEADER_DTYPE` is the 1024-byte header as a numpy structured dtype, field for field as
mrcfile's `mrcfile.dtypes.HEADER_DTYPE`, except that MRC2014's free space (mrcfile's
`extra2`, bytes 112-195) is split into the fields python-mrcz and IMOD keep there:

  bytes 132-143  voltage (kV), C3 (mm), gain (counts/electron)   python-mrcz, float32
  bytes 144-151  packed_bytes: total bytes of the blosc chunks     python-mrcz, int64
  bytes 152-159  imod_stamp, imod_flags (bit 0 = signed bytes)     IMOD

The dtype is little-endian; `HEADER_DTYPE.newbyteorder('>')` reads big-endian files.

nversion: plain MRC files get 20140 (MRC2014 as published). mrcfile writes 20141 (the 2017
update) and its validator accepts both; IMOD writes 20140. python-mrcz writes 0 (its
compressed headers are reproduced byte for byte, so they keep 0), and the golden files
pin 20140 for our plain files. One value, MRC_VERSION, for every writer here.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from mrczbench.errors import MRCZError
from mrczbench.mrc import chunks, extended
from mrczbench.mrc.chunks import CHUNK_HEADER_BYTES, MAX_CHUNK_NBYTES, MAX_CHUNK_RATIO

HEADER_BYTES = 1024

HEADER_DTYPE = np.dtype([
    ("nx", "<i4"), ("ny", "<i4"), ("nz", "<i4"),          # 0: columns, rows, sections
    ("mode", "<i4"),                                       # 12: MRC mode + 1000 * codec id
    ("nxstart", "<i4"), ("nystart", "<i4"), ("nzstart", "<i4"),
    ("mx", "<i4"), ("my", "<i4"), ("mz", "<i4"),           # 28: sampling
    ("cella", "<f4", (3,)),                                # 40: cell size, Angstrom
    ("cellb", "<f4", (3,)),                                # 52: cell angles
    ("mapc", "<i4"), ("mapr", "<i4"), ("maps", "<i4"),     # 64
    ("dmin", "<f4"), ("dmax", "<f4"), ("dmean", "<f4"),    # 76
    ("ispg", "<i4"),                                       # 88
    ("nsymbt", "<i4"),                                     # 92: extended header bytes
    ("extra1", "V8"),                                      # 96
    ("exttyp", "S4"),                                      # 104: b'json', b'mpk ', ...
    ("nversion", "<i4"),                                   # 108
    ("extra2a", "V20"),                                    # 112
    ("voltage", "<f4"), ("C3", "<f4"), ("gain", "<f4"),    # 132: python-mrcz
    ("packed_bytes", "<i8"),                               # 144: python-mrcz
    ("imod_stamp", "<i4"), ("imod_flags", "<i4"),          # 152: IMOD
    ("extra2b", "V36"),                                    # 160
    ("origin", "<f4", (3,)),                               # 196
    ("map", "S4"),                                         # 208: b'MAP '
    ("machst", "u1", (4,)),                                # 212: machine stamp
    ("rms", "<f4"),                                        # 216
    ("nlabl", "<i4"),                                      # 220
    ("label", "S80", (10,)),                               # 224
])
assert HEADER_DTYPE.itemsize == HEADER_BYTES

MRC_VERSION = 20140
MAP_STAMP = b"MAP "
# Machine stamps. python-mrcz writes 0x44 0x41 (0x44 0x44 is also little-endian).
MACHST_LITTLE = (0x44, 0x41, 0, 0)
MACHST_LITTLE_ALT = (0x44, 0x44, 0, 0)
MACHST_BIG = (0x11, 0x11, 0, 0)
LABEL = b"MRCZ0.6.0"  # python-mrcz reads its format version from the label

# Modes. Mode 101 (IMOD 4-bit) is unpacked to one uint8 per pixel. Mode 12 (float16) is
# MRC2014's 2017 addition: python-mrcz does not know it, mrcfile and IMOD do.
MODE_4BIT = 101
MODE_DTYPES = {0: np.dtype(np.int8), 1: np.dtype(np.int16), 2: np.dtype(np.float32),
               4: np.dtype(np.complex64), 6: np.dtype(np.uint16), 12: np.dtype(np.float16),
               MODE_4BIT: np.dtype(np.uint8)}
# uint8 is stored as mode 0 (the same bytes as int8), marked as described in mrczbench.mrcz.
DTYPE_MODES = {np.dtype(np.int8): 0, np.dtype(np.uint8): 0, np.dtype(np.int16): 1,
               np.dtype(np.float32): 2, np.dtype(np.complex64): 4, np.dtype(np.uint16): 6,
               np.dtype(np.float16): 12}

# IMOD's convention for mode 0 signedness: imod_stamp = IMOD_STAMP and imod_flags bit 0 set
# for signed bytes, clear for unsigned ones.
IMOD_STAMP = 1146047817
IMOD_SIGNED_BYTES = 1

# MRCZ: mode = MRC mode + MRC_COMP_RATIO * codec id (python-mrcz's numbering).
MRC_COMP_RATIO = 1000
CODECS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")  # what blosc1 writes today
CODEC_IDS = {"blosclz": 1, "lz4": 2, "lz4hc": 3, "snappy": 4, "zlib": 5, "zstd": 6}
CODEC_NAMES = {value: name for name, value in CODEC_IDS.items()}
# blosc's shuffle filter ids (python-blosc's NOSHUFFLE, SHUFFLE, BITSHUFFLE), so that the
# constants need no blosc import.
FILTERS = {"none": 0, "shuffle": 1, "bitshuffle": 2}

# Extended-header metadata: JSON (python-mrcz's) or msgpack (ours).
META_FORMATS = {"json": b"json", "msgpack": b"mpk "}
EXTTYP_FORMATS = {value: name for name, value in META_FORMATS.items()}
# Metadata key recording uint8 input stored as mode 0 (MRC2014 mode 0 is int8).
DTYPE_KEY = "dtype"


def new_header() -> np.ndarray:
    """A zeroed little-endian header record (a 0-d array: assign fields by name)."""
    return np.zeros((), dtype=HEADER_DTYPE)


def byte_order(raw: bytes) -> str:
    """'<' or '>' for a raw header: from the machine stamp, or, for files without one,
    python-mrcz's test (a byte-swapped mode number is huge)."""
    stamp = tuple(raw[212:214])
    if stamp in (MACHST_LITTLE[:2], MACHST_LITTLE_ALT[:2]):
        return "<"
    if stamp == MACHST_BIG[:2]:
        return ">"
    return ">" if int.from_bytes(raw[12:16], "little", signed=True) > 16_000_000 else "<"


def parse(raw: bytes) -> tuple[str, np.void]:
    """(byte order, header record) of the first HEADER_BYTES bytes of a file."""
    order = byte_order(raw)
    dtype = HEADER_DTYPE if order == "<" else HEADER_DTYPE.newbyteorder(">")
    return order, np.frombuffer(raw[:HEADER_BYTES], dtype=dtype)[0]


def frame_bytes(mode: int, ny: int, nx: int) -> int:
    """Bytes of one frame as stored (two pixels per byte, rows padded, for mode 101)."""
    if mode == MODE_4BIT:
        return ny * ((nx + 1) // 2)
    return ny * nx * MODE_DTYPES[mode].itemsize


def imod_unsigned(record) -> bool:
    """IMOD's stamp with the signed-bytes flag clear: mode 0 holds uint8."""
    return (int(record["imod_stamp"]) == IMOD_STAMP
            and not int(record["imod_flags"]) & IMOD_SIGNED_BYTES)


def set_imod_bytes(header: np.ndarray, signed: bool) -> None:
    """Stamp a mode-0 header the IMOD way: signed (int8) or unsigned (uint8) bytes."""
    header["imod_stamp"] = IMOD_STAMP
    header["imod_flags"] = IMOD_SIGNED_BYTES if signed else 0


def set_label(header: np.ndarray, label: bytes) -> None:
    labels = header["label"].copy()
    labels[0] = label
    header["label"] = labels
    header["nlabl"] = 1


class Stats:
    """Exact min/max/mean/RMS over a stream of frames, for plain MRC headers."""

    def __init__(self, dtype: np.dtype):
        self.histogram = None
        self.kind = dtype.kind
        if dtype.kind in "iu" and dtype.itemsize <= 2:
            # A histogram gives exact statistics for 8/16-bit pixels in one pass.
            self.unsigned = np.dtype(f"u{dtype.itemsize}")
            self.values = np.arange(2 ** (8 * dtype.itemsize), dtype=np.int64).astype(
                self.unsigned).view(dtype).astype(np.float64)
            self.histogram = np.zeros(self.values.size, dtype=np.int64)
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf

    def update(self, frame: np.ndarray) -> None:
        if self.histogram is not None:
            self.histogram += np.bincount(frame.view(self.unsigned).ravel(),
                                          minlength=self.histogram.size)
            return
        if self.kind == "c":
            return
        n = frame.size
        mean = float(frame.mean(dtype=np.float64))
        m2 = float(frame.var(dtype=np.float64)) * n
        delta = mean - self.mean
        total = self.count + n
        # Chan et al.'s pairwise update keeps the variance accurate over many frames.
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.min = min(self.min, float(frame.min()))
        self.max = max(self.max, float(frame.max()))

    def result(self) -> tuple[float, float, float, float]:
        """(dmin, dmax, dmean, rms); MRC2014's 'undetermined' values for complex data."""
        if self.histogram is not None:
            present = np.nonzero(self.histogram)[0]
            values = self.values[present]
            counts = self.histogram[present].astype(np.float64)
            total = counts.sum()
            mean = float(values @ counts / total)
            var = float(((values - mean) ** 2) @ counts / total)
            return float(values.min()), float(values.max()), mean, var ** 0.5
        if self.kind == "c" or self.count == 0:
            return UNDETERMINED_STATS
        return self.min, self.max, self.mean, (self.m2 / self.count) ** 0.5


# MRC2014's "not computed" statistics: dmax < dmin, dmean < min(dmin, dmax), rms < 0.
UNDETERMINED_STATS = (0.0, -1.0, -2.0, -1.0)


def quick_stats(frame: np.ndarray) -> tuple[float, float, float, None]:
    """python-mrcz's quickStats: first frame only, mean = (min + max) / 2, no RMS."""
    real = frame.real
    low, high = float(real.min()), float(real.max())
    return low, high, 0.5 * (high + low), None


def pack_mrcz_header(*, nx, ny, nz, mode, codec, cell_pixel, stats, extended, meta_format,
                     voltage, C3, gain, packed, unsigned_bytes=False) -> bytes:
    """The 1024-byte header of mrczbench.mrcz.write, laid out as python-mrcz writes it (plus
    nversion, sampling and RMS for plain files so that they are valid MRC2014)."""
    header = new_header()
    header["nx"], header["ny"], header["nz"] = nx, ny, nz
    header["mode"] = mode + (MRC_COMP_RATIO * CODEC_IDS[codec] if codec else 0)
    if codec or mode == MODE_4BIT:
        # mx, my, mz stay 0 as python-mrcz writes them (its mz = 0 means "one volume", so
        # it returns an array), and cella = pixel size * (nx, ny, nz). Mode 101 too: python-
        # mrcz can only unpack 4-bit files it reads as one volume.
        sampling = (nx, ny, nz)
    else:
        # Plain files are for legacy software, which takes the pixel size as cella / m:
        # use MRC2014's image-stack convention, as mrcfile does (mx = nx, my = ny, mz = 1).
        # python-mrcz then returns a list of 2-D frames (its mz means "slices per frame").
        sampling = (nx, ny, 1)
        header["mx"], header["my"], header["mz"] = sampling
    header["cella"] = (cell_pixel * np.array(sampling, dtype=np.float64)).astype(np.float32)
    header["cellb"] = (90.0, 90.0, 90.0)
    header["mapc"], header["mapr"], header["maps"] = 1, 2, 3
    dmin, dmax, dmean, rms = stats
    header["dmin"], header["dmax"], header["dmean"] = dmin, dmax, dmean
    if extended:
        header["nsymbt"] = len(extended)
        header["exttyp"] = META_FORMATS[meta_format]
    header["voltage"], header["C3"], header["gain"] = voltage, C3, gain
    if codec:
        header["packed_bytes"] = packed
    else:
        header["nversion"] = MRC_VERSION
        header["rms"] = rms
    if unsigned_bytes:
        set_imod_bytes(header, signed=False)
    header["map"] = MAP_STAMP
    header["machst"] = MACHST_LITTLE
    set_label(header, LABEL)
    return header.tobytes()


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Header:
    """What the header and extended header of an MRC/MRCZ file say."""

    path: str
    shape: tuple[int, int, int]          # (z, y, x) pixels
    dtype: np.dtype                      # dtype `read` returns (native byte order)
    mode: int                            # MRC mode without the codec part: 0 1 2 4 6 101
    codec: str | None                    # None for plain MRC
    level: int | None                    # compression level, when the file recorded it
    byte_order: str                      # '<' or '>' as stored
    data_offset: int                     # bytes before the first pixel / chunk
    extended_bytes: int                  # nsymbt
    exttyp: bytes
    meta: dict | None                    # decoded JSON/msgpack metadata
    meta_format: str | None              # 'json', 'msgpack' or None
    packed_bytes: int                    # total chunk bytes (compressed), else 0
    file_bytes: int                      # size on disk
    voltage: float
    C3: float
    gain: float
    pixelsize: tuple[float, float, float]  # (z, y, x) in Angstrom
    dmin: float
    dmax: float
    dmean: float
    label: str
    blosc_format: int | None = None      # chunk format version byte of chunk 0 (2 = blosc1)
    filter: str | None = None            # shuffle filter of chunk 0
    blocksize: int | None = None         # blocksize of chunk 0, bytes
    stored_dtype: np.dtype = field(default=None, repr=False)  # with the file's byte order

    @property
    def frame_bytes(self) -> int:
        """Bytes of one decoded frame as stored (packed for mode 101)."""
        ny, nx = self.shape[1:]
        return frame_bytes(self.mode, ny, nx)

    @property
    def raw_bytes(self) -> int:
        """Bytes of the decoded stack in memory (one byte per pixel for mode 101)."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def ratio(self) -> float:
        """File bytes / raw bytes (0.37 = 37 % of the raw stack), headers included, as the
        results' `ratio` column."""
        return self.file_bytes / self.raw_bytes



def read(f, path) -> Header:
    """Parse and validate the header, extended header and (for MRCZ) the first chunk header
    of the open file `f`; MRCZError naming `path` when anything does not fit the file."""
    file_bytes = os.fstat(f.fileno()).st_size
    raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise MRCZError(f"{path}: only {len(raw)} bytes, too short for the 1024-byte MRC header")
    order, rec = parse(raw)
    nx, ny, nz, full_mode = (int(rec[name]) for name in ("nx", "ny", "nz", "mode"))
    codec, mode = _mode_of(path, rec, full_mode)
    for name, size in (("nx", nx), ("ny", ny), ("nz", nz)):
        if size < 1:
            raise _not_mrc(path, rec, f"bad dimension {name} = {size} in the header")
    dtype = MODE_DTYPES[mode]
    stored_dtype = dtype.newbyteorder(order) if dtype.itemsize > 1 else dtype

    extended_bytes = int(rec["nsymbt"])
    if extended_bytes < 0 or HEADER_BYTES + extended_bytes > file_bytes:
        raise MRCZError(f"{path}: extended header length {extended_bytes} does not fit in the "
                        f"{file_bytes}-byte file")
    data_offset = HEADER_BYTES + extended_bytes
    exttyp = bytes(rec["exttyp"]).ljust(4, b"\0")
    meta, meta_format = None, None
    if extended_bytes and exttyp in EXTTYP_FORMATS:
        meta_format = EXTTYP_FORMATS[exttyp]
        meta = extended.decode_meta(path, f.read(extended_bytes), meta_format)

    frame_size = frame_bytes(mode, ny, nx)
    if codec is None:
        packed, first = 0, None
        _check_plain_size(path, (nz, ny, nx), mode, data_offset + nz * frame_size, file_bytes)
        if file_bytes > data_offset + nz * frame_size and int(rec["packed_bytes"]) == file_bytes - data_offset:
            # MRCZ's packedBytes field fits this file exactly: compressed chunks, whatever the
            # (damaged) mode word says; reading them as pixels would return compressed bytes
            raise MRCZError(f"{path}: the mode word says plain MRC (mode {mode}) but packedBytes "
                            f"({int(rec['packed_bytes'])}) matches compressed MRCZ data: a damaged "
                            "MRCZ header")
    else:
        packed = _check_packed(path, rec, (nz, ny, nx), frame_size, data_offset, file_bytes)
        f.seek(data_offset)
        first = chunks.parse_chunk_header(f.read(CHUNK_HEADER_BYTES))

    if mode == 0 and (imod_unsigned(rec)
                      or (meta is not None and meta.get(DTYPE_KEY) == "uint8")):
        dtype = stored_dtype = np.dtype(np.uint8)  # uint8 stored as mode 0 (ours, or IMOD's flag)
    level = None
    if codec and meta is not None:
        value = meta.get("clevel")
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
            level = value

    cella = np.asarray(rec["cella"], dtype=np.float64)
    sampling = tuple(int(rec[name]) for name in ("mx", "my", "mz"))
    if min(sampling) < 1:  # python-mrcz leaves mx, my, mz at 0: cella spans (nx, ny, nz)
        sampling = (nx, ny, nz)
    pixel_xyz = cella / np.array(sampling, dtype=np.float64)
    label = bytes(rec["label"][0]).split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return Header(
        path=str(path), shape=(nz, ny, nx), dtype=dtype, mode=mode, codec=codec, level=level,
        byte_order=order, data_offset=data_offset, extended_bytes=extended_bytes, exttyp=exttyp,
        meta=meta, meta_format=meta_format, packed_bytes=packed, file_bytes=file_bytes,
        voltage=float(rec["voltage"]), C3=float(rec["C3"]), gain=float(rec["gain"]),
        pixelsize=tuple(float(p) for p in pixel_xyz[::-1]),
        dmin=float(rec["dmin"]), dmax=float(rec["dmax"]), dmean=float(rec["dmean"]),
        label=label, blosc_format=first.version if first else None,
        filter=first.filter if first else None, blocksize=first.blocksize if first else None,
        stored_dtype=stored_dtype)


def _not_mrc(path, rec, detail: str) -> MRCZError:
    # Without the MAP stamp a nonsense header is most likely another kind of file
    # (TIFF, EER, ...): say that rather than reporting a strange MRC mode.
    if bytes(rec["map"]) == MAP_STAMP:
        return MRCZError(f"{path}: {detail}")
    return MRCZError(f"{path}: not an MRC file (no 'MAP ' stamp at byte 208; {detail})")


def _mode_of(path, rec, full_mode: int) -> tuple[str | None, int]:
    """(codec or None, MRC mode) from the mode word, or MRCZError."""
    if full_mode < 0 or full_mode % MRC_COMP_RATIO not in MODE_DTYPES:
        if bytes(rec["map"]) != MAP_STAMP:
            raise _not_mrc(path, rec, f"mode word {full_mode}")
        raise MRCZError(f"{path}: unknown or unsupported MRC mode "
                        f"{full_mode % MRC_COMP_RATIO if full_mode >= 0 else full_mode} "
                        f"(supported: {', '.join(map(str, sorted(MODE_DTYPES)))})")
    codec_id, mode = divmod(full_mode, MRC_COMP_RATIO)
    if not codec_id:
        return None, mode
    codec = CODEC_NAMES.get(codec_id)
    if codec is None:
        raise MRCZError(f"{path}: unknown MRCZ codec id {codec_id} (mode {full_mode}); "
                        f"known ids: {', '.join(f'{k} {v}' for k, v in CODEC_NAMES.items())}")
    if mode == MODE_4BIT:
        raise MRCZError(f"{path}: compressed mode 101 (4-bit) is not a valid MRCZ file")
    return codec, mode


def _check_plain_size(path, shape, mode, expected: int, file_bytes: int) -> None:
    """A plain file must hold every pixel; bytes after the last frame are ignored with a
    warning (mrcfile reads such files too)."""
    nz, ny, nx = shape
    if file_bytes < expected:
        raise MRCZError(f"{path}: the header describes {nz}x{ny}x{nx} mode-{mode} pixels "
                        f"({expected} bytes with the header) but the file has {file_bytes} "
                        "bytes (truncated, or wrong dimensions/mode)")
    if file_bytes > expected:
        warnings.warn(f"{path}: {file_bytes - expected} bytes after the last of {nz} frames "
                      "are ignored (as mrcfile does)", stacklevel=5)


def _check_packed(path, rec, shape, frame_bytes, data_offset, file_bytes) -> int:
    """packedBytes of a compressed file, checked against the file and the frame size."""
    nz, ny, nx = shape
    if frame_bytes > MAX_CHUNK_NBYTES:
        raise MRCZError(f"{path}: a {ny}x{nx} frame is too big for one blosc chunk; the "
                        "dimensions are corrupt")
    packed = int(rec["packed_bytes"])
    if packed < CHUNK_HEADER_BYTES * nz or data_offset + packed != file_bytes:
        raise MRCZError(f"{path}: packedBytes = {packed} does not match the file: "
                        f"{file_bytes - data_offset} bytes of chunks follow the header for "
                        f"{nz} frames (truncated or corrupt)")
    if nz * frame_bytes > packed * MAX_CHUNK_RATIO:
        raise MRCZError(f"{path}: {nz} frames of {frame_bytes} bytes cannot come from "
                        f"{packed} bytes of chunks (over {MAX_CHUNK_RATIO}:1); the header is "
                        "corrupt")
    return packed
