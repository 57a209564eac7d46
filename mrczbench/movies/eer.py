"""EER movies (Falcon 4 electron-event files), rendered as RELION does.

An EER file is a TIFF whose pages are internal frames; each page's strips hold a run-length
code of electron events: a skip count (7 bits for compression 65001, 8 bits for the
prototype compression 65000) then, for an event, 4 sub-pixel bits (2 column, 2 row, each
stored XOR 2). A skip of the maximum (127 or 255) means "skip on, no event".

Where the two codes differ (decided from RELION's renderEER.cpp and the FEI reference
decoder, whose `no_bit_waste_on_overflow_code` is false "for old prototype EER files"):
in 8-bit files every code is 12 bits, so a 255 skip is still followed by 4 unused
sub-pixel bits; in 7-bit files a 127 skip is followed directly by the next skip. imagecodecs
reads 8-bit files like 7-bit ones (no unused bits), which misplaces every event after the
first 255 skip, so mrczbench decodes 65000 itself (`decode_eer8`) and leaves 65001/65002 to
imagecodecs. Every decoding error becomes a DatasetError naming the file and the frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mrczbench.errors import DatasetError
from mrczbench.movies import tiffpages
from mrczbench.movies.movie import Movie, check_eer_options, check_fits_memory
from mrczbench.movies.tiffpages import TiffLog

# An EER code covers at most 255 pixels (8-bit) in 12 bits: about 21.3 pixels a bit.
EER_MAX_PIXELS_PER_BIT = 22
EER_8BIT, EER_7BIT = 65000, 65001
EER_VARIABLE = 65002
EER_COMPRESSIONS = (EER_8BIT, EER_7BIT, EER_VARIABLE)
FRAME = "EER frame"
INTEGRATED = "integrated image page"


def decode_eer8(data: bytes, npix: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixel positions, sub-pixel symbols) of the events in one 8-bit EER frame (TIFF
    compression 65000): 12-bit codes, two in three bytes, each an 8-bit skip then 4 sub-pixel
    bits that are present (and unused) after a 255 skip too, as in RELION's renderEER.cpp.
    Symbols are returned with the XOR 0x0A undone: bits 0-1 column, bits 2-3 row.
    ValueError if the codes do not cover exactly `npix` pixels."""
    raw = np.frombuffer(data, np.uint8)
    raw = np.concatenate([raw, np.zeros((-raw.size) % 3, np.uint8)]).reshape(-1, 3).astype(np.uint16)
    skips = np.empty(2 * len(raw), np.int64)
    symbols = np.empty(2 * len(raw), np.uint8)
    skips[0::2] = raw[:, 0]
    symbols[0::2] = raw[:, 1] & 0x0F
    skips[1::2] = ((raw[:, 1] >> 4) | (raw[:, 2] << 4)) & 0xFF
    symbols[1::2] = raw[:, 2] >> 4
    events = skips < 255
    # position of each code's event: pixels skipped and events placed before it, plus its skip
    ends = np.cumsum(skips + events)
    positions = ends - events
    done = np.flatnonzero(positions >= npix)
    if not done.size:
        raise ValueError(f"the codes cover {int(ends[-1]) if ends.size else 0} of {npix} pixels")
    last = done[0]  # RELION stops at the first code that reaches the end of the frame
    if positions[last] != npix:
        raise ValueError(f"the codes cover {int(positions[last])} pixels, not {npix}")
    keep = events[:last]
    return positions[:last][keep], symbols[:last][keep] ^ 0x0A


def render_events(positions: np.ndarray, symbols: np.ndarray, shape: tuple[int, int],
                  upsampling: int) -> np.ndarray:
    """Event counts (uint16) on the physical grid (1) or the 2x super-resolution grid (2)."""
    ny, nx = shape
    y, x = positions // nx, positions % nx
    if upsampling == 2:
        y = 2 * y + ((symbols >> 2) & 3) // 2
        x = 2 * x + (symbols & 3) // 2
    out = np.zeros((ny * upsampling, nx * upsampling), np.uint16)
    np.add.at(out, (y, x), 1)
    return out


