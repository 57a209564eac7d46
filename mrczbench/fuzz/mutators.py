"""Mutations of a valid seed: each returns (mutation name, new bytes, touches unchecked payload).

Binary seeds: truncate at each region boundary (and one byte either side), flip or overwrite
a byte inside one region, write an absurd value into one size field, or compress the whole
file (gzip/bzip2: a reader must say so, not misread it). Text seeds also lose, duplicate or
swap lines, get a nasty line inserted, and have a number replaced by an absurd one.
The choice depends only on the random generator, so a seed and a number reproduce an input.
"""
from __future__ import annotations

import bz2
import gzip
import random
import re
import struct

from mrczbench.fuzz.seeds import Seed

ABSURD_INTS = (0, 1, -1, 2**7, 2**15 - 1, 2**16 - 1, 2**30, 2**31 - 1, -2**31, 2**32 - 1,
               2**62, 2**63 - 1, 16384, 65535 * 65535)
ABSURD_NUMBERS = ("0", "-1", "1e309", "nan", "-0", "99999999999999999999", "2147483648",
                  "65535", "1e-300", "0x7fffffff", "3.5")
NASTY_LINES = ("it's.mrc", "\"unclosed.mrc", "a" * 300 + ".mrc", "movies.lst", "movies.star",
               "/dev/zero", "missing.mrc", "loop_", "_rlnMicrographMovieName #1", "data_",
               "[quick]", "x = ", "x = 1\nx = 2", "\x00\x00", "\ufeff", "{}", "[]", "null",
               "{\"schema\": 1}", "{\"schema\": 99, \"op\": 5}", "[dataset]\nframes = -1",
               "frames = 1e309", "shape = [0, 0]", "threads = \"many\"", "\\", "#" * 500)


def mutate(seed: Seed, rng: random.Random) -> tuple[str, bytes, bool]:
    """One mutation of `seed` chosen by `rng`: (name, bytes, payload_only)."""
    choices = [_truncate, _flip, _flip, _absurd, _compress] if not seed.text else \
        [_truncate_lines, _drop_line, _duplicate_line, _swap_lines, _insert_line,
         _absurd_number, _flip, _truncate]
    if not seed.fields and _absurd in choices:
        choices.remove(_absurd)
    return rng.choice(choices)(seed, rng)


def _boundaries(seed: Seed) -> list[tuple[str, int]]:
    points = {0: "start", len(seed.data): "end"}
    for region in seed.regions:
        points.setdefault(region.start, f"{region.kind}-start")
        points.setdefault(region.end, f"{region.kind}-end")
    return [(name, at) for at, name in sorted(points.items())]


def _truncate(seed: Seed, rng: random.Random):
    if seed.regions and rng.random() < 0.8:
        name, at = rng.choice(_boundaries(seed))
        delta = rng.choice((-1, 0, 0, 1))
        at = min(max(at + delta, 0), len(seed.data) - 1)
        return f"truncate@{name}{delta:+d}({at})", seed.data[:at], False
    at = rng.randrange(len(seed.data))
    return f"truncate@{at}", seed.data[:at], False


def _flip(seed: Seed, rng: random.Random):
    regions = [r for r in seed.regions if r.end > r.start]
    if regions:
        region = rng.choice(regions)
        at = rng.randrange(region.start, min(region.end, len(seed.data)))
        kind, unchecked = region.kind, region.unchecked
    else:
        at, kind, unchecked = rng.randrange(len(seed.data)), "byte", False
    data = bytearray(seed.data)
    if rng.random() < 0.5:
        data[at] ^= 1 << rng.randrange(8)
        how = "flip"
    else:
        data[at] = rng.choice((0, 1, 2, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        how = "set"
    return f"{how}-{kind}@{at}", bytes(data), unchecked


def _absurd(seed: Seed, rng: random.Random):
    field = rng.choice(seed.fields)
    size = struct.calcsize(field.fmt)
    bits = size * 8
    signed = field.fmt[-1].islower()
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    original = struct.unpack_from(field.fmt, seed.data, field.offset)[0]
    values = [v for v in ABSURD_INTS if low <= v <= high]
    values += [v for v in (original + 1, original - 1, original * 2, original * 1000, high, low)
               if low <= v <= high]
    value = rng.choice(values)
    data = bytearray(seed.data)
    struct.pack_into(field.fmt, data, field.offset, value)
    return f"absurd-{field.name}={value}", bytes(data), field.pointer


def _compress(seed: Seed, rng: random.Random):
    if rng.random() < 0.5:
        return "gzip-whole-file", gzip.compress(seed.data, mtime=0), False
    return "bzip2-whole-file", bz2.compress(seed.data), False


def _lines(seed: Seed) -> list[bytes]:
    return seed.data.splitlines(keepends=True)


def _truncate_lines(seed: Seed, rng: random.Random):
    lines = _lines(seed)
    keep = rng.randrange(len(lines))
    return f"truncate-line@{keep}", b"".join(lines[:keep]), False


def _drop_line(seed: Seed, rng: random.Random):
    lines = _lines(seed)
    at = rng.randrange(len(lines))
    return f"drop-line@{at}", b"".join(lines[:at] + lines[at + 1:]), False


def _duplicate_line(seed: Seed, rng: random.Random):
    lines = _lines(seed)
    at = rng.randrange(len(lines))
    return f"duplicate-line@{at}", b"".join(lines[:at + 1] + lines[at:]), False


def _swap_lines(seed: Seed, rng: random.Random):
    lines = _lines(seed)
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return f"swap-lines@{min(a, b)},{max(a, b)}", b"".join(lines), False


def _insert_line(seed: Seed, rng: random.Random):
    lines = _lines(seed)
    at = rng.randrange(len(lines) + 1)
    number = rng.randrange(len(NASTY_LINES))
    new = NASTY_LINES[number].encode("utf-8") + b"\n"
    return f"insert-line{number}@{at}", b"".join(lines[:at] + [new] + lines[at:]), False


_NUMBER = re.compile(rb"(?<![\w.])-?\d+(\.\d+)?(?![\w.])")


def _absurd_number(seed: Seed, rng: random.Random):
    matches = list(_NUMBER.finditer(seed.data))
    if not matches:
        return _insert_line(seed, rng)
    match = rng.choice(matches)
    value = rng.choice(ABSURD_NUMBERS).encode()
    data = seed.data[:match.start()] + value + seed.data[match.end():]
    return f"absurd-number@{match.start()}={value.decode()}", data, False
