"""Per-frame SHA-256 checksums in MRCZ metadata (write(checksum=True), read(verify=True)):
MRCZ's blosc1 chunks carry no payload checksum, so a flipped bit can decode to wrong pixels;
these digests, under a metadata key python-mrcz ignores, catch it."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import numpy as np

from mrczbench.errors import MRCZError
from mrczbench.mrc.extended import encode_meta

CHECKSUM_KEY = "frame_sha256"  # metadata key of the per-frame checksums (write(checksum=True))


class CountedFrames:
    """A stream of frames that says how many it holds, so write(checksum=True) can stream."""

    def __init__(self, frames, count: int):
        self.frames, self.count = frames, int(count)

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter(self.frames)


def frame_count(path, data) -> int:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape) in (2, 3):
        return 1 if len(shape) == 2 else int(shape[0])
    try:
        return len(data)
    except TypeError:
        raise MRCZError(f"{path}: checksum=True needs the number of frames up front: pass an "
                        f"array or a sequence of frames") from None


def without_checksums(meta: dict | None) -> dict | None:
    """Stored checksums describe one file's frames: they are never copied into another."""
    if meta and CHECKSUM_KEY in meta:
        return {k: v for k, v in meta.items() if k != CHECKSUM_KEY} or None
    return meta


class Checksums:
    """write(checksum=True): the extended header precedes the pixels, so it is first written
    with placeholder digests of the final length, then overwritten once every frame is in."""

    def __init__(self, path: Path, meta: dict | None, data):
        self.path, self.count, self.digests = path, frame_count(path, data), []
        self.placeholder_meta = {**(without_checksums(meta) or {}), CHECKSUM_KEY: ["0" * 64] * self.count}

    def hashed(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            self.digests.append(frame_digest(frame))
            yield frame

    def final_extended(self, meta_format: str) -> bytes:
        if len(self.digests) != self.count:
            raise MRCZError(f"{self.path}: checksum=True: {self.count} frames announced, "
                            f"{len(self.digests)} written")
        return encode_meta(self.path, {**self.placeholder_meta, CHECKSUM_KEY: self.digests}, meta_format)


def frame_digest(frame: np.ndarray) -> str:
    """SHA-256 (hex) of a frame's pixels as stored and as read back (little-endian, C order)."""
    frame = np.ascontiguousarray(frame)
    if frame.dtype.byteorder == ">":
        frame = frame.astype(frame.dtype.newbyteorder("<"))
    return hashlib.sha256(memoryview(frame.reshape(-1).view(np.uint8))).hexdigest()


def verified(path: Path, header, indices: list[int], frames) -> Iterator[np.ndarray]:
    """Frames checked against the stored per-frame checksums (MRCZError on a mismatch)."""
    stored = (header.meta or {}).get(CHECKSUM_KEY)
    if not isinstance(stored, list) or len(stored) != header.shape[0]:
        raise MRCZError(f"{path}: no per-frame checksums to verify (written without checksum=True)")
    for index, frame in zip(indices, frames):
        if frame_digest(frame) != stored[index]:
            raise MRCZError(f"{path}: frame {index} does not match its stored SHA-256: the file "
                            f"is corrupt")
        yield frame
