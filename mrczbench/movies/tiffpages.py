"""Strict reading of TIFF pages, for TIFF movies and EER files: damage that tifffile only logs
is an error here, and the common page layouts are decoded here, checked strip by strip.

tifffile reads damaged files leniently: a tag entry it cannot read is skipped (defaults are
used instead, e.g. no compression), a strip count that does not match RowsPerStrip is logged
and decoded anyway, a compressed strip that decodes short is padded with zeros, an odd
BitsPerSample is unpacked bit by bit. Each gives other pixels without an error. So:

- `TiffLog` collects tifffile's log while a file is opened and its pages are read;
  `damage()` is the first structural message (strips, tag entries, data offsets) and
  `chain_broken()` whether the page chain broke (a truncated file);
- `layout_problem(page)` names what a page has that `decode_page` does not read: it reads
  strips, one sample a pixel, BitsPerSample = 8 x the sample's bytes, FillOrder 1,
  compression none, LZW (5), deflate (8, 32946), zstd (50000) or PackBits (32773), and
  predictor none (1) or horizontal (2, integers: a wrapping sum along each row). That is
  what RELION, SerialEM, IMOD, tifffile and mrczbench write for movies; anything else
  (tiles, JPEG, floating-point predictor, packed bit depths, ...) is a one-line error
  saying what is supported;
- `check_strips` requires ceil(ImageLength / RowsPerStrip) strips, each inside the file and
  not empty, an uncompressed one holding exactly its rows; `check_no_overlap` requires that
  no strip overlaps another strip or a page's tags (a moved StripOffsets would read other
  bytes);
- `decode_page` reads and decodes each strip once with imagecodecs and requires it to give
  at least its rows' bytes (more, up to a whole strip of RowsPerStrip rows, is ignored, as
  libtiff does: some writers pad the last strip);
- `iter_pages` walks the pages by number (`page_at` fetches one): a page tifffile cannot
  parse is an error, not the silent end of the file.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from mrczbench.errors import DatasetError

# tifffile log messages that mean the file's structure is damaged (the pixels read would not
# be the pixels stored, or a tag entry could not be read: "TiffTag" also covers a text tag
# that is neither UTF-8 nor cp1252); messages about vendor metadata that tifffile could not
# interpret (ImageJ, OME, ...) are not damage
STRUCTURAL_LOG = ("StripByteCounts", "StripOffsets", "TileByteCounts", "TileOffsets", "ByteCounts",
                  "data offset", "segments", "invalid data type", "TiffTag", "tag #", "tag list",
                  "value offset", "invalid offset for tag", "missing required tags",
                  "could not read all values", "failed to read", "Missing data", "predictor",
                  "suspicious number of tags")
# ... and those that mean the chain of pages breaks (the file ends early)
CHAIN_LOG = ("page offset", "offset to page", "offset to first page", "next page",
             "circular reference")

COMPRESSIONS = {1: "none", 5: "LZW", 8: "deflate", 32946: "deflate", 50000: "zstd",
                32773: "PackBits"}
SUPPORTED_LAYOUT = ("supported: strips, one sample a pixel, 8/16/32/64-bit samples, compression "
                    "none, LZW, deflate, zstd or PackBits, predictor none or horizontal")


class TiffLog(logging.Handler):
    """Collects tifffile's log warnings and errors while open (`with TiffLog() as log:`)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._reported = 0

    def emit(self, record):
        self.messages.append(" ".join(record.getMessage().split()))

    def __enter__(self):
        logging.getLogger("tifffile").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("tifffile").removeHandler(self)

    def damage(self) -> str | None:
        """The first structural message logged since the last call (None: none)."""
        new, self._reported = self.messages[self._reported:], len(self.messages)
        return next((m[:300] for m in new if any(k in m for k in STRUCTURAL_LOG)
                     and not any(k in m for k in CHAIN_LOG)), None)

    def chain_broken(self) -> bool:
        return any(k in m for m in self.messages for k in CHAIN_LOG) or \
            any("page" in m and ("invalid" in m or "corrupted" in m) for m in self.messages)

    def check(self, path: Path, index: int, what: str = "TIFF page") -> None:
        """DatasetError if a structural problem was logged while reading page `index`."""
        damage = self.damage()
        if damage:
            raise DatasetError(f"{path}: {what} {index} is damaged: {damage}")


