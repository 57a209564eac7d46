"""Metadata in the MRC extended header: JSON under exttyp b'json' (python-mrcz's) or msgpack
under exttyp b'mpk ' (ours; python-mrcz skips it and still reads the pixels)."""
from __future__ import annotations

import json
from typing import Any

from mrczbench.errors import MRCZError


def _json_default(value: Any) -> Any:
    # As python-mrcz: numpy scalars and arrays become lists/numbers.
    if hasattr(value, "__array_interface__"):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in JSON metadata")


def encode_meta(path, meta, meta_format) -> bytes:
    """The extended header bytes for `meta` (b'' for None)."""
    if meta is None:
        return b""
    try:
        if meta_format == "json":
            # Same serializer settings as python-mrcz with the standard json module.
            return json.dumps(meta, default=_json_default).encode("utf-8")
        import msgpack
        return msgpack.packb(meta, default=_json_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MRCZError(f"{path}: metadata cannot be stored as {meta_format}: {exc}") from None


def decode_meta(path, blob: bytes, meta_format: str) -> dict:
    """The metadata dict of an extended header; MRCZError naming `path` if it is corrupt."""
    try:
        if meta_format == "json":
            meta = json.loads(blob.decode("utf-8"))
        else:
            import msgpack
            meta = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except Exception as exc:  # any decoder failure means corrupt metadata
        raise MRCZError(f"{path}: corrupt {meta_format} metadata in the extended header: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(meta, dict):
        raise MRCZError(f"{path}: {meta_format} metadata must be an object/map, "
                        f"found {type(meta).__name__}")
    return meta
