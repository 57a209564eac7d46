"""Is `mrczbench compare` a usable gate (issue 15)? Two runs of the same suite, back to back,
then: the exit status and the share of case/ops flagged before the correction for the pair
as it is (identical code: should be 0 and at most 5 %), and how often a 20 % slowdown planted
into one contender is found, for each contender in turn, planted two ways:
  - "scaled NEW": that contender's own NEW rows x 1.2 (its own drift between runs included:
    what a real slowdown looks like);
  - "BASE x 1.2": that contender's BASE rows x 1.2 in place of its NEW rows (no drift of its
    own; the other contenders keep their real NEW rows).

Run it on a quiet machine (nothing else running): the point is what two honest runs differ by.

    .venv/bin/python benchmarks/scripts/compare_power.py                     # two quick dose sweeps
    .venv/bin/python benchmarks/scripts/compare_power.py --base A.jsonl --new B.jsonl  # existing runs
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from mrczbench.analysis import compare
from mrczbench.analysis.results import load_result_files
from mrczbench.store import meta_path_for
from mrczbench.bench.runner import run_suite

MIB = 2 ** 20


def two_runs(suite: str, repeats: int, folder: Path) -> tuple[Path, Path]:
    paths = []
    for side in ("base", "new"):
        start = time.monotonic()
        paths.append(run_suite(suite, quick=True, repeats=repeats, out=folder / side,
                               progress=False, summary=False))
        print(f"{side}: {paths[-1]} ({time.monotonic() - start:.0f} s)")
    return paths[0], paths[1]


def planted(base_rows: list[dict], new_rows: list[dict], contender: str, how: str) -> list[dict]:
    rng = random.Random(15)
    if how == "scaled NEW":
        rows = [dict(row) for row in new_rows]
    else:
        rows = [row for row in new_rows if row["label"] != contender] + \
            [dict(row) for row in base_rows if row["label"] == contender]
    for row in rows:
        if row["label"] == contender and row["seconds"] is not None:
            row["seconds"] *= 1.2 * (1 + rng.uniform(-0.01, 0.01))
            row["mib_per_s"] = row["raw_bytes"] / MIB / row["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="dose-sweep")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--base", type=Path, help="an existing BASE run file (with --new)")
    parser.add_argument("--new", type=Path, help="an existing NEW run file (with --base)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="compare-power-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base, new = (args.base, args.new) if args.base else two_runs(args.suite, args.repeats, folder)
    base_table, new_table = load_result_files([base]).rows, load_result_files([new]).rows
    same = compare.compare_runs(base_table, new_table)
    flags = compare.flag_counts(same.cases, compare.DEFAULT_ALPHA, compare.DEFAULT_FACTOR)
    figures = {"load_average_at_start": os.getloadavg()[0], "base": str(base), "new": str(new),
               "identical": {**flags, "exit_1": same.regressed, "run_wide_shift": same.shift,
                             "raw_flagged_share": flags["raw flagged"] / max(flags["tested"], 1)},
               "planted": {}}
    print(f"identical code: run-wide ×{same.shift:.3f}; {flags['tested']} case/ops tested, "
          f"{flags['raw significant']} with p < 0.05 before the correction "
          f"({flags['raw flagged']} = {100 * figures['identical']['raw_flagged_share']:.1f} % "
          f"also beyond ×1.1), {flags['flagged']} after it; "
          f"{same.contender_regressions} contender(s) flagged; exit {1 if same.regressed else 0}")
    base_rows = [json.loads(line) for line in base.read_text().splitlines()]
    new_rows = [json.loads(line) for line in new.read_text().splitlines()]
    contenders = sorted({row["label"] for row in base_rows})
    for how in ("scaled NEW", "BASE x 1.2"):
        found, wrong = [], 0
        for contender in contenders:
            path = folder / "planted.jsonl"
            path.write_text("".join(json.dumps(row) + "\n"
                                    for row in planted(base_rows, new_rows, contender, how)))
            meta_path_for(path).write_text(meta_path_for(new).read_text())
            result = compare.compare_runs(base_table, load_result_files([path]).rows)
            pooled = result.contenders.set_index("contender")
            if pooled.loc[contender, "regression"]:
                found.append(contender)
            wrong += int(pooled.drop(contender)["regression"].sum())
        figures["planted"][how] = {"found": found, "contenders": len(contenders),
                                   "other_contenders_flagged": wrong}
        print(f"planted 20 % slowdown ({how}): found for {len(found)} of {len(contenders)} "
              f"contenders; other contenders flagged {wrong} times")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
