"""Outputs found under --out with no manifest row: a conversion killed between renaming its
output into place and appending the manifest line. Such an output is adopted (recorded as
done, `"adopted": true`) when its decoded frames match the input's frame for frame; otherwise
it is refused as before, since a file this tool may not have written is never overwritten."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from mrczbench.convert.inputs import Task
from mrczbench.convert.job import GAIN_REFERENCE, Settings, checksum_of, frame_digests, frame_sha256
from mrczbench.errors import MrczbenchError


def input_digests(path: str, eer_grouping: int) -> tuple[object, list[bytes]]:
    """The opened movie and the SHA-256 of each of its frames (what `convert_one` records)."""
    from mrczbench.movies.readers import open_movie
    movie = open_movie(path, eer_grouping=eer_grouping)
    return movie, [frame_sha256(f) for f in movie.iter_frames()]


def adopt(task: Task, settings: Settings) -> dict:
    """The manifest record of an existing output with no row: done when it verifies against
    its input, else failed (and the file left alone)."""
    started = time.perf_counter()
    target = Path(settings.out) / task.relative
    record = {"input": task.input, "output": task.relative, "status": "failed", "error": None,
              "format": settings.format, "config": settings.config, "shard": settings.shard,
              "host": socket.gethostname(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    refused = (f"{target} exists and is not in this folder's manifest, and its content differs "
               f"from the input (not written by mrczbench convert?): remove it or use another --out")
    try:
        movie, digests = input_digests(task.input, settings.eer_grouping)
        frames, ny, nx = movie.shape
        record.update(frames=frames, ny=ny, nx=nx, dtype=movie.dtype.name,
                      input_bytes=os.path.getsize(task.input), raw_bytes=movie.nbytes)
        reference = None
        if settings.gain and settings.format == "tiff":  # TIFF counts: page x gain-reference.mrc
            reference = Path(settings.out) / GAIN_REFERENCE
            record["gain_reference"] = GAIN_REFERENCE
        try:
            decoded = frame_digests(target, settings.format, reference)
        except (MrczbenchError, OSError, ValueError):
            decoded = None
        if decoded != digests:
            record["error"] = refused
            return record
        output_bytes = target.stat().st_size
        record.update(status="done", checksum=checksum_of(digests), output_bytes=output_bytes,
                      ratio=output_bytes / movie.nbytes if movie.nbytes else None, lossless=True,
                      adopted=True, seconds=time.perf_counter() - started)
    except (MrczbenchError, OSError) as exc:
        message = str(exc) if isinstance(exc, MrczbenchError) else f"{exc.strerror or exc}: {exc.filename or task.input}"
        record["error"] = " ".join(message.split())[:500]
    return record
