"""Registry of comparison formats.

Built-in contenders are listed in BUILTIN; third-party ones register through the
`mrczbench.formats` entry-point group (value: "package.module:FormatClass"), e.g. in a
plugin's pyproject.toml:

    [project.entry-points."mrczbench.formats"]
    myfacility = "myfacility.codec:MyFormat"

A built-in name wins over a plugin of the same name.
"""
from __future__ import annotations

import functools
import importlib
import json
import sys
from importlib.metadata import entry_points
from typing import Any

from mrczbench.errors import FormatError
from mrczbench.formats.base import Format, FormatConfig

__all__ = ["Format", "FormatConfig", "get_format", "format_class", "format_names", "framed_formats",
           "format_from_dict", "format_from_json", "describe_formats"]

# name -> "module:Class"; imported lazily so one missing optional library breaks one format only
BUILTIN: dict[str, str] = {
    "mrc": "mrczbench.formats.mrc:MrcFormat",
    "mrcz": "mrczbench.formats.mrc:MrczFormat",
    "mrc-uint4": "mrczbench.formats.mrc:MrcUint4Format",
    "tiff": "mrczbench.formats.tiff:TiffFormat",
    "bzip2": "mrczbench.formats.bzip2:Bzip2Format",
    "lbzip2": "mrczbench.formats.tools:Lbzip2Format",
    "pigz": "mrczbench.formats.tools:PigzFormat",
    "xz": "mrczbench.formats.tools:XzFormat",
    "pxz": "mrczbench.formats.tools:PxzFormat",
    "zstd-cli": "mrczbench.formats.tools:ZstdCliFormat",
    "lz4-cli": "mrczbench.formats.tools:Lz4CliFormat",
    "zstd": "mrczbench.formats.streams:ZstdFormat",
    "lz4": "mrczbench.formats.streams:Lz4Format",
    "jpeg2000": "mrczbench.formats.tiff:Jpeg2000Format",
    "jpegxl": "mrczbench.formats.tiff:JpegXLFormat",
    "hdf5": "mrczbench.formats.hdf5:Hdf5Format",
    "blosc2": "mrczbench.formats.blosc2frames:Blosc2Format",
    "pcodec": "mrczbench.formats.pco:PcodecFormat",
    "htj2k": "mrczbench.formats.imagecoders:Htj2kFormat",
    "jpegls": "mrczbench.formats.imagecoders:JpeglsFormat",
    "lerc": "mrczbench.formats.imagecoders:LercFormat",
    "metadata": "mrczbench.formats.metadata:MetadataFormat",
    "gain-counts": "mrczbench.formats.counts:CountsFormat",
}

ENTRY_POINT_GROUP = "mrczbench.formats"


_REGISTRY: dict[tuple[str, ...], list[tuple[str, str]]] = {}  # sys.path -> plugins


def _plugins() -> list[tuple[str, str]]:
    """(name, "module:Class") of the entry points, read once per process: reading the
    installed distributions takes milliseconds, and building one suite's cases asks about a
    thousand times. Plugins are found through sys.path, so a changed sys.path reads again."""
    key = tuple(sys.path)
    found = _REGISTRY.get(key)
    if found is None:
        found = [(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
        _REGISTRY.clear()
        _REGISTRY[key] = found
    return found


def _registry() -> dict[str, str]:
    """Built-ins, then plugins (a built-in name wins)."""
    found = dict(BUILTIN)
    for name, value in _plugins():
        found.setdefault(name, value)
    return found


def format_names() -> list[str]:
    return list(_registry())


def format_class(name: str) -> type[Format]:
    registry = _registry()
    if name not in registry:
        raise FormatError(f"unknown format {name!r}; valid: {', '.join(registry)}")
    module_name, _, class_name = registry[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise FormatError(f"format {name!r} ({registry[name]}) cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Format)):
        raise FormatError(f"format {name!r} ({registry[name]}) is not a mrczbench Format")
    return cls


@functools.cache
def framed_formats() -> dict[str, str]:
    """suffix -> name of every registered format stored in the framed container
    (FramedFormat subclasses); a plugin that does not load here is left out."""
    from mrczbench.formats.framed import FramedFormat
    found = {}
    for name in format_names():
        try:
            cls = format_class(name)
        except FormatError:
            continue
        if issubclass(cls, FramedFormat):
            found[cls.suffix] = name
    return found


def get_format(name: str, **params: Any) -> Format:
    return format_class(name)(**params)


def format_from_dict(data: dict[str, Any]) -> Format:
    """Inverse of Format.to_dict(): {"format": name, **parameters}."""
    params = dict(data)
    if "format" not in params:
        raise FormatError(f"format config needs a 'format' key; got keys {sorted(params)}")
    return get_format(params.pop("format"), **params)


def format_from_json(text: str) -> Format:
    """Inverse of Format.to_json()."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"format config is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FormatError(f"format config must be a JSON object; got {type(data).__name__}")
    return format_from_dict(data)


def describe_formats() -> list[dict[str, Any]]:
    """Every registered contender with its parameters and availability here. A plugin that
    fails to load is listed as unavailable with the reason instead of breaking the list."""
    described = []
    for name, target in _registry().items():
        try:
            info = format_class(name).describe()
            info["name"] = name
        except FormatError as exc:
            info = {"name": name, "description": target, "available": False,
                    "unavailable_reason": str(exc), "parameters": {}}
        info["builtin"] = name in BUILTIN
        if info["available"]:
            info["label"] = get_format(name).label()
        described.append(info)
    return described
