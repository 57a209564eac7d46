"""`mrczbench formats list [--json]`: the contenders of the registry (mrczbench.formats)."""
from __future__ import annotations

import json

from mrczbench import formats


def add_commands(subparsers) -> None:
    """`mrczbench formats list [--json]`."""
    parser = subparsers.add_parser(
        "formats", help="the comparison formats (contenders)",
        description="The comparison formats: parameters, defaults, valid values and whether "
                    "each runs on this machine.")
    commands = parser.add_subparsers(dest="formats_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser(
        "list", help="list every contender with its parameters and availability")
    listing.add_argument("--json", action="store_true",
                         help="machine-readable output (one JSON array)")
    listing.set_defaults(func=_list_command)


def _list_command(args) -> int:
    described = formats.describe_formats()
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for info in described:
        status = ("available" if info["available"]
                  else f"UNAVAILABLE: {info['unavailable_reason']}")
        print(f"{info['name']:<10} {status}")
        print(f"    {info['description']}")
        if info.get("label"):
            print(f"    label: {info['label']}    suffix: {info.get('suffix', '')}    "
                  f"in-memory codec: {'yes' if info.get('memory_codec') else 'no'}    "
                  f"dtypes: {_dtypes_text(info.get('dtypes'))}")
        for pname, spec in info["parameters"].items():
            default = json.dumps(spec["default"])
            print(f"    {pname:<13}= {default:<15} {spec['valid']}")
        if info.get("threads"):
            print(f"    {'':<13}  threads: {info['threads']}")
    return 0


def _dtypes_text(dtypes) -> str:
    return ", ".join(dtypes) if isinstance(dtypes, list) else str(dtypes)
