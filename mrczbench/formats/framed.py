"""The framed container: one file per movie, one independently coded payload per frame.

The per-frame image and numeric coders (`pcodec`, `htj2k`, `jpegls`, `lerc`) code a 2-D
frame, not a stack. They all write this one small container, so a whole movie is one file,
frames compress and decompress in parallel (`threads` workers over frames), and one frame can
be read alone (`read_frame`), as MRCZ's chunk table allows. All integers are little-endian:

    offset 0   magic        8 bytes  b"MRCZBFR1"
    offset 8   header_len   uint32   length of the JSON header
    offset 12  header       JSON (UTF-8): {"codec": "pcodec", "params": {...},
                            "shape": [frames, y, x], "dtype": "int16", "stored_dtype": "int16"}
    then       frame index  frames x (offset uint64, length uint64, crc32 uint32), offsets
                            from the start of the file
    then       payloads     one per frame, in frame order, without gaps (the reader
                            requires it: a damaged frame count moves the index's end)

`dtype` is the movie's dtype; `stored_dtype` is what the coder saw (JPEG-LS codes unsigned
samples only, so int16 is coded as its uint16 bit pattern: the same bytes). `params` are the
contender's parameters (without `threads`, which does not change the bytes). The CRC-32 of
each payload makes a corrupt frame a FormatError instead of wrong pixels. The in-memory codec
(`encode`/`decode`) produces exactly the file's bytes.
"""
from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import FormatError
from mrczbench.formats.base import Format

MAGIC = b"MRCZBFR1"
PREFIX = struct.Struct("<8sI")         # magic, header length
ENTRY = struct.Struct("<QQI")          # payload offset, length, crc32
MAX_HEADER = 1 << 20                   # a JSON header is a few hundred bytes


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a container's header and index say."""

    codec: str
    params: dict[str, Any]
    shape: tuple[int, int, int]
    dtype: np.dtype
    stored_dtype: np.dtype
    index: list[tuple[int, int, int]]  # (offset, length, crc32) per frame


def _map(func: Callable, items: Iterable, threads: int) -> list:
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(func, items))


