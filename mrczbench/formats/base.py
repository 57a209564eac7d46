"""The Format contract every contender implements.

A Format is built from a frozen dataclass config (`Format.Config`) whose fields are the
contender's parameters. It writes and reads files always, and encodes/decodes in memory when
`has_memory_codec` is true. Stacks are numpy arrays shaped (frames, y, x).

Config fields are declared with `param(default, valid, check)`: `valid` is the human
description of the valid values (shown by `mrczbench formats list` and in error messages) and
`check(name, value)` is the one validator of that field; it raises FormatError with a message
such as "level: expected an integer 1-9. Got 12". Rules that tie two fields together (a level
that only means something for one compression) go in `Config.validate_together()`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from mrczbench.errors import FormatError

Check = Callable[[str, Any], None]

# The contender columns of a result row that Format.row_columns() fills.
ROW_COLUMNS = ("codec", "level", "blocksize", "filter", "threads")


# --- field validators (each returns a check(name, value) that raises FormatError) ----------
def integer(low: int, high: int | None = None) -> Check:
    def check(name: str, value: Any) -> None:
        # bool is an int subclass; True as a level is a mistake, not 1
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        if ok and high is not None:
            ok = value <= high
        if not ok:
            valid = f"{low}-{high}" if high is not None else f">= {low}"
            raise FormatError(f"{name}: expected an integer {valid}. Got {value!r}")
    return check


def one_of(*choices: Any) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or value not in choices:
            raise FormatError(
                f"{name}: expected one of {', '.join(map(str, choices))}. Got {value!r}")
    return check


def boolean() -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise FormatError(f"{name}: expected true or false. Got {value!r}")
    return check


def optional(inner: Check) -> Check:
    """None means "the library's default" (e.g. a level for a compression that has one)."""
    def check(name: str, value: Any) -> None:
        if value is not None:
            inner(name, value)
    return check


def blocksize() -> Check:
    def check(name: str, value: Any) -> None:
        if (not isinstance(value, int) or isinstance(value, bool)
                or not (value == 0 or 1024 <= value <= 2**31 - 1)):
            raise FormatError(
                f"{name}: expected 0 (automatic) or an integer number of bytes 1024-2147483647."
                f" Got {value!r}")
    return check


def param(default: Any, valid: str, check: Check) -> Any:
    """A config field with its description of valid values and its validator."""
    return dataclasses.field(default=default, metadata={"valid": valid, "check": check})


@dataclasses.dataclass(frozen=True)
class FormatConfig:
    """Base for per-format parameter dataclasses. Subclasses add `param(...)` fields; every
    contender has `threads` so that it is recorded in every result row."""

    threads: int = param(1, "integer >= 1", integer(1))

    def validate(self) -> None:
        for field in dataclasses.fields(self):
            check = field.metadata.get("check")
            if check is None:  # a field without a validator would accept anything
                raise TypeError(
                    f"{type(self).__name__}.{field.name} has no validator: declare it with "
                    f"mrczbench.formats.base.param(default, valid, check) or override validate()")
            check(field.name, getattr(self, field.name))
        self.validate_together()

    def validate_together(self) -> None:
        """Rules between fields; override where a parameter only applies to some settings."""

    def level_only_with(self, compression: str) -> None:
        """For configs with `compression` and `level` fields: a level given for a compression
        that has none is an error, not silently ignored."""
        if self.level is not None and self.compression != compression:
            raise FormatError(f"level: only {compression} has a level; {self.compression} has "
                              f"none. Got {self.level!r}")

    @classmethod
    def choices(cls) -> dict[str, str]:
        """field name -> human description of valid values (for --help and `formats list`)."""
        return {f.name: f.metadata.get("valid", "") for f in dataclasses.fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls)}


class Format:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    suffix: ClassVar[str] = ".bin"
    Config: ClassVar[type[FormatConfig]] = FormatConfig
    has_memory_codec: ClassVar[bool] = False
    # decode_into exists: the benchmark decodes into one reused, pre-faulted output (the page
    # faults of a fresh output are timed apart, as the `alloc` op), else into a fresh one
    decodes_into: ClassVar[bool] = False
    lossless_dtypes: ClassVar[tuple[str, ...] | None] = None  # None: any dtype
    # How `threads` is used; says so where the library ignores it (it is recorded anyway).
    threads_note: ClassVar[str] = ""
    # Result-row columns this contender fills (see row_columns): row column -> config field,
    # for the columns whose config field has another name (TIFF's `compression` is its codec).
    column_fields: ClassVar[dict[str, str]] = {}
    # Programs that read this format's files as they are (`recommend --readers`; the programs
    # and their sources are analysis.recommend.READER_SOURCES).
    native_readers: ClassVar[tuple[str, ...]] = ()
    # The configurations `recommend` measures in its focused sweep: contender label -> the
    # config fields besides `format` (empty: not in the sweep).
    sweep_contenders: ClassVar[dict[str, dict[str, Any]]] = {}
    # Added to that sweep for `recommend --goal archive` (near-entropy, slower configurations).
    archive_contenders: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: FormatConfig | None = None, **params: Any):
        if config is None:
            config = self.config_from_dict(params)
        elif params:
            raise TypeError("pass either a config or keyword parameters, not both")
        elif not isinstance(config, self.Config):
            raise TypeError(f"{self.name}: config must be a {self.Config.__name__}")
        config.validate()
        self.config = config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_json()}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config == self.config

    def __hash__(self) -> int:
        return hash((type(self), self.config))

    # --- availability -------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when the format can run on this machine, else a one-line reason."""
        return None

    def config_unavailable_reason(self) -> str | None:
        """As unavailable_reason, for what only some configs need (a library one parameter
        value uses): the benchmark skips those cases only."""
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

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """What `mrczbench formats list` shows: parameters, defaults, valid values, availability."""
        valid = cls.Config.choices()
        return {
            "name": cls.name,
            "description": cls.description,
            "suffix": cls.suffix,
            "memory_codec": cls.has_memory_codec,
            "dtypes": list(cls.lossless_dtypes) if cls.lossless_dtypes else "any",
            "threads": cls.threads_note,
            "available": cls.unavailable_reason() is None,
            "unavailable_reason": cls.unavailable_reason(),
            "parameters": {name: {"default": default, "valid": valid[name]}
                           for name, default in cls.Config.defaults().items()},
        }

    def row_columns(self) -> dict[str, Any]:
        """The contender's values of the result columns in ROW_COLUMNS (None where it has no
        such parameter). A column is filled from the config field of the same name, or from
        the field `column_fields` names for it; override for anything else."""
        values = dataclasses.asdict(self.config)
        return {column: values.get(self.column_fields.get(column, column))
                for column in ROW_COLUMNS}

    def label(self) -> str:
        """Short human name for tables, e.g. 'mrcz zstd-1'. Override for nicer labels."""
        return self.name

    # --- operations ---------------------------------------------------------------------
    def encode(self, stack: np.ndarray) -> bytes:
        raise NotImplementedError(f"{self.name} has no in-memory codec")

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no in-memory codec")

    def decode_into(self, blob: bytes, out: np.ndarray) -> None:
        """Decode into `out`, a C-contiguous stack of the original shape and dtype (only
        where `decodes_into`)."""
        raise NotImplementedError(f"{self.name} decodes into a new array only")

    def write(self, path: Path, stack: np.ndarray) -> int:
        """Write the stack to `path` (atomically); return the bytes stored on disk."""
        raise NotImplementedError

    def read(self, path: Path) -> np.ndarray:
        """Read the whole stack back as (frames, y, x) with the original dtype."""
        raise NotImplementedError

    def check_data(self, stack: np.ndarray) -> str | None:
        """None when this format stores `stack` losslessly, else the reason it cannot
        (e.g. values > 15 for 4-bit packing). The runner records such cases as lossy.

        The base rule: a (frames, y, x) stack of one of `lossless_dtypes`."""
        if stack.ndim != 3:
            return f"{self.name} stores (frames, y, x) stacks; got {stack.ndim} dimension(s)"
        if self.lossless_dtypes is not None and stack.dtype.name not in self.lossless_dtypes:
            return (f"{self.name} cannot store {stack.dtype.name} losslessly; "
                    f"supported: {', '.join(self.lossless_dtypes)}")
        return None

    def require_data(self, stack: np.ndarray) -> np.ndarray:
        """Raise FormatError instead of writing a file that would not round-trip."""
        reason = self.check_data(stack)
        if reason:
            raise FormatError(reason)
        return stack


def blosc_label(family: str, config) -> str:
    """Table label of a blosc-based contender: 'mrcz zstd-1', 'blosc2 lz4-5 shuffle bs256K'."""
    text = f"{family} {config.codec}-{config.level}"
    if config.filter != "bitshuffle":
        text += f" {config.filter}"
    if config.blocksize:
        text += f" bs{config.blocksize // 1024}K"
    return text
