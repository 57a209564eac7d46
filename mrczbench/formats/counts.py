"""`gain-counts`: a gain-normalised float32 movie stored as integer counts + gain (issue 11).

encode() estimates the gain from the movie itself (mrczbench.movies.gain, RELION's rule),
converts every reliable pixel to its integer count, and stores, in one blob:

    b"MZGC1\\0" | u32 length | JSON header | gain | reliability bits | per-frame raw
    float32 values of the unreliable pixels | the counts encoded by the inner contender

The gain, the reliability bits and the side channel are bitshuffle + zstd-1 (blosc2); the
counts go through the inner format named in the config (`inner = "mrcz"`, `"tiff"`,
`"bzip2"`, ... with its own codec/level/compression). The gain is stored in every blob, so the
ratio includes it (RELION keeps one gain-reference.mrc per data set instead).

With `gain = "shared"` the gain is estimated once per session (process) and kept outside the
blob, which names it by SHA-256 (the blob then holds the side channel and the counts only),
as `mrczbench compress --gain-ref` and RELION's one gain-reference.mrc per run do: the ratio
and times are those of a facility writing movies with a gain it already knows.

The contender is always lossless: a pixel whose values are not all bit-exact multiples of its
gain estimate (float32(gain x count) == value) is demoted to unreliable before conversion, so
`thresh` only decides how many pixels are stored as counts; the default 0 counts every pixel
that saw a positive value and no mismatch. decode() returns the exact float32 stack.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import FormatError
from mrczbench.formats.base import Format, FormatConfig, integer, one_of, param

MAGIC = b"MZGC1\0"
# gain = "shared": the session's gains by SHA-256, and which one each movie (shape, pixel
# sample) was given; one session = one process, as one facility session estimates one gain
_SESSION_GAINS: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_SESSION_KEYS: dict[tuple, str] = {}
INNER_FORMATS = ("mrcz", "tiff", "bzip2", "blosc2", "hdf5", "mrc")
INNER_KEYS = ("codec", "level", "compression", "filter")


def _optional_type(kind: type, text: str):
    def check(name: str, value: Any) -> None:
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise FormatError(f"{name}: expected {text}. Got {value!r}")
    return check


def _tolerance(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise FormatError(f"{name}: expected a number >= 0. Got {value!r}")


@dataclasses.dataclass(frozen=True)
class CountsConfig(FormatConfig):
    inner: str = param("mrcz", " | ".join(INNER_FORMATS) + " (the format storing the counts)",
                       one_of(*INNER_FORMATS))
    codec: str | None = param(None, "null or the inner format's codec (mrcz, blosc2)",
                              _optional_type(str, "null or a codec name"))
    level: int | None = param(None, "null or the inner format's level",
                              _optional_type(int, "null or an integer"))
    compression: str | None = param(None, "null or the inner format's compression (tiff)",
                                    _optional_type(str, "null or a compression name"))
    filter: str | None = param(None, "null or the inner format's filter (mrcz, blosc2)",
                               _optional_type(str, "null or a filter name"))
    thresh: int = param(0, "integer >= 0: consistent observations before a pixel is reliable "
                        "(0: from its first positive value)", integer(0))
    tolerance: float = param(1e-4, "number >= 0: RELION's mismatch tolerance during estimation",
                             _tolerance)
    gain: str = param("embedded", "embedded (the gain in every blob) | shared (estimated once "
                      "per session and kept outside the blobs, which name it by SHA-256, as "
                      "`compress --gain-ref` does)", one_of("embedded", "shared"))

    def inner_params(self) -> dict[str, Any]:
        params = {key: getattr(self, key) for key in INNER_KEYS if getattr(self, key) is not None}
        return {**params, "threads": self.threads}

    def validate_together(self) -> None:
        from mrczbench.formats import get_format

        try:
            inner = get_format(self.inner, **self.inner_params())
        except FormatError as exc:
            raise FormatError(f"inner {self.inner}: {exc}") from None
        if not inner.has_memory_codec:
            raise FormatError(f"inner: {self.inner} has no in-memory codec")


class CountsFormat(Format):
    name = "gain-counts"
    description = ("gain-normalised float32 stored as integer counts + gain + unreliable pixels "
                   "(RELION's gain recovery), counts in an inner format")
    suffix = ".gcounts"
    Config = CountsConfig
    has_memory_codec = True
    # integer movies go through float32 exactly (their gain comes out 1.0) and come back as is
    lossless_dtypes = ("int8", "uint8", "int16", "uint16", "float32")
    threads_note = "passed to the inner format; gain estimation is single-threaded numpy"

    @property
    def inner(self) -> Format:
        from mrczbench.formats import get_format

        return get_format(self.config.inner, **self.config.inner_params())

    def label(self) -> str:
        shared = " shared gain" if self.config.gain == "shared" else ""
        return f"counts {self.inner.label()}{shared}"

    def encode(self, stack: np.ndarray) -> bytes:
        from mrczbench.movies import gain as gainmod

        self.require_data(stack)
        original = stack.dtype
        stack = stack.astype(np.float32, copy=False)
        if self.config.gain == "shared":
            gain, reliable, digest = self._session_gain(stack)
        else:
            gain, reliable = self._estimate(stack)
        counter = gainmod.Counter(gain, reliable)
        counts, side, low, high = [], [], 0, 0
        for frame in stack:
            converted = counter(frame)
            if converted.mismatches.size:   # only a shared gain from another movie can misfit
                raise FormatError("gain-counts: the movie does not fit the session's gain (a "
                                  "value is not gain x count); estimate the gain on it")
            low = min(low, int(converted.counts.min(initial=0)))
            high = max(high, int(converted.counts.max(initial=0)))
            counts.append(converted.counts.astype(np.int16))   # int16 holds every count kept
            side.append(gainmod.pack_array(converted.unreliable_values))
        dtype = gainmod.counts_dtype(low, high)
        inner_blob = self.inner.encode(np.stack(counts).astype(dtype, copy=False))
        header = {"shape": list(stack.shape), "dtype": original.name, "counts_dtype": dtype.name,
                  "unreliable": int(reliable.size - np.count_nonzero(reliable))}
        if self.config.gain == "shared":
            blobs = side + [inner_blob]
            header["gain_sha256"] = digest
        else:
            blobs = [gainmod.pack_array(gain), gainmod.pack_array(np.packbits(reliable.reshape(-1)))]
            blobs += side + [inner_blob]
        header.update(sizes=[len(b) for b in blobs], inner=self.inner.to_dict())
        text = json.dumps(header).encode()
        return b"".join([MAGIC, struct.pack("<I", len(text)), text] + blobs)

    def _estimate(self, stack):
        from mrczbench.movies import gain as gainmod

        estimate = gainmod.estimate_stack(stack, stack.shape[1:], self.config.thresh,
                                          self.config.tolerance)
        return gainmod.demote_mismatches(stack, estimate.gain, estimate.reliable)

    def _session_gain(self, stack):
        """(gain, reliable, SHA-256) of this session's gain: estimated on the first movie seen
        (by a sample of its pixels) and reused, as a facility estimates one gain per session."""
        key = (stack.shape, hashlib.sha256(np.ascontiguousarray(
            stack.reshape(-1)[::4099]).tobytes()).hexdigest())
        if key not in _SESSION_KEYS:
            gain, reliable = self._estimate(stack)
            digest = hashlib.sha256(gain.tobytes() + np.packbits(reliable).tobytes()).hexdigest()
            _SESSION_GAINS[digest] = (gain, reliable)
            _SESSION_KEYS[key] = digest
        digest = _SESSION_KEYS[key]
        return (*_SESSION_GAINS[digest], digest)

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        from mrczbench.movies import gain as gainmod

        header, parts = self._split(blob)
        stored = tuple(header["shape"])
        if tuple(shape) != stored:
            raise FormatError(f"gain-counts: blob holds {stored}, expected {tuple(shape)}")
        frames, ny, nx = stored
        pixels = ny * nx
        if "gain_sha256" in header:
            if header["gain_sha256"] not in _SESSION_GAINS:
                raise FormatError(f"gain-counts: gain reference {header['gain_sha256'][:12]} is "
                                  "not known in this session (a shared gain is estimated by encode)")
            gain, reliable = _SESSION_GAINS[header["gain_sha256"]]
            side = parts[:frames]
        else:
            gain = gainmod.unpack_array(parts[0], np.float32, pixels).reshape(ny, nx)
            bits = gainmod.unpack_array(parts[1], np.uint8, (pixels + 7) // 8)
            reliable = np.unpackbits(bits)[:pixels].astype(bool).reshape(ny, nx)
            side = parts[2:2 + frames]
        counts = self.inner.decode(parts[-1], stored, np.dtype(header["counts_dtype"]))
        out = np.empty(stored, np.float32)
        for index in range(frames):
            values = gainmod.unpack_array(side[index], np.float32, header["unreliable"])
            out[index] = gainmod.apply(counts[index], gain, reliable, values)
        return out.astype(dtype, copy=False)

    @staticmethod
    def _split(blob: bytes) -> tuple[dict, list[memoryview]]:
        view = memoryview(blob)
        if bytes(view[:len(MAGIC)]) != MAGIC:
            raise FormatError("gain-counts: not a gain-counts blob (bad magic)")
        try:
            (length,) = struct.unpack_from("<I", view, len(MAGIC))
            start = len(MAGIC) + 4
            header = json.loads(bytes(view[start:start + length]))
            sizes = [int(size) for size in header["sizes"]]
        except (struct.error, ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"gain-counts: corrupt header ({exc})") from None
        offset, parts = start + length, []
        for size in sizes:
            parts.append(view[offset:offset + size])
            offset += size
        if offset != len(blob):
            raise FormatError(f"gain-counts: {len(blob) - offset:+d} bytes against the header")
        return header, parts

    def write(self, path: Path, stack: np.ndarray) -> int:
        blob = self.encode(stack)
        with atomic_output(path) as out:
            out.write(blob)
        return Path(path).stat().st_size

    def read(self, path: Path) -> np.ndarray:
        blob = Path(path).read_bytes()
        header, _ = self._split(blob)
        return self.decode(blob, tuple(header["shape"]), np.dtype(header["dtype"]))
