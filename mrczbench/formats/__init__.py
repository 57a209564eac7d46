"""Registry of comparison formats.

Built-in contenders are listed in BUILTIN; third-party ones register through the
`mrczbench.formats` entry-point group (value: "package.module:FormatClass").
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from mrczbench.errors import FormatError
from mrczbench.formats.base import Format, FormatConfig

__all__ = ["Format", "FormatConfig", "get_format", "format_class", "format_names"]

# name -> "module:Class"; imported lazily so one missing optional library breaks one format only
BUILTIN: dict[str, str] = {}

ENTRY_POINT_GROUP = "mrczbench.formats"


def _registry() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def format_names() -> list[str]:
    return list(_registry())


def format_class(name: str) -> type[Format]:
    registry = _registry()
    if name not in registry:
        raise FormatError(f"unknown format {name!r}; valid: {', '.join(registry)}")
    module_name, _, class_name = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_format(name: str, **params: Any) -> Format:
    return format_class(name)(**params)


def add_commands(subparsers) -> None:
    """`mrczbench formats list [--json]` (filled in by the formats issue)."""
