"""TIFF contenders (tifffile + imagecodecs): `tiff`, `jpeg2000`, `jpegxl`.

`tiff` is what RELION's relion_convert_to_tiff and SerialEM write: one page per frame,
LZW or deflate (zip), and by default the whole frame in one strip ("treats all rows in a frame
as one TIFF strip to improve the compression ratio"); `line_by_line` writes one strip per row
as RELION's --line_by_line does. Each frame's rows are stored bottom-up as
relion_convert_to_tiff stores them: the file is the one `mrczbench convert --format tiff`
writes (both call write_relion_tiff), byte for byte.

`jpeg2000` and `jpegxl` are the lossless image codecs in the same container: one codestream per
frame, written as TIFF compression 34712 (JPEG 2000) and 50002 (JPEG XL) so a stack is one file
that tifffile reads back. JPEG XL has no signed integers, so int8/int16 are stored as their
unsigned bit patterns (the same bytes; the original dtype is kept in the TIFF description).

Threads: tifffile's `maxworkers` compresses the strips of one page in parallel (so a single
strip per frame writes on one thread) and decodes pages in parallel when reading. The JPEG
codecs also get `numthreads`.
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import numpy as np

from mrczbench.atomic import atomic_path
from mrczbench.errors import FormatError
from mrczbench.formats.base import (Format, FormatConfig, boolean, integer, one_of, optional,
                                    param)

# names here -> tifffile compression names (deflate is Adobe deflate, tag 8, as libtiff writes)
TIFF_COMPRESSION = {"lzw": "lzw", "deflate": "zlib", "none": None}
RELION_DEFLATE_LEVEL = 6  # relion_convert_to_tiff's deflate level


def write_tiff(target: Path | BinaryIO, stack: np.ndarray, *, compression: str | None,
               compressionargs: dict[str, Any] | None = None, rowsperstrip: int | None = None,
               threads: int = 1, dtype: str | None = None) -> None:
    """One page per frame. `dtype` records the original dtype when the pixels are stored as
    another type with the same bytes (JPEG XL has no signed integers)."""
    import tifffile

    tifffile.imwrite(
        target, stack, photometric="minisblack", compression=compression,
        compressionargs=compressionargs or None,
        rowsperstrip=rowsperstrip or stack.shape[1], maxworkers=threads,
        metadata={"dtype": dtype} if dtype else {})


def write_relion_tiff(target: Path | BinaryIO, frames: Iterable[np.ndarray], *, compression: str,
                      level: int | None = None, rowsperstrip: int | None = None,
                      threads: int | None = None, pixel_size: float | None = None) -> None:
    """The TIFF that `convert` writes and the `tiff` contender measures: relion_convert_to_tiff's
    file, one page per frame written as it comes (a stream of frames is never held whole), each
    frame's rows bottom-up ("Have to flip the Y axis": RELION flips TIFF along Y when reading,
    so RELION sees the orientation of the input). `compression` is lzw | deflate | none;
    `level` applies to deflate; `rowsperstrip` None is the whole frame in one strip;
    `threads` None is tifffile's default. As RELION's write_tiff_one_page: no ImageDescription
    (tifffile's shaped description on every page would make tifffile.imread return frame 0
    only; without it tifffile, libtiff and RELION all read one series of every page), and the
    pixel size (Angstrom) as X/YResolution in pixels per cm (1e8 / Angstrom, ResolutionUnit 3),
    which RELION reads back, when there is one."""
    import tifffile

    args = {"level": level} if compression == "deflate" and level else None
    resolution = {"resolution": (1e8 / pixel_size,) * 2, "resolutionunit": "CENTIMETER"} \
        if pixel_size else {}
    with tifffile.TiffWriter(target) as tif:
        for frame in frames:
            tif.write(frame[::-1], photometric="minisblack", compression=TIFF_COMPRESSION[compression],
                      compressionargs=args, rowsperstrip=rowsperstrip or frame.shape[0],
                      software="mrczbench", contiguous=False, maxworkers=threads, metadata=None,
                      **resolution)


def iter_relion_tiff(source: str | Path | BinaryIO, strict: bool = False) -> Iterator[np.ndarray]:
    """The frames of a write_relion_tiff file as they were given (each page flipped back).
    strict: read with the movie reader, for which any damage (a corrupt LZW strip, strip counts
    that do not match) is one DatasetError rather than whatever tifffile makes of it; for
    verifying outputs before originals may be deleted."""
    if strict:
        from mrczbench.movies.readers import TiffMovie

        for frame in TiffMovie(Path(source)).iter_frames():
            yield frame[::-1]
        return
    import tifffile

    with tifffile.TiffFile(source) as tif:
        for page in tif.pages:
            yield page.asarray()[::-1]


def read_tiff(source: str | Path | BinaryIO, threads: int = 1) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(source) as tif:
            data = tif.series[0].asarray(maxworkers=threads)
            meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise FormatError(f"{source if not hasattr(source, 'read') else 'TIFF'}: "
                          f"cannot read TIFF ({exc})") from None
    data = data.reshape((-1,) + data.shape[-2:])
    if meta.get("dtype") and meta["dtype"] != data.dtype.name:
        data = data.view(np.dtype(meta["dtype"]))
    return data


class _TiffContainer(Format):
    """Shared write/read/encode/decode for the formats stored as one TIFF page per frame."""

    suffix = ".tif"
    has_memory_codec = True

    def tiff_options(self, stack: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """(pixels as stored, keyword arguments for write_tiff)."""
        raise NotImplementedError

    def _write(self, target: Path | BinaryIO, stack: np.ndarray) -> None:
        self.require_data(stack)
        pixels, options = self.tiff_options(stack)
        write_tiff(target, pixels, threads=self.config.threads, **options)

    def _read(self, source: Path | BinaryIO) -> np.ndarray:
        return read_tiff(source, self.config.threads)

    def encode(self, stack: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        self._write(buffer, stack)
        return buffer.getvalue()

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        data = self._read(io.BytesIO(blob))
        return data.view(np.dtype(dtype)).reshape(shape)

    def write(self, path: Path, stack: np.ndarray) -> int:
        # a path, not atomic_output's handle: tifffile wants a named file
        with atomic_path(path) as tmp:
            self._write(tmp, stack)
        return Path(path).stat().st_size

    def read(self, path: Path) -> np.ndarray:
        return self._read(Path(path))


@dataclasses.dataclass(frozen=True)
class TiffConfig(FormatConfig):
    compression: str = param("lzw", "lzw | deflate | none", one_of(*TIFF_COMPRESSION))
    level: int | None = param(None, f"null or integer 1-9; deflate only (null = "
                                    f"{RELION_DEFLATE_LEVEL}, RELION's level)",
                              optional(integer(1, 9)))
    line_by_line: bool = param(False, "false (one strip per frame, RELION's default) | "
                                      "true (one strip per row, RELION's --line_by_line)",
                               boolean())

    def validate_together(self) -> None:
        self.level_only_with("deflate")


class TiffFormat(_TiffContainer):
    name = "tiff"
    description = "TIFF (tifffile), one page per frame, LZW / deflate / none, RELION's strips"
    Config = TiffConfig
    column_fields = {"codec": "compression"}  # the result rows' codec column
    native_readers = ("relion", "cryosparc", "motioncor", "imod")  # every compression here (libtiff)
    sweep_contenders = {"tiff lzw": {"compression": "lzw"},
                        "tiff deflate-6": {"compression": "deflate", "level": 6}}
    lossless_dtypes = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float16",
                       "float32")
    threads_note = ("tifffile maxworkers: parallel over strips of a page when writing (one "
                    "strip per frame = one thread), over pages when reading")

    def deflate_level(self) -> int | None:
        if self.config.compression != "deflate":
            return None
        return self.config.level or RELION_DEFLATE_LEVEL

    def label(self) -> str:
        kind = self.config.compression
        if kind == "deflate":
            kind = f"deflate-{self.deflate_level()}"
        return f"tiff {kind}" + (" lines" if self.config.line_by_line else "")

    def _write(self, target: Path | BinaryIO, stack: np.ndarray) -> None:
        # the file `convert` writes (write_relion_tiff), so the benchmark measures that file
        self.require_data(stack)
        write_relion_tiff(target, stack, compression=self.config.compression,
                          level=self.deflate_level(),
                          rowsperstrip=1 if self.config.line_by_line else None,
                          threads=self.config.threads)

    def _read(self, source: Path | BinaryIO) -> np.ndarray:
        import tifffile

        try:
            frames = list(iter_relion_tiff(source))
        except (tifffile.TiffFileError, ValueError, IndexError) as exc:
            raise FormatError(f"{source if not hasattr(source, 'read') else 'TIFF'}: "
                              f"cannot read TIFF ({exc})") from None
        if not frames:
            raise FormatError(f"{source if not hasattr(source, 'read') else 'TIFF'}: "
                              f"cannot read TIFF (no pages)")
        return np.stack(frames)


@dataclasses.dataclass(frozen=True)
class Jpeg2000Config(FormatConfig):
    pass


class Jpeg2000Format(_TiffContainer):
    name = "jpeg2000"
    description = ("JPEG 2000 lossless (OpenJPEG via imagecodecs, reversible 5/3 wavelet), "
                   "one codestream per frame in a TIFF (compression 34712)")
    Config = Jpeg2000Config
    lossless_dtypes = ("int8", "uint8", "int16", "uint16")  # OpenJPEG has no float samples
    threads_note = "OpenJPEG numthreads (encode and decode) + tifffile maxworkers over pages"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import imagecodecs

        return None if imagecodecs.JPEG2K.available else "imagecodecs built without JPEG 2000"

    def label(self) -> str:
        return "jpeg2000"

    def tiff_options(self, stack):
        # level 0 + reversible: the lossless 5/3 path (any other level is lossy)
        return stack, {"compression": "jpeg2000",
                       "compressionargs": {"level": 0, "reversible": True,
                                           "numthreads": self.config.threads}}


@dataclasses.dataclass(frozen=True)
class JpegXLConfig(FormatConfig):
    effort: int = param(7, "integer 1-9 (libjxl effort; 7 is its default)", integer(1, 9))


class JpegXLFormat(_TiffContainer):
    name = "jpegxl"
    description = ("JPEG XL lossless (libjxl via imagecodecs), one codestream per frame in a "
                   "TIFF (compression 50002)")
    Config = JpegXLConfig
    lossless_dtypes = ("int8", "uint8", "int16", "uint16", "float32")
    threads_note = "libjxl numthreads (encode and decode) + tifffile maxworkers over pages"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import imagecodecs

        return None if imagecodecs.JPEGXL.available else "imagecodecs built without JPEG XL"

    def label(self) -> str:
        return f"jpegxl e{self.config.effort}"

    def tiff_options(self, stack):
        kind = stack.dtype.kind
        # JPEG XL codes unsigned integers only: keep the bytes, record the dtype
        pixels = stack.view(stack.dtype.str.replace("i", "u")) if kind == "i" else stack
        return pixels, {"compression": "jpegxl",
                        "compressionargs": {"lossless": True, "effort": self.config.effort,
                                            "numthreads": self.config.threads},
                        "dtype": stack.dtype.name if kind == "i" else None}
