"""`mrczbench suites list|show`: the benchmark suites (mrczbench.bench.suites)."""
from __future__ import annotations

import json

from mrczbench.bench import suites
from mrczbench.errors import SuiteError
from mrczbench.tomlfiles import named_sources
from mrczbench.units import format_table


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser("suites", help="list and show benchmark suites",
                                   description="Benchmark suites: the package's own, overridden by "
                                               "$MRCZBENCH_SUITES folders and ~/.config/mrczbench/suites "
                                               "($XDG_CONFIG_HOME).")
    sub = parser.add_subparsers(dest="suites_command", metavar="SUBCOMMAND", required=True)
    list_parser = sub.add_parser("list", help="list suites with case counts")
    list_parser.add_argument("--json", action="store_true", help="machine-readable output")
    list_parser.set_defaults(func=_cmd_list)
    show = sub.add_parser("show", help="show a suite's settings and cases")
    show.add_argument("name", help="suite name or path to a .toml file")
    show.add_argument("--quick", action="store_true", help="show the --quick profile")
    show.add_argument("--profile", choices=suites.PROFILES, help="show this profile (full, quick, reference)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_cmd_show)


def _cmd_list(args) -> int:
    rows = []
    for name, (path, source) in named_sources(suites.suite_places(), SuiteError, "suites", suites.SUITES_VAR).items():
        full = suites.load_suite(path)
        quick = suites.load_suite(path, quick=True)
        rows.append({"name": name, "cases": len(full.cases()), "quick_cases": len(quick.cases()),
                     "figure": full.figure, "description": full.description, "path": str(path),
                     "source": source})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(["suite", "cases", "quick", "paper", "source", "description"],
                       [[r["name"], r["cases"], r["quick_cases"], r["figure"] or "", r["source"],
                         r["description"]] for r in rows], align="lrr"))
    return 0


def _cmd_show(args) -> int:
    suite = suites.load_suite(args.name, quick=args.quick, profile=args.profile)
    cases = suite.cases()
    if args.json:
        print(json.dumps({"suite": suite.to_dict(), "cases": [c.to_dict() for c in cases]}, indent=2))
        return 0
    print(f"suite      {suite.name} ({suite.profile} profile)  {suite.path}")
    print(f"about      {suite.description}" + (f"  [{suite.figure}]" if suite.figure else ""))
    if suite.duration:
        print(f"duration   {suite.duration} (measured on a quiet 2-core machine)")
    print(f"ops        {', '.join(suite.ops)}")
    print(f"sampling   {suite.describe_sampling()}; in-memory batches >= "
          f"{suite.min_batch_seconds:g} s; timeout {suite.timeout:g} s per case")
    print(f"dataset    {json.dumps(suite.dataset)}")
    if suite.format:
        print(f"format     {json.dumps(suite.format)}")
    for name, params in suite.contenders.items():
        print(f"contender  {name}: {json.dumps(params)}")
    for key, options in suite.sweep.items():
        print(f"sweep      {key} = {json.dumps(options)}")
    print(f"cases      {len(cases)}")
    for case in cases:
        print(f"  {case.case_id}")
    return 0
