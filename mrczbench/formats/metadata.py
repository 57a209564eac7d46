"""Acquisition metadata (paper Fig. 3): a JSON-like document serialised with json, orjson or
msgpack, optionally compressed with blosc (lz4, zstd, ...). An ordinary contender: its data is
the document of a `kind = "metadata"` dataset (see `make_document`), not an image stack.

Ratios are stored / plain compact JSON (the json serialiser's own output), so json's is 1."""
from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any, Callable

from mrczbench.atomic import atomic_output
from mrczbench.errors import FormatError
from mrczbench.formats.base import Format, FormatConfig, integer, one_of, param

SERIALIZERS = ("json", "orjson", "msgpack")
COMPRESSORS = ("none", "lz4", "zstd", "zlib", "blosclz", "lz4hc")


@dataclasses.dataclass(frozen=True)
class MetadataConfig(FormatConfig):
    serializer: str = param("json", " | ".join(SERIALIZERS), one_of(*SERIALIZERS))
    compressor: str = param("none", " | ".join(COMPRESSORS) + " (blosc, typesize 1, no shuffle)",
                            one_of(*COMPRESSORS))
    level: int = param(1, "integer 1-9 (blosc clevel; ignored without a compressor)",
                       integer(1, 9))


def dumps_json(document: Any) -> bytes:
    """Plain compact JSON: the reference size of a metadata document."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _serializer(name: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    if name == "orjson":
        import orjson
        return orjson.dumps, orjson.loads
    if name == "msgpack":
        import msgpack
        # unicode strings in and out (use_bin_type/raw=False), as the paper tested it
        return (lambda obj: msgpack.packb(obj, use_bin_type=True),
                lambda blob: msgpack.unpackb(blob, raw=False))
    return dumps_json, json.loads


class MetadataFormat(Format):
    name = "metadata"
    description = "JSON-like metadata via json / orjson / msgpack, optionally blosc-compressed"
    suffix = ".meta"
    Config = MetadataConfig
    has_memory_codec = True
    threads_note = "blosc nthreads (compressor only)"

    def config_unavailable_reason(self) -> str | None:
        """json needs nothing; orjson, msgpack and the blosc compressors need their library
        (without orjson, the json and msgpack cases still run)."""
        from mrczbench.extras import missing_reason
        needed = [self.config.serializer] if self.config.serializer != "json" else []
        if self.config.compressor != "none":
            needed.append("blosc")
        return missing_reason(*needed)

    def row_columns(self) -> dict[str, Any]:
        compressed = self.config.compressor != "none"
        return {"codec": self.config.compressor if compressed else None,
                "level": self.config.level if compressed else None, "blocksize": None,
                "filter": None, "threads": self.config.threads}

    def label(self) -> str:
        compressor = self.config.compressor
        return self.config.serializer + ("" if compressor == "none" else f"+{compressor}")

    def check_data(self, document: Any) -> str | None:
        if not isinstance(document, (list, dict)):
            return f"metadata stores JSON-like documents (list or dict); got {type(document).__name__}"
        return None

    def encode(self, document: Any) -> bytes:
        dumps, _ = _serializer(self.config.serializer)
        raw = dumps(document)
        if self.config.compressor == "none":
            return raw
        import blosc
        if self.config.compressor not in blosc.compressor_list():
            raise FormatError(f"blosc has no {self.config.compressor} "
                              f"(has {', '.join(blosc.compressor_list())})")
        blosc.set_nthreads(self.config.threads)
        # text has no multi-byte structure to shuffle: typesize 1, no shuffle
        return blosc.compress(raw, typesize=1, clevel=self.config.level, shuffle=blosc.NOSHUFFLE,
                              cname=self.config.compressor)

    def decode(self, blob: bytes, shape: Any = None, dtype: Any = None) -> Any:
        _, loads = _serializer(self.config.serializer)
        if self.config.compressor != "none":
            import blosc
            blosc.set_nthreads(self.config.threads)
            blob = blosc.decompress(blob)
        return loads(blob)

    def write(self, path: Path, document: Any) -> int:
        blob = self.encode(document)
        with atomic_output(path) as handle:
            handle.write(blob)
        return len(blob)

    def read(self, path: Path) -> Any:
        return self.decode(Path(path).read_bytes())


def make_document(megabytes: float, seed: int = 0) -> list[dict[str, Any]]:
    """Seeded JSON-like acquisition metadata of about `megabytes` MiB as compact JSON: per-frame
    records with nested tables, floats, strings and lists (what movie headers carry)."""
    rng = random.Random(seed)
    words = ["counting", "super-resolution", "gain", "defect", "apoferritin", "holey", "carbon",
             "tilt", "drift", "stage", "beam", "shift", "astigmatism", "ice", "thin", "grid"]
    target = int(megabytes * 2**20)
    records: list[dict[str, Any]] = []
    size = 2
    frame = 0
    while size < target:
        record = {
            "frame": frame,
            "timestamp": f"2017-03-{1 + frame % 28:02d}T{frame % 24:02d}:{frame % 60:02d}:{(frame * 7) % 60:02d}.{rng.randrange(10**6):06d}Z",
            "dose_e_per_A2": round(rng.uniform(0.5, 2.0), 6),
            "stage": {"x": rng.uniform(-1e-3, 1e-3), "y": rng.uniform(-1e-3, 1e-3),
                      "z": rng.uniform(-1e-5, 1e-5), "alpha": round(rng.uniform(-60, 60), 3)},
            "optics": {"voltage_kV": 300, "cs_mm": 2.7, "defocus_um": round(rng.uniform(-3.0, -0.5), 4),
                       "astigmatism": [rng.gauss(0, 50), rng.gauss(0, 50)], "spot_size": rng.randrange(1, 11)},
            "drift_px": [[round(rng.gauss(0, 1), 4), round(rng.gauss(0, 1), 4)] for _ in range(8)],
            "detector": {"model": rng.choice(["K2", "K3", "Falcon4"]), "mode": rng.choice(words[:2]),
                         "exposure_s": round(rng.uniform(0.02, 0.2), 5), "hot_pixels": rng.sample(range(4096), 6)},
            "notes": " ".join(rng.choice(words) for _ in range(rng.randrange(4, 16))),
            "ok": rng.random() > 0.01,
            "tags": [rng.choice(words) for _ in range(3)],
            "previous": None,
        }
        records.append(record)
        size += len(json.dumps(record, separators=(",", ":"))) + 1
        frame += 1
    return records
