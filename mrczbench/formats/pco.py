"""`pcodec`: Pco (pcodec), a numerical coder that fits an entropy code to each frame's values.

Pco bins the values and codes bin offsets with tANS; on Poisson counts it stores within
about 1 % of the i.i.d. Shannon bound (issue 17), at tens of Mpx/s. Each frame is one Pco
"standalone" file in the framed container (mrczbench.formats.framed). 8-bit counts are coded
as such (Pco's `enable_8_bit`; Pco warns that 8-bit data is "often a mistake" because a byte
coder is usually as good, which is what this benchmark measures).

Optional: needs the `pcodec` package (pip install mrczbench[pcodec]).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mrczbench.formats.base import FormatConfig, integer, param
from mrczbench.formats.framed import FramedFormat

DEFAULT_LEVEL = 8  # pcodec.DEFAULT_COMPRESSION_LEVEL


@dataclasses.dataclass(frozen=True)
class PcodecConfig(FormatConfig):
    level: int = param(DEFAULT_LEVEL, "integer 0-12 (Pco compression level; 8 is its default)",
                       integer(0, 12))


class PcodecFormat(FramedFormat):
    name = "pcodec"
    description = "Pco (pcodec) numerical coder, one standalone chunk per frame, framed container"
    suffix = ".pco.frames"
    Config = PcodecConfig
    # near-entropy: ~1.004x the Shannon bound at dose 1, so offered to `recommend --goal archive`
    archive_contenders = {"pcodec-8": {"level": 8}}
    lossless_dtypes = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float16",
                       "float32", "int64", "uint64", "float64")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import pcodec  # noqa: F401
        except ImportError:
            return "python package pcodec is not installed (pip install mrczbench[pcodec])"
        return None

    def label(self) -> str:
        return f"pcodec-{self.config.level}"

    def encode_frame(self, frame: np.ndarray) -> bytes:
        from pcodec import ChunkConfig, standalone

        config = ChunkConfig(compression_level=self.config.level,
                             enable_8_bit=frame.dtype.itemsize == 1)
        return standalone.simple_compress(frame.reshape(-1), config)

    def decode_frame(self, payload: bytes, out: np.ndarray) -> None:
        from pcodec import standalone

        flat = out.reshape(-1)  # a view: `out` is C-contiguous
        progress = standalone.simple_decompress_into(payload, flat)
        if progress.n_processed != flat.size or not progress.finished:
            raise ValueError(f"frame holds {progress.n_processed} values; expected {flat.size}")
