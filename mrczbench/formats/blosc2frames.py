"""`blosc2`: the stack as a python-blosc2 NDArray (.b2nd), one chunk per frame like MRCZ.

This is what an MRCZ built on the blosc2 successor library would gain: the same per-frame
chunks and codecs, plus newer filters such as bytedelta (applied after a byte shuffle, as the
blosc2 docs recommend). The default filter is bitshuffle, the same as `mrcz`, so the defaults
compare blosc1 with blosc2 at equal settings; `filter=bytedelta` shows the newer filter.
Note that a byte shuffle of 1-byte values (int8) is a no-op: for int8 `shuffle` equals `none`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mrczbench.atomic import atomic_path
from mrczbench.errors import FormatError
from mrczbench.formats.base import (Format, FormatConfig, blocksize, blosc_label, integer, one_of,
                                    param)

CODECS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")
FILTERS = ("bitshuffle", "shuffle", "bytedelta", "none")


@dataclasses.dataclass(frozen=True)
class Blosc2Config(FormatConfig):
    codec: str = param("zstd", " | ".join(CODECS), one_of(*CODECS))
    level: int = param(1, "integer 1-9", integer(1, 9))
    filter: str = param("bitshuffle", " | ".join(FILTERS) + " (bytedelta = shuffle + bytedelta)",
                        one_of(*FILTERS))
    blocksize: int = param(0, "0 (automatic) or bytes 1024-2147483647 (rounded down to whole "
                              "rows of a frame)", blocksize())


class Blosc2Format(Format):
    name = "blosc2"
    description = "python-blosc2 NDArray (.b2nd), one chunk per frame, filters incl. bytedelta"
    suffix = ".b2nd"
    Config = Blosc2Config
    has_memory_codec = True  # the same NDArray as a contiguous frame (to_cframe)
    threads_note = "blosc2 nthreads (compress and decompress)"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import blosc2  # noqa: F401
        except ImportError:
            return "python package blosc2 is not installed"
        return None

    def label(self) -> str:
        return blosc_label("blosc2", self.config)

    def _params(self, stack: np.ndarray) -> dict:
        import blosc2

        filters = {
            "bitshuffle": [blosc2.Filter.BITSHUFFLE],
            "shuffle": [blosc2.Filter.SHUFFLE],
            "bytedelta": [blosc2.Filter.SHUFFLE, blosc2.Filter.BYTEDELTA],
            "none": [blosc2.Filter.NOFILTER],
        }[self.config.filter]
        cparams = blosc2.CParams(
            codec=blosc2.Codec[self.config.codec.upper()], clevel=self.config.level,
            filters=filters, filters_meta=[0] * len(filters),  # 0: use the typesize
            typesize=stack.dtype.itemsize, nthreads=self.config.threads)
        return {"chunks": (1,) + stack.shape[1:], "blocks": self._blocks(stack),
                "cparams": cparams, "dparams": blosc2.DParams(nthreads=self.config.threads)}

    def _blocks(self, stack: np.ndarray) -> tuple[int, int, int] | None:
        """NDArray ignores CParams.blocksize (it derives blocks from its shape), so the
        blocksize becomes a block of whole rows: blocksize // row bytes, at least one row."""
        if not self.config.blocksize:
            return None  # blosc2 chooses
        _, ny, nx = stack.shape
        rows = self.config.blocksize // max(1, nx * stack.dtype.itemsize)
        return (1, min(ny, max(1, rows)), nx)

    def _decompress(self, array) -> np.ndarray:
        import blosc2

        # stored arrays come back with default decompression threads; use ours
        previous = blosc2.set_nthreads(self.config.threads)
        try:
            return array[:]
        finally:
            blosc2.set_nthreads(previous)

    def encode(self, stack: np.ndarray) -> bytes:
        import blosc2

        self.require_data(stack)
        return blosc2.asarray(stack, **self._params(stack)).to_cframe()

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        import blosc2

        return self._decompress(blosc2.ndarray_from_cframe(blob)).reshape(shape)

    def write(self, path: Path, stack: np.ndarray) -> int:
        import blosc2

        self.require_data(stack)
        with atomic_path(path) as tmp:
            array = blosc2.asarray(stack, urlpath=str(tmp), mode="w", **self._params(stack))
            del array  # closes the file before the rename
        return Path(path).stat().st_size

    def read(self, path: Path) -> np.ndarray:
        import blosc2

        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: no such file")
        try:
            array = blosc2.open(str(path), mode="r")
        except (RuntimeError, ValueError) as exc:
            raise FormatError(f"{path}: cannot open as blosc2 NDArray ({exc})") from None
        return self._decompress(array)
