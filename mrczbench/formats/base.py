"""The Format contract every contender implements.

A Format is built from a frozen dataclass config (`Format.Config`) whose fields are the
contender's parameters. It writes and reads files always, and encodes/decodes in memory when
`has_memory_codec` is true. Stacks are numpy arrays shaped (frames, y, x).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mrczbench.errors import FormatError


@dataclasses.dataclass(frozen=True)
class FormatConfig:
    """Base for per-format parameter dataclasses. Subclasses add fields with defaults and
    may override `validate()`; `choices()` documents the valid values per field."""

    threads: int = 1

    def validate(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 1:
            raise FormatError(f"threads: expected an integer >= 1. Got {self.threads!r}")

    @classmethod
    def choices(cls) -> dict[str, str]:
        """field name -> human description of valid values (for --help and `formats list`)."""
        return {"threads": "integer >= 1"}


class Format:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    suffix: ClassVar[str] = ".bin"
    Config: ClassVar[type[FormatConfig]] = FormatConfig
    has_memory_codec: ClassVar[bool] = False
    lossless_dtypes: ClassVar[tuple[str, ...] | None] = None  # None: any dtype

    def __init__(self, config: FormatConfig | None = None, **params: Any):
        if config is None:
            config = self.config_from_dict(params)
        elif params:
            raise TypeError("pass either a config or keyword parameters, not both")
        config.validate()
        self.config = config

    # --- availability -------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when the format can run on this machine, else a one-line reason."""
        return None

    # --- config <-> JSON ----------------------------------------------------------------
    @classmethod
    def config_from_dict(cls, params: dict[str, Any]) -> FormatConfig:
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise FormatError(
                f"{cls.name}: unknown parameter(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(fields))}")
        return cls.Config(**params)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.name, **dataclasses.asdict(self.config)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def label(self) -> str:
        """Short human name for tables, e.g. 'mrcz zstd-1'. Override for nicer labels."""
        return self.name

    # --- operations ---------------------------------------------------------------------
    def encode(self, stack: np.ndarray) -> bytes:
        raise NotImplementedError(f"{self.name} has no in-memory codec")

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no in-memory codec")

    def write(self, path: Path, stack: np.ndarray) -> int:
        """Write the stack to `path` (atomically); return the bytes stored on disk."""
        raise NotImplementedError

    def read(self, path: Path) -> np.ndarray:
        """Read the whole stack back as (frames, y, x) with the original dtype."""
        raise NotImplementedError

    def check_data(self, stack: np.ndarray) -> str | None:
        """None when this format stores `stack` losslessly, else the reason it cannot
        (e.g. values > 15 for 4-bit packing). The runner records such cases as lossy."""
        return None
