"""The report (`mrczbench report`, mrczbench.commands.report): the MRCZ paper's figures and
Table 1 from result files.

Reads only result files (JSONL rows, schema v1 in docs/DESIGN.md, plus the `<run-id>.run.json`
beside each) through `mrczbench.analysis.results`, summarises the samples per case and
operation with `mrczbench.analysis.stats` (median, p10-p90, min, the one "unstable" rule) and
writes PNG + SVG figures, Markdown + CSV tables and one self-contained `index.html`.

The parts: `select` (which cases each figure and table shows: Table 1 and Fig. 3 by the
suite's declared `figure`), `links` (Pareto front, link model), `figures`, `paper` (the
paper's published Table 1), `tables`, `about` (each run's profile and load: what the report
is), `sections` (Findings, Recommended defaults, gain recovery beside RELION), `writer`
(files, manifest, HTML and Markdown).

Conventions (docs/DESIGN.md, the MRCZ paper): ratio = stored/raw (0.37 = 37 % of the original),
MB = MiB = 2^20 bytes, speeds in MiB/s of raw data, link speeds in Gbit/s = 10^9 bit/s.
Cold samples marked `valid == false` are excluded and counted; error rows are listed.
Heavy imports (pandas, matplotlib) happen inside functions so `mrczbench --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path


def default_out(results) -> Path:
    return Path("reports") / "+".join(results.suites)
