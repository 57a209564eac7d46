"""Lossless image coders from imagecodecs, one codestream per frame in the framed container
(mrczbench.formats.framed): `htj2k`, `jpegls`, `lerc`.

- `htj2k`: High-Throughput JPEG 2000 (OpenJPH), reversible 5/3 wavelet: JPEG 2000 Part 15,
  the block coder made for speed. Integers up to 32 bits; no floats.
- `jpegls`: JPEG-LS (CharLS), predictive coding (LOCO-I) with NEAR = 0. CharLS codes unsigned
  8/16-bit samples: int8/int16 frames are coded as their unsigned bit patterns (the same
  bytes; the container records the dtype).
- `lerc`: LERC (Esri), maxZError = 0 (lossless), optionally followed by deflate or zstd as
  LERC in GeoTIFF does. Integers and float32; NaN cannot be stored bit-exactly (LERC treats it
  as "no data" and gives back another NaN pattern), so check_data refuses floats with NaN.
  LERC 4.0 leaves a few bytes of its 8-bit output (checksum and tail) uninitialised: the
  pixels round-trip, but two encodes of an int8/uint8 frame may differ byte for byte.

A coder imagecodecs was built without makes the contender unavailable with the reason.
"""
from __future__ import annotations

import dataclasses
import sys
import threading

import numpy as np

from mrczbench.formats.base import FormatConfig, one_of, param
from mrczbench.formats.framed import FramedFormat

# imagecodecs copies OpenJPH's decoded lines in a function that cannot raise: an OpenJPH error
# there is printed as "Exception ignored in: 'imagecodecs._htj2k._copy_from_codestream'" and
# htj2k_decode returns a partly written frame (measured: a flipped byte in a codestream gives
# wrong pixels and no exception). The hook notes such an error in the thread that decoded, so
# decode_frame raises instead of returning wrong pixels (framed then names the file and frame).
_HTJ2K_FAILED = threading.local()
_previous_hook = sys.unraisablehook


def _note_htj2k_failure(unraisable) -> None:
    if "_htj2k" in repr(getattr(unraisable, "object", "")):
        _HTJ2K_FAILED.error = unraisable.exc_value  # decode_frame raises it as one line
    else:
        _previous_hook(unraisable)


# A precaution: OpenJPH picks its SIMD functions on first use, so that first use happens in
# one thread, under a lock, not in several worker threads at once. A sound frame failed to
# decode once in CI, in a fresh process's first parallel decode; 10,500 round trips here (2
# threads, with and without load) did not reproduce it, so the cause is not proven.
_htj2k_lock = threading.Lock()
_htj2k_used = False


def _htj2k_ready() -> None:
    """OpenJPH used once, in one thread, and the hook in place (put back, chaining whoever
    replaced sys.unraisablehook since: a test runner, another library)."""
    global _htj2k_used, _previous_hook
    if _htj2k_used and sys.unraisablehook is _note_htj2k_failure:
        return
    import imagecodecs
    with _htj2k_lock:
        if sys.unraisablehook is not _note_htj2k_failure:
            _previous_hook, sys.unraisablehook = sys.unraisablehook, _note_htj2k_failure
        if not _htj2k_used:
            frame = np.arange(64, dtype=np.uint8).reshape(8, 8)
            imagecodecs.htj2k_decode(imagecodecs.htj2k_encode(frame, reversible=True))
            _htj2k_used = True


class _ImagecodecsFramed(FramedFormat):
    codec_attr = ""  # the imagecodecs availability flag, e.g. "HTJ2K"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import imagecodecs
        except ImportError:
            return "python package imagecodecs is not installed"
        codec = getattr(imagecodecs, cls.codec_attr, None)
        if codec is None or not codec.available:
            return f"imagecodecs {imagecodecs.__version__} was built without {cls.codec_attr}"
        return None

    def label(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True)
class Htj2kConfig(FormatConfig):
    pass


class Htj2kFormat(_ImagecodecsFramed):
    name = "htj2k"
    description = ("High-Throughput JPEG 2000 lossless (OpenJPH via imagecodecs, reversible "
                   "5/3), one codestream per frame, framed container")
    suffix = ".htj2k.frames"
    Config = Htj2kConfig
    codec_attr = "HTJ2K"
    lossless_dtypes = ("int8", "uint8", "int16", "uint16", "int32", "uint32")

    def encode_frame(self, frame: np.ndarray) -> bytes:
        import imagecodecs

        _htj2k_ready()
        return imagecodecs.htj2k_encode(frame, reversible=True)

    def decode_frame(self, payload: bytes, out: np.ndarray) -> None:
        import imagecodecs

        _htj2k_ready()
        _HTJ2K_FAILED.error = None
        imagecodecs.htj2k_decode(payload, out=out)
        if _HTJ2K_FAILED.error is not None:
            # framed names the file and frame
            raise RuntimeError(f"OpenJPH failed while decoding ({_HTJ2K_FAILED.error}), which "
                               f"imagecodecs ignored: the frame's pixels are not trustworthy")


@dataclasses.dataclass(frozen=True)
class JpeglsConfig(FormatConfig):
    pass


class JpeglsFormat(_ImagecodecsFramed):
    name = "jpegls"
    description = ("JPEG-LS lossless (CharLS via imagecodecs, NEAR = 0), one codestream per "
                   "frame, framed container")
    suffix = ".jls.frames"
    Config = JpeglsConfig
    codec_attr = "JPEGLS"
    lossless_dtypes = ("int8", "uint8", "int16", "uint16")

    def stored_dtype(self, dtype: np.dtype) -> np.dtype:
        dtype = np.dtype(dtype)
        return np.dtype(dtype.str.replace("i", "u")) if dtype.kind == "i" else dtype

    def encode_frame(self, frame: np.ndarray) -> bytes:
        import imagecodecs

        return imagecodecs.jpegls_encode(frame, level=0)  # NEAR = 0: lossless

    def decode_frame(self, payload: bytes, out: np.ndarray) -> None:
        import imagecodecs

        imagecodecs.jpegls_decode(payload, out=out)


LERC_COMPRESSION = ("none", "deflate", "zstd")


@dataclasses.dataclass(frozen=True)
class LercConfig(FormatConfig):
    compression: str = param("none", "none | deflate | zstd (applied after LERC, as in "
                                     "GeoTIFF)", one_of(*LERC_COMPRESSION))


class LercFormat(_ImagecodecsFramed):
    name = "lerc"
    description = ("LERC lossless (Esri, maxZError 0, via imagecodecs), optional deflate/zstd, "
                   "one blob per frame, framed container")
    suffix = ".lerc.frames"
    Config = LercConfig
    codec_attr = "LERC"
    lossless_dtypes = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32",
                       "float64")

    def label(self) -> str:
        return "lerc" + ("" if self.config.compression == "none" else f" {self.config.compression}")

    def check_data(self, stack: np.ndarray) -> str | None:
        reason = super().check_data(stack)
        if reason is None and stack.dtype.kind == "f" and np.isnan(stack).any():
            return (f"lerc cannot store NaN bit-exactly ({int(np.isnan(stack).sum())} NaN "
                    f"pixel(s)): LERC treats NaN as 'no data'")
        return reason

    def encode_frame(self, frame: np.ndarray) -> bytes:
        import imagecodecs

        compression = None if self.config.compression == "none" else self.config.compression
        return imagecodecs.lerc_encode(frame, level=0.0, compression=compression)

    def decode_frame(self, payload: bytes, out: np.ndarray) -> None:
        import imagecodecs

        imagecodecs.lerc_decode(payload, out=out)
