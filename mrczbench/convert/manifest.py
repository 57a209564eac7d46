"""The conversion manifest in --out: one JSON line per movie, appended (and fsync'd) as each
movie finishes, so a killed batch loses nothing that was recorded; a TSV copy for
spreadsheets is written when the batch ends. Each shard writes its own part
(`manifest.part-I-of-N.jsonl`); readers merge every part, the newest record of an output wins
(a resumed batch appends).

Before its first movie, a batch records every movie it will convert as `planned`: a batch
killed part-way, or a manifest cut short, still names the movies that have no output, so
`verify` can never vouch for a batch it cannot see whole."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator

from mrczbench.atomic import atomic_output
from mrczbench.errors import MrczbenchError
from mrczbench.jsonl import CUT_OFF, AppendLog, BadLine, Locked, parse_lines
from mrczbench.spreadsheet import safe_cell

FIELDS = ("input", "output", "status", "error", "frames", "ny", "nx", "dtype", "input_bytes",
          "raw_bytes", "output_bytes", "ratio", "seconds", "mib_per_s", "checksum", "format",
          "config", "gain", "lossless", "adopted", "source_deleted", "source_deleted_at", "shard", "host",
          "timestamp")
PATTERN = "manifest*.jsonl"


def part_name(shard: tuple[int, int] | None) -> str:
    return "manifest.jsonl" if shard is None else f"manifest.part-{shard[0]}-of-{shard[1]}.jsonl"


@contextlib.contextmanager
def writer(folder: Path, shard: tuple[int, int] | None) -> Iterator:
    """An append function for this batch's part (mrczbench.jsonl: fsync'd per record, a line
    cut off by a killed batch is cut before appending); a second batch writing the same part
    at the same time is refused (advisory lock)."""
    path = folder / part_name(shard)
    try:
        log = AppendLog(path, dumps=lambda record: json.dumps(record, sort_keys=True),
                        exclusive=True)
    except Locked:
        raise MrczbenchError(f"{path}: another conversion is writing this manifest; wait for it "
                             f"or use another --out/--shard") from None
    with log:
        yield lambda *records: log.append(records)  # several records: one write, one fsync


def shard_of(path: Path) -> tuple[int, int] | None:
    """(I, N) of a part named manifest.part-I-of-N.jsonl, else None."""
    import re
    match = re.fullmatch(r"manifest\.part-(\d+)-of-(\d+)\.jsonl", path.name)
    return (int(match[1]), int(match[2])) if match else None


def records(source: Path) -> list[dict]:
    """Every record of a manifest file, or of all parts in a folder; the newest per output."""
    files = sorted(source.glob(PATTERN)) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise MrczbenchError(f"{source}: no conversion manifest ({PATTERN}) found")
    latest: dict[str, dict] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MrczbenchError(f"{path}: cannot read the manifest: {exc}") from None
        try:
            for number, record in parse_lines(text):
                if record is CUT_OFF:  # cut off by a kill: the movie was not recorded
                    print(f"mrczbench: warning: {path}: last line cut off, ignored", file=sys.stderr)
                    continue
                if not isinstance(record, dict) or "output" not in record:
                    raise MrczbenchError(f"{path}:{number}: not a manifest line")
                latest[record["output"]] = record
        except BadLine as exc:
            raise MrczbenchError(f"{path}:{exc.number}: not a manifest line") from None
    return list(latest.values())


def write_table(folder: Path, shard: tuple[int, int] | None, rows: list[dict]) -> Path:
    """The TSV copy of a part (every field, one row per movie)."""
    path = folder / part_name(shard).replace(".jsonl", ".tsv")
    text = io.StringIO()
    table = csv.DictWriter(text, FIELDS, delimiter="\t", extrasaction="ignore", lineterminator="\n")
    table.writeheader()
    for row in rows:
        table.writerow({k: safe_cell(json.dumps(v) if isinstance(v, (dict, list)) else v)
                        for k, v in row.items()})
    with atomic_output(path) as handle:
        handle.write(text.getvalue().encode())
    return path