def iter_pages(path: Path, tif, what: str = "TIFF page"):
    """(index, page) for every page tifffile counts in `tif`. A page tifffile cannot parse is
    a DatasetError: iterating tif.pages would stop there silently (tifffile's IndexError
    ends a Python iteration). The caller checks the log (`log.check`) for each page, after
    checks whose message says more (e.g. a size the page claims)."""
    for index in range(len(tif.pages)):
        yield index, page_at(path, tif, index, what)


def page_at(path: Path, tif, number: int, what: str = "TIFF page", index: int | None = None):
    """Page `number` of `tif`; a DatasetError naming `what` `index` (default: the number)
    when tifffile cannot parse it."""
    try:
        return tif.pages[number]
    except Exception as exc:  # tifffile raises IndexError, ValueError, TiffFileError, ...
        raise DatasetError(f"{path}: {what} {number if index is None else index}: unreadable "
                           f"TIFF directory ({type(exc).__name__}: {exc})") from None


def layout_problem(page) -> str | None:
    """What `page` has that decode_page does not read (None: it reads it)."""
    compression, predictor = int(page.compression), int(page.predictor)
    dtype = np.dtype(page.dtype) if page.dtype is not None else None
    bits = int(page.bitspersample)
    if page.is_tiled:
        return f"tiles of {page.tilelength} x {page.tilewidth}"
    if compression not in COMPRESSIONS:
        return f"compression {compression}"
    if int(page.samplesperpixel) != 1:
        return f"{page.samplesperpixel} samples a pixel"
    if int(page.imagedepth) != 1:
        return f"image depth {page.imagedepth}"
    if dtype is None or bits != 8 * dtype.itemsize:
        return f"{bits}-bit samples"
    if int(page.fillorder) != 1:
        return f"fill order {page.fillorder}"
    if predictor not in (1, 2) or (predictor == 2 and dtype.kind not in "iu"):
        return f"predictor {predictor} with {dtype.name} samples"
    return None


def check_layout(path: Path, page, index: int) -> None:
    problem = layout_problem(page)
    if problem:
        raise DatasetError(f"{path}: TIFF page {index} has {problem}; {SUPPORTED_LAYOUT}")


def rows_per_strip(page) -> int:
    """RowsPerStrip as it applies (a missing or oversized value means one strip)."""
    ny = int(page.imagelength)
    return max(1, min(int(page.rowsperstrip or ny), ny))


