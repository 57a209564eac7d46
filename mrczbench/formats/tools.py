"""Command-line compressors: `lbzip2`, `pigz`, `xz`, `pxz`, `zstd-cli`, `lz4-cli`.

Timed as processes, as the paper did ("command-line utilities and hence include a read and
write"): writing puts a plain MRC file next to the target and runs the tool on it, reading runs
the tool's decompressor into a plain MRC file and reads that. The temporary raw file is
removed afterwards. A tool that is not installed makes `unavailable_reason()` say which one;
calling write/read then raises FormatError (never FileNotFoundError).

Only files: there is no in-memory codec (the process *is* the measurement). The in-process
zstd and lz4 coders, timed in memory, are the separate contenders `zstd` and `lz4`
(mrczbench.formats.streams).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import FormatError
from mrczbench.formats import mrcraw
from mrczbench.formats.base import Format, FormatConfig, integer, param


class ToolFormat(Format):
    """One command-line compressor. Subclasses give the tool, how to install it and the
    arguments for compressing and decompressing a file to stdout."""

    tool: ClassVar[str] = ""
    decompress_tool: ClassVar[str] = ""  # when another program decompresses (pxz -> xz)
    install_hint: ClassVar[str] = ""  # how to get the tool, for the unavailable reason
    lossless_dtypes = tuple(mrcraw.MODES)

    def compress_args(self) -> list[str]:
        raise NotImplementedError

    def decompress_args(self) -> list[str]:
        raise NotImplementedError

    @classmethod
    def unavailable_reason(cls) -> str | None:
        missing = [t for t in dict.fromkeys([cls.tool, cls.decompress_tool or cls.tool])
                   if shutil.which(t) is None]
        if missing:
            return (f"command-line tool {' and '.join(missing)} not found on PATH "
                    f"({cls.install_hint})")
        return None

    def label(self) -> str:
        return f"{self.name}-{self.config.level}"

    def _run(self, program: str, args: list[str], source: Path, stdout) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise FormatError(f"{self.name}: {reason}")
        done = subprocess.run([program, *args, str(source)], stdout=stdout,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            raise FormatError(f"{program} failed on {source} (exit {done.returncode}): "
                              f"{message[-1] if message else 'no message'}")

    @contextlib.contextmanager
    def _raw_file(self, beside: Path):
        """A temporary plain-MRC path in the target's folder (same filesystem as the result)."""
        fd, name = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=".raw.mrc",
                                    dir=beside.parent)
        os.close(fd)
        try:
            yield Path(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def write(self, path: Path, stack: np.ndarray) -> int:
        self.require_data(stack)
        path = Path(path)
        with self._raw_file(path) as raw:
            with open(raw, "wb") as handle:
                handle.write(mrcraw.header_bytes(stack.shape, stack.dtype))
                for frame in stack:
                    handle.write(mrcraw.data_bytes(frame))
            with atomic_output(path) as out:
                out.flush()
                self._run(self.tool, self.compress_args(), raw, out)
        return path.stat().st_size

    def read(self, path: Path) -> np.ndarray:
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: no such file")
        with self._raw_file(path) as raw:
            with open(raw, "wb") as handle:
                self._run(self.decompress_tool or self.tool, self.decompress_args(), path, handle)
            return mrcraw.read_file(raw)


# One config per tool: `level` is the tool's -N with its own range; `threads` is inherited.
@dataclasses.dataclass(frozen=True)
class Lbzip2Config(FormatConfig):
    level: int = param(9, "integer 1-9 (the paper used 9)", integer(1, 9))


@dataclasses.dataclass(frozen=True)
class PigzConfig(FormatConfig):
    level: int = param(1, "integer 1-9 (the paper used 1)", integer(1, 9))


@dataclasses.dataclass(frozen=True)
class XzConfig(FormatConfig):
    level: int = param(6, "integer 0-9 (xz's default; the paper ran pxz at 6)", integer(0, 9))


@dataclasses.dataclass(frozen=True)
class ZstdCliConfig(FormatConfig):
    level: int = param(3, "integer 1-19 (zstd's default 3; 20-22 need --ultra)", integer(1, 19))


@dataclasses.dataclass(frozen=True)
class Lz4CliConfig(FormatConfig):
    level: int = param(1, "integer 1-12 (lz4's default 1; 3-12 are lz4hc)", integer(1, 12))


class Lbzip2Format(ToolFormat):
    name = "lbzip2"
    description = "lbzip2 (parallel bzip2) command line on a plain MRC file"
    suffix = ".mrc.bz2"
    native_readers = ("relion", "cryosparc")  # .mrc.bz2 movies
    sweep_contenders = {"lbzip2-9": {"level": 9}}
    tool = "lbzip2"
    install_hint = "Debian package lbzip2"
    Config = Lbzip2Config
    threads_note = "lbzip2 -n (compress and decompress)"

    def compress_args(self) -> list[str]:
        return [f"-{self.config.level}", "-n", str(self.config.threads), "-c"]

    def decompress_args(self) -> list[str]:
        return ["-d", "-n", str(self.config.threads), "-c"]


class PigzFormat(ToolFormat):
    name = "pigz"
    description = "pigz (parallel gzip) command line on a plain MRC file"
    suffix = ".mrc.gz"
    tool = "pigz"
    install_hint = "Debian package pigz"
    Config = PigzConfig
    threads_note = "pigz -p (compression; gzip decompression is serial, pigz adds I/O threads)"

    def compress_args(self) -> list[str]:
        return [f"-{self.config.level}", "-p", str(self.config.threads), "-c"]

    def decompress_args(self) -> list[str]:
        return ["-d", "-p", str(self.config.threads), "-c"]


class XzFormat(ToolFormat):
    name = "xz"
    description = "xz (LZMA2) command line on a plain MRC file; -T threads as pxz did"
    suffix = ".mrc.xz"
    tool = "xz"
    install_hint = "Debian package xz-utils"
    Config = XzConfig
    threads_note = ("xz -T (compress; threads > 1 switch to block mode, which changes the "
                    "output; decompress needs a multi-block file to use them)")

    def compress_args(self) -> list[str]:
        return [f"-{self.config.level}", f"-T{self.config.threads}", "-c"]

    def decompress_args(self) -> list[str]:
        return ["-d", f"-T{self.config.threads}", "-c"]


class PxzFormat(XzFormat):
    name = "pxz"
    description = "pxz (parallel LZMA, the paper's tool) on a plain MRC file; xz decompresses"
    tool = "pxz"
    decompress_tool = "xz"
    install_hint = ("pxz is not packaged in Debian 12; the xz contender with threads > 1 "
                    "is its successor (xz -T)")
    threads_note = "pxz -T (compression); xz -T decompresses"


class ZstdCliFormat(ToolFormat):
    name = "zstd-cli"
    description = "zstd command line on a plain MRC file"
    suffix = ".mrc.zst"
    tool = "zstd"
    install_hint = "Debian package zstd"
    Config = ZstdCliConfig
    threads_note = "zstd -T (compression; zstd decompression is single-threaded)"

    def compress_args(self) -> list[str]:
        return [f"-{self.config.level}", f"-T{self.config.threads}", "-q", "-c"]

    def decompress_args(self) -> list[str]:
        return ["-d", "-q", "-c"]


class Lz4CliFormat(ToolFormat):
    name = "lz4-cli"
    description = "lz4 command line on a plain MRC file"
    suffix = ".mrc.lz4"
    tool = "lz4"
    install_hint = "Debian package lz4"
    Config = Lz4CliConfig
    threads_note = "ignored: the lz4 CLI before 1.10 is single-threaded"

    def compress_args(self) -> list[str]:
        return [f"-{self.config.level}", "-q", "-c"]

    def decompress_args(self) -> list[str]:
        return ["-d", "-q", "-c"]
