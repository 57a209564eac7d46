"""`hdf5`: h5py + hdf5plugin bitshuffle (filter 32008) with LZ4 or zstd, one chunk per frame.

This is what Dectris detectors (EIGER, and the NeXus/HDF5 files their software writes) use:
bitshuffle-LZ4 chunks of one frame. The stack is the dataset "/data"; any HDF5 reader with the
bitshuffle plugin (h5py + hdf5plugin, h5dump with HDF5_PLUGIN_PATH) opens it.
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from mrczbench.atomic import atomic_path
from mrczbench.errors import FormatError
from mrczbench.extras import missing_reason
from mrczbench.formats.base import Format, FormatConfig, integer, one_of, optional, param

DATASET = "data"
ZSTD_DEFAULT_LEVEL = 3  # hdf5plugin.Bitshuffle's default clevel


@dataclasses.dataclass(frozen=True)
class Hdf5Config(FormatConfig):
    compression: str = param("bitshuffle-lz4", "bitshuffle-lz4 | bitshuffle-zstd",
                             one_of("bitshuffle-lz4", "bitshuffle-zstd"))
    level: int | None = param(None, f"null or integer 1-22; bitshuffle-zstd only (null = "
                                    f"{ZSTD_DEFAULT_LEVEL})", optional(integer(1, 22)))

    def validate_together(self) -> None:
        self.level_only_with("bitshuffle-zstd")


class Hdf5Format(Format):
    name = "hdf5"
    description = "HDF5 (h5py + hdf5plugin) bitshuffle-LZ4 / bitshuffle-zstd, one chunk per frame"
    suffix = ".h5"
    Config = Hdf5Config
    column_fields = {"codec": "compression"}  # the result rows' codec column
    has_memory_codec = True  # the same HDF5 file, built in a BytesIO
    threads_note = ("ignored: the HDF5 filter pipeline compresses one chunk at a time "
                    "(hdf5plugin's bitshuffle is built without OpenMP here)")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        # optional: `pip install mrczbench[hdf5]` (h5py + hdf5plugin are ~200 MB)
        return missing_reason("h5py", "hdf5plugin")

    def zstd_level(self) -> int | None:
        if self.config.compression != "bitshuffle-zstd":
            return None
        return self.config.level or ZSTD_DEFAULT_LEVEL

    def label(self) -> str:
        if self.config.compression == "bitshuffle-zstd":
            return f"hdf5 bszstd-{self.zstd_level()}"
        return "hdf5 bslz4"

    def _filter(self):
        import hdf5plugin

        if self.config.compression == "bitshuffle-zstd":
            return hdf5plugin.Bitshuffle(cname="zstd", clevel=self.zstd_level())
        return hdf5plugin.Bitshuffle(cname="lz4")

    def _write(self, target, stack: np.ndarray) -> None:
        import h5py

        self.require_data(stack)
        with h5py.File(target, "w") as h5:
            h5.create_dataset(DATASET, data=stack, chunks=(1,) + stack.shape[1:],
                              **self._filter())

    def _read(self, source) -> np.ndarray:
        import h5py
        import hdf5plugin  # noqa: F401  (registers the bitshuffle filter with HDF5)

        try:
            with h5py.File(source, "r") as h5:
                return h5[DATASET][()]
        except (OSError, KeyError) as exc:
            raise FormatError(f"cannot read HDF5 dataset /{DATASET}: {exc}") from None

    def encode(self, stack: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        self._write(buffer, stack)
        return buffer.getvalue()

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self._read(io.BytesIO(blob)).reshape(shape).astype(dtype, copy=False)

    def write(self, path: Path, stack: np.ndarray) -> int:
        with atomic_path(path) as tmp:
            self._write(tmp, stack)
        return Path(path).stat().st_size

    def read(self, path: Path) -> np.ndarray:
        return self._read(Path(path))
