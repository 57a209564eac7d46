"""The conversion manifest in --out: one JSON line per movie, appended (and fsync'd) as each
movie finishes, so a killed batch loses nothing that was recorded; a TSV copy for
spreadsheets is written when the batch ends. Each shard writes its own part
(`manifest.part-I-of-N.jsonl`); readers merge every part, the newest record of an output wins
(a resumed batch appends)."""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from mrczbench.atomic import atomic_output
from mrczbench.errors import MrczbenchError

FIELDS = ("input", "output", "status", "error", "frames", "ny", "nx", "dtype", "input_bytes",
          "raw_bytes", "output_bytes", "ratio", "seconds", "mib_per_s", "checksum", "format",
          "config", "gain", "lossless", "shard", "host", "timestamp")
PATTERN = "manifest*.jsonl"


def part_name(shard: tuple[int, int] | None) -> str:
    return "manifest.jsonl" if shard is None else f"manifest.part-{shard[0]}-of-{shard[1]}.jsonl"


@contextlib.contextmanager
def writer(folder: Path, shard: tuple[int, int] | None) -> Iterator:
    """An append function for this batch's part; a second batch writing the same part at the
    same time is refused (advisory lock)."""
    path = folder / part_name(shard)
    with open(path, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MrczbenchError(f"{path}: another conversion is writing this manifest; wait for it "
                                 f"or use another --out/--shard") from None

        def append(record: dict) -> None:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

        yield append


def records(source: Path) -> list[dict]:
    """Every record of a manifest file, or of all parts in a folder; the newest per output."""
    files = sorted(source.glob(PATTERN)) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise MrczbenchError(f"{source}: no conversion manifest ({PATTERN}) found")
    latest: dict[str, dict] = {}
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise MrczbenchError(f"{path}: cannot read the manifest: {exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # cut off by a kill: the movie was not recorded
                    print(f"mrczbench: warning: {path}: last line cut off, ignored", file=sys.stderr)
                    continue
                raise MrczbenchError(f"{path}:{number}: not a manifest line") from None
            if not isinstance(record, dict) or "output" not in record:
                raise MrczbenchError(f"{path}:{number}: not a manifest line")
            latest[record["output"]] = record
    return list(latest.values())


def write_table(folder: Path, shard: tuple[int, int] | None, rows: list[dict]) -> Path:
    """The TSV copy of a part (every field, one row per movie)."""
    path = folder / part_name(shard).replace(".jsonl", ".tsv")
    text = io.StringIO()
    table = csv.DictWriter(text, FIELDS, delimiter="\t", extrasaction="ignore", lineterminator="\n")
    table.writeheader()
    for row in rows:
        table.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    with atomic_output(path) as handle:
        handle.write(text.getvalue().encode())
    return path