def eer_stream_bits(positions: np.ndarray, npix: int, skipbits: int, eventbits: int) -> int:
    """Bits a run-length EER stream needs to place events at the sorted pixel `positions`
    and then reach the end of an `npix`-pixel frame: each gap is cut into skips of the
    maximum (no event) and one shorter skip followed by the event's `eventbits` sub-pixel
    bits; the encoding is unique, so a stream holding fewer bits ended before the frame did
    (imagecodecs then returns the events found so far, with no error)."""
    most = (1 << skipbits) - 1
    gaps = np.diff(positions, prepend=-1) - 1
    tail = npix - (int(positions[-1]) + 1 if positions.size else 0)
    codes = int((gaps // most).sum()) + positions.size + -(-tail // most)
    return skipbits * codes + eventbits * positions.size


class EerMovie(Movie):
    """Falcon 4 EER files rendered as RELION does: `grouping` internal frames summed into
    each fraction (a trailing remainder is dropped), on the 4K grid (upsampling 1) or the
    8K super-resolution grid (upsampling 2). uint8 (uint16 above 255 frames a fraction).
    Every page must be an EER frame (compression 65000, 65001 or 65002, one sample a pixel,
    strips that match RowsPerStrip), except an uncompressed first page of several: the
    integrated image some EER files carry (tifffile's reading), checked and skipped; a frame's strips are one code stream (as RELION reads
    them) that must cover exactly the frame; damage tifffile only logs is an error
    (movies/tiffpages.py)."""

    kind = "eer"

    def __init__(self, path: Path, grouping: int = 32, upsampling: int = 1):
        import tifffile
        check_eer_options(grouping, upsampling)
        self.grouping, self.upsampling = grouping, upsampling
        file_size = path.stat().st_size
        with TiffLog() as log, tifffile.TiffFile(path) as tif:
            if not tif.is_eer:
                raise DatasetError(f"{path}: not an EER file (no EER acquisition metadata)")
            # tifffile's convention: an uncompressed first page of a multi-page EER file is
            # the integrated image, not a frame (its strips must hold exactly its pixels)
            self.skip = int(len(tif.pages) > 1 and int(tif.pages[0].compression) == 1)
            first = tif.pages[self.skip]
            self.physical = (int(first.imagelength), int(first.imagewidth))
            internal, extents = 0, []
            for number, page in tiffpages.iter_pages(path, tif, FRAME):
                if number < self.skip:
                    log.check(path, number, INTEGRATED)
                    tiffpages.check_strips(path, page, number, file_size, INTEGRATED,
                                           tiffpages.stored_rows_bytes(page))
                    extents += tiffpages.page_extents(page)
                    continue
                index = number - self.skip
                self._check_claims(path, page, index)
                log.check(path, index, FRAME)
                self._check_layout(path, page, index, file_size)
                extents += tiffpages.page_extents(page)
                internal += 1
            tiffpages.check_no_overlap(path, extents)
            log.check(path, internal - 1, FRAME)
            if log.chain_broken():
                raise DatasetError(f"{path}: the EER movie ends early: the page chain breaks "
                                   f"after {internal} frames (truncated file?)")
        self.internal_frames = internal
        if internal < grouping:
            raise DatasetError(f"{path}: {internal} internal frames, fewer than eer_grouping {grouping}")
        dtype = np.uint8 if grouping <= 255 else np.uint16
        shape = (self.physical[0] * upsampling, self.physical[1] * upsampling)
        super().__init__(path, (internal // grouping, *shape), dtype)
        check_fits_memory(path, 2 * shape[0] * shape[1], "one rendered EER fraction")

    def _check_claims(self, path: Path, page, index: int) -> None:
        """Claimed sizes against the page's stored bytes, before anything is decoded."""
        ny, nx = int(page.imagelength), int(page.imagewidth)
        if (ny, nx) != self.physical:
            raise DatasetError(f"{path}: EER frame {index} is {ny} x {nx} but frame 0 is "
                               f"{self.physical[0]} x {self.physical[1]}; a movie's frames match")
        stored = int(sum(page.databytecounts))
        if ny * nx > max(stored, 1) * 8 * EER_MAX_PIXELS_PER_BIT:
            raise DatasetError(f"{path}: EER frame {index} claims {ny} x {nx} pixels, more than "
                               f"its {stored} stored bytes can encode: damaged header")

    @staticmethod
    def _check_layout(path: Path, page, index: int, file_size: int) -> None:
        compression = int(page.compression)
        if compression not in EER_COMPRESSIONS or page.is_tiled or int(page.samplesperpixel) != 1:
            has = "tiles" if page.is_tiled else f"{page.samplesperpixel} samples a pixel" \
                if int(page.samplesperpixel) != 1 else f"compression {compression}"
            raise DatasetError(f"{path}: EER frame {index} has {has}; every page of an EER file "
                               f"is a frame in strips, compression 65000, 65001 or 65002")
        tiffpages.check_strips(path, page, index, file_size, FRAME)

    def _frames(self):
        import tifffile
        with TiffLog() as log, tifffile.TiffFile(self.path) as tif:
            for fraction in range(self.shape[0]):
                total = np.zeros(self.shape[1:], np.uint16)
                for index in range(fraction * self.grouping, (fraction + 1) * self.grouping):
                    page = tiffpages.page_at(self.path, tif, self.skip + index, FRAME, index)
                    log.check(self.path, index, FRAME)
                    total += self._render(tif.filehandle, page, index)
                yield total.astype(self.dtype, copy=False)

    def _render(self, handle, page, index: int) -> np.ndarray:
        """One internal frame's events (0/1 per pixel) on the rendered grid."""
        try:
            compression = int(page.compression)
            if compression not in EER_COMPRESSIONS:
                raise ValueError(f"compression {compression} is not EER (the file changed?)")
            data = b"".join(tiffpages.read_strip(handle, o, c)
                            for o, c in zip(page.dataoffsets, page.databytecounts))
            npix = self.physical[0] * self.physical[1]
            if compression == EER_8BIT:
                positions, symbols = decode_eer8(data, npix)
                return render_events(positions, symbols, self.physical, self.upsampling)
            return self._decode_imagecodecs(page, data, npix)
        except Exception as exc:  # imagecodecs raises ImcdError, IndexError, OverflowError, ...
            raise DatasetError(f"{self.path}: cannot decode EER frame {index}: "
                               f"{type(exc).__name__}: {exc}") from None

    def _decode_imagecodecs(self, page, data: bytes, npix: int) -> np.ndarray:
        """7-bit (65001) or variable (65002) codes by imagecodecs, which returns the events
        found so far when the stream ends early: the stream must hold the bits the events
        and the rest of the frame need (eer_stream_bits)."""
        import imagecodecs
        skipbits, horzbits, vertbits = 7, 2, 2
        if int(page.compression) == EER_VARIABLE:
            skipbits, horzbits, vertbits = (int(page.tags.valueof(code, default))
                                            for code, default in ((65007, 7), (65008, 2), (65009, 2)))
        up = self.upsampling
        ny, nx = self.physical
        # imagecodecs reads the stream in 16-bit units and refuses an odd byte count, which
        # RELION (64-bit reads) decodes: a zero byte past the end adds no event, and the
        # length check below counts only the stored bytes
        padded = data + b"\0" if len(data) % 2 else data
        pixels = imagecodecs.eer_decode(padded, (ny * up, nx * up), skipbits, horzbits, vertbits,
                                        superres=up - 1)
        found = np.flatnonzero(pixels)
        if up > 1:  # back to physical pixels, in the order the stream placed them
            rows, cols = np.divmod(found, nx * up)
            found = np.sort((rows // up) * nx + cols // up)
        need = eer_stream_bits(found, npix, skipbits, horzbits + vertbits)
        if need > 8 * len(data):
            raise ValueError(f"the codes end before the frame does ({8 * len(data)} bits "
                             f"stored, {need} needed to reach pixel {npix})")
        return pixels


def is_eer(path: Path) -> bool:
    """Whether a TIFF file is EER (tifffile's test of the first page); False for a file
    tifffile cannot open, which the TIFF reader then reports."""
    import tifffile
    try:
        with TiffLog(), tifffile.TiffFile(path) as tif:
            return bool(tif.is_eer)
    except Exception:  # tifffile raises many types for damaged files
        return False