def parse_layout(head, source: str, size: int) -> Layout:
    """Header and index from the first bytes of a container of `size` bytes (`head`: bytes or
    a memoryview of the whole container; `layout_bytes` says how many it must hold)."""
    if len(head) < PREFIX.size or bytes(head[:8]) != MAGIC:
        raise FormatError(f"{source}: not a mrczbench framed container (magic {MAGIC!r} "
                          f"missing)")
    _, header_len = PREFIX.unpack_from(head)
    if header_len > MAX_HEADER or PREFIX.size + header_len > len(head):
        raise FormatError(f"{source}: truncated or corrupt framed container (header of "
                          f"{header_len} bytes; file has {size})")
    try:
        header = json.loads(bytes(head[PREFIX.size:PREFIX.size + header_len]).decode("utf-8"))
        shape = tuple(int(v) for v in header["shape"])
        dtype, stored = np.dtype(header["dtype"]), np.dtype(header["stored_dtype"])
        codec, params = str(header["codec"]), dict(header["params"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{source}: corrupt framed container header ({exc})") from None
    if len(shape) != 3 or min(shape) < 0 or dtype.itemsize != stored.itemsize:
        raise FormatError(f"{source}: corrupt framed container header (shape {shape}, "
                          f"dtype {dtype}, stored as {stored})")
    start = PREFIX.size + header_len
    end = start + shape[0] * ENTRY.size
    if end > len(head) or end > size:
        raise FormatError(f"{source}: truncated framed container: the index of {shape[0]} "
                          f"frames needs {end} bytes; file has {size}")
    index = [ENTRY.unpack_from(head, start + i * ENTRY.size) for i in range(shape[0])]
    for i, (offset, length, _) in enumerate(index):
        if offset < end or offset + length > size:
            raise FormatError(f"{source}: truncated or corrupt framed container: frame {i} "
                              f"lies at bytes {offset}-{offset + length}; file has {size}")
    # the payloads follow the index without gaps, in frame order: a header whose frame count
    # was damaged (3 -> 1) moves the index's end, and would otherwise read a shorter movie
    starts = [end] + [offset + length for offset, length, _ in index[:-1]]
    if any(offset != at for (offset, _, _), at in zip(index, starts)):
        raise FormatError(f"{source}: corrupt framed container: the index of {shape[0]} frames "
                          f"does not describe payloads one after another from byte {end}")
    return Layout(codec, params, shape, dtype, stored, index)


def layout_bytes(head: bytes) -> int:
    """How many bytes from the start hold the header and the index (0 when `head` is too
    short or not a container; parse_layout then says why)."""
    if len(head) < PREFIX.size or bytes(head[:8]) != MAGIC:
        return 0
    _, header_len = PREFIX.unpack_from(head)
    if header_len > MAX_HEADER:
        return 0
    try:
        header = json.loads(bytes(head[PREFIX.size:PREFIX.size + header_len]).decode("utf-8"))
        frames = int(header["shape"][0])
    except (ValueError, KeyError, TypeError, IndexError):
        return 0
    return PREFIX.size + header_len + max(0, frames) * ENTRY.size


class FramedFormat(Format):
    """A contender that codes each frame alone and stores the frames in the framed container.
    Subclasses give `encode_frame` and `decode_frame`, and `stored_dtype` where the coder
    needs another dtype with the same bytes."""

    suffix = ".frames"
    has_memory_codec = True
    threads_note = "frames in parallel: one worker thread per frame, up to `threads`"

    # --- what a subclass provides ---------------------------------------------------------
    def encode_frame(self, frame: np.ndarray) -> bytes:
        raise NotImplementedError

    def decode_frame(self, payload: bytes, out: np.ndarray) -> None:
        """Decode into `out`, a C-contiguous (y, x) array of the stored dtype."""
        raise NotImplementedError

    def stored_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(dtype)

    def header_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self.config)
        params.pop("threads")
        return params

    # --- Format ---------------------------------------------------------------------------
    def check_data(self, stack: np.ndarray) -> str | None:
        if stack.ndim == 3 and self.lossless_dtypes and stack.dtype.name not in self.lossless_dtypes:
            return (f"unsupported dtype {stack.dtype.name}: {self.name} stores "
                    f"{', '.join(self.lossless_dtypes)} losslessly")
        return super().check_data(stack)

    def _chunks(self, stack: np.ndarray) -> list[bytes]:
        self.require_data(stack)
        stored = self.stored_dtype(stack.dtype)
        pixels = np.ascontiguousarray(stack, dtype=stack.dtype.newbyteorder("=")).view(stored)
        payloads = _map(lambda frame: self.encode_frame(np.ascontiguousarray(frame)), pixels,
                        self.config.threads)
        header = json.dumps({"codec": self.name, "params": self.header_params(),
                             "shape": list(stack.shape), "dtype": stack.dtype.name,
                             "stored_dtype": stored.name}, sort_keys=True).encode("utf-8")
        offset = PREFIX.size + len(header) + len(payloads) * ENTRY.size
        index = bytearray()
        for payload in payloads:
            index += ENTRY.pack(offset, len(payload), zlib.crc32(payload))
            offset += len(payload)
        return [PREFIX.pack(MAGIC, len(header)), header, bytes(index), *payloads]

    def encode(self, stack: np.ndarray) -> bytes:
        return b"".join(self._chunks(stack))

    decodes_into = True

    def decode_into(self, blob: bytes, out: np.ndarray) -> None:
        self._unpack(memoryview(blob), "framed data", out)

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        stack = self._unpack(memoryview(blob), "framed data")
        if stack.shape != tuple(shape) or stack.dtype != np.dtype(dtype):
            raise FormatError(f"framed data holds {stack.dtype.name} {stack.shape}; expected "
                              f"{np.dtype(dtype).name} {tuple(shape)}")
        return stack

    def write(self, path: Path, stack: np.ndarray) -> int:
        chunks = self._chunks(stack)
        with atomic_output(path) as out:
            out.writelines(chunks)
        return Path(path).stat().st_size

    def read(self, path: Path) -> np.ndarray:
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
        return self._unpack(memoryview(path.read_bytes()), str(path))

    def read_frame(self, path: Path, index: int) -> np.ndarray:
        """One frame (y, x) without reading the others."""
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(4096)
            if PREFIX.size <= len(head) and bytes(head[:8]) == MAGIC:
                header_len = PREFIX.unpack_from(head)[1]
                if PREFIX.size + min(header_len, MAX_HEADER) > len(head):
                    head += handle.read(PREFIX.size + min(header_len, MAX_HEADER) - len(head))
            need = layout_bytes(head)
            if need > len(head):
                head += handle.read(need - len(head))
            layout = self._layout(head, str(path), size)
            frames = layout.shape[0]
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                    or not -frames <= index < frames:
                raise FormatError(f"{path}: frame {index!r} out of range; the movie has "
                                  f"{frames} frame(s) (0-{frames - 1})")
            offset, length, crc = layout.index[int(index)]
            handle.seek(offset)
            payload = handle.read(length)
        out = np.empty(layout.shape[1:], layout.stored_dtype)
        self._decode_checked(payload, crc, out, str(path), int(index) % frames)
        return out.view(layout.dtype)

    # --- internals ------------------------------------------------------------------------
    def _layout(self, head, source: str, size: int) -> Layout:
        layout = parse_layout(head, source, size)
        if layout.codec != self.name:
            raise FormatError(f"{source}: holds {layout.codec} frames, not {self.name}; read "
                              f"it with the {layout.codec} contender")
        if self.check_data(np.empty((0, 0, 0), layout.dtype)):
            raise FormatError(f"{source}: {self.check_data(np.empty((0, 0, 0), layout.dtype))}")
        return layout

    def _unpack(self, blob: memoryview, source: str, out: np.ndarray | None = None) -> np.ndarray:
        layout = self._layout(blob, source, len(blob))
        if out is None:
            stack = np.empty(layout.shape, layout.stored_dtype)
        elif out.shape != tuple(layout.shape) or out.dtype.itemsize != np.dtype(layout.dtype).itemsize:
            raise FormatError(f"{source} holds {np.dtype(layout.dtype).name} {tuple(layout.shape)}; "
                              f"expected {out.dtype.name} {out.shape}")
        else:
            stack = out.view(layout.stored_dtype)

        def one(i: int) -> None:
            offset, length, crc = layout.index[i]
            self._decode_checked(blob[offset:offset + length], crc, stack[i], source, i)

        _map(one, range(layout.shape[0]), self.config.threads)
        return stack.view(layout.dtype)

    def _decode_checked(self, payload, crc: int, out: np.ndarray, source: str, i: int) -> None:
        if zlib.crc32(payload) != crc:
            raise FormatError(f"{source}: frame {i} is corrupt (CRC-32 mismatch)")
        try:
            self.decode_frame(bytes(payload), out)
        except FormatError:
            raise
        except Exception as exc:  # the coders raise their own types; name the frame instead
            raise FormatError(f"{source}: frame {i} cannot be decoded by {self.name} "
                              f"({type(exc).__name__}: {exc})") from None