def check_strips(path: Path, page, index: int, file_size: int, what: str = "TIFF page",
                 row_bytes: int | None = None) -> None:
    """ceil(ImageLength / RowsPerStrip) strips, none empty or beyond the file's end;
    `row_bytes`: for uncompressed strips, each must hold exactly its rows (the last may be
    a whole strip of RowsPerStrip rows): more would be, e.g., compressed data whose
    Compression tag was lost."""
    ny, rows = int(page.imagelength), rows_per_strip(page)
    offsets, counts = page.dataoffsets, page.databytecounts
    expected = -(-ny // rows)
    if len(offsets) != expected or len(counts) != expected:
        raise DatasetError(f"{path}: {what} {index} has {len(offsets)} strip offsets and "
                           f"{len(counts)} byte counts; {ny} rows of {rows} a strip need "
                           f"{expected}: damaged header")
    for strip, (offset, count) in enumerate(zip(offsets, counts)):
        if offset + count > file_size:
            raise DatasetError(f"{path}: {what} {index} data lies beyond the end of the "
                               f"{file_size}-byte file (truncated file?)")
        if row_bytes is None:
            if not count:
                raise DatasetError(f"{path}: {what} {index} strip {strip} has 0 bytes: "
                                   "damaged header")
            continue
        need = min(rows, ny - strip * rows) * row_bytes
        if count not in (need, rows * row_bytes):
            raise DatasetError(f"{path}: {what} {index} strip {strip} has {count} bytes, but "
                               f"its rows take {need} uncompressed: damaged header (a lost "
                               "Compression tag?)")


def page_extents(page, kind_of_strip: str = "strip") -> list[tuple[int, int, str]]:
    """(start, end, what) of a page's strips, its tag table and tag values stored apart."""
    fmt = page.parent.tiff
    extents = [(int(o), int(o) + int(c), f"{kind_of_strip} of page {page.index}")
               for o, c in zip(page.dataoffsets, page.databytecounts) if c]
    tags = list(page.tags.values())
    if tags:
        end = max(t.offset for t in tags) + fmt.tagsize + fmt.offsetsize
        extents.append((int(page.offset), int(end), f"tags of page {page.index}"))
    extents += [(int(t.valueoffset), int(t.valueoffset) + int(t.valuebytecount),
                 f"tags of page {page.index}") for t in tags
                if t.valuebytecount > fmt.tagoffsetthreshold]
    return extents


def check_no_overlap(path: Path, extents: list[tuple[int, int, str]], strip: str = "strip") -> None:
    """DatasetError if a strip overlaps another strip or a page's tags (tag values may be
    shared between pages: those may overlap each other)."""
    extents = sorted(e for e in extents if e[1] > e[0])
    last = None  # the extent reaching furthest so far
    for extent in extents:
        if last is not None and extent[0] < last[1] and \
                (extent[2].startswith(strip) or last[2].startswith(strip)):
            raise DatasetError(f"{path}: the {extent[2]} (bytes {extent[0]}-{extent[1]}) overlaps "
                               f"the {last[2]} (bytes {last[0]}-{last[1]}): damaged offsets")
        if last is None or extent[1] > last[1]:
            last = extent


def _decoders():
    import imagecodecs
    deflate = imagecodecs.deflate_decode if imagecodecs.DEFLATE.available else imagecodecs.zlib_decode
    return {5: imagecodecs.lzw_decode, 8: deflate, 32946: deflate, 50000: imagecodecs.zstd_decode,
            32773: imagecodecs.packbits_decode}


def read_strip(handle, offset: int, count: int) -> bytes:
    handle.seek(offset)
    data = handle.read(count)
    if len(data) != count:
        raise ValueError(f"the strip at byte {offset} is cut short ({len(data)} of {count} bytes)")
    return data


def decode_page(handle, page, byteorder: str) -> np.ndarray:
    """The (ImageLength, ImageWidth) pixels of a page that passed check_layout and
    check_strips, in native byte order. ValueError (or imagecodecs' error) if a strip does
    not decode to its rows."""
    ny, nx = int(page.imagelength), int(page.imagewidth)
    dtype = np.dtype(page.dtype).newbyteorder(byteorder)
    rows = rows_per_strip(page)
    row_bytes = nx * dtype.itemsize
    compression = int(page.compression)
    decode = None if compression == 1 else _decoders()[compression]
    full_strip = rows * row_bytes  # the most a strip may decode to (some writers pad the last)
    out = np.empty((ny, nx), dtype)
    raw = out.view(np.uint8).reshape(ny, row_bytes)
    for strip, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
        first = strip * rows
        need = min(rows, ny - first) * row_bytes
        target = raw[first:first + need // row_bytes]
        if decode is None:  # check_strips made sure the strip holds its rows
            _read_into(handle, offset, target)
            continue
        data = decode(read_strip(handle, offset, count), out=full_strip)
        if len(data) < need:
            raise ValueError(f"strip {strip} decodes to {len(data)} bytes, expected {need} "
                             f"({COMPRESSIONS[compression]})")
        target[...] = np.frombuffer(data, np.uint8, need).reshape(-1, row_bytes)
    if not dtype.isnative:
        out = out.astype(dtype.newbyteorder("="))
    if int(page.predictor) == 2:  # horizontal differencing: a wrapping sum along each row
        import imagecodecs
        imagecodecs.delta_decode(out, axis=-1, out=out)
    return out


def _read_into(handle, offset: int, target: np.ndarray) -> None:
    handle.seek(offset)
    view = memoryview(target.reshape(-1))
    got = 0
    while got < len(view):
        n = handle.readinto(view[got:])
        if not n:
            raise ValueError(f"the strip at byte {offset} is cut short ({got} of {len(view)} bytes)")
        got += n


def stored_rows_bytes(page) -> int | None:
    """Bytes a row takes uncompressed (for check_strips), or None for a compressed page."""
    if int(page.compression) != 1:
        return None
    return math.ceil(int(page.imagewidth) * int(page.bitspersample) / 8)
