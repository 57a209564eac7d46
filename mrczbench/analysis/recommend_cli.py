"""`mrczbench recommend`: the scenario from the command line, the measurements (the user's
`--results`, or a focused sweep run here), and the answer as a table, snippets and JSON.
The model itself is `mrczbench.analysis.recommend`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from mrczbench.analysis import recommend as model
from mrczbench.argtypes import positive_int, positive_number
from mrczbench.errors import MrczbenchError
from mrczbench.units import MiB, format_number

ALTERNATIVES = 4


def add_commands(sub) -> None:
    p = sub.add_parser(
        "recommend", help="choose a facility's format, codec, level, block size and threads",
        description="Recommend the storage configuration a facility's pipeline should write, "
        "for its detector, dose, collection rate, network, storage cost and downstream software, "
        "from measurements on this machine (--results, or a short sweep run now). "
        "Every figure is measured here or marked as derived, with how.")
    what = p.add_argument_group("the data")
    what.add_argument("--dose", type=positive_number, help="e/px/frame (default: the detector "
                      "preset's typical dose, or measured from --data)")
    what.add_argument("--data", nargs="+", metavar="MOVIE", help="your movies (MRC, MRCZ, TIFF, "
                      "EER, .npy, .lst/.star): the sweep runs on them and the dose is measured "
                      "from them (mean pixel value)")
    what.add_argument("--detector", default="counting", choices=sorted(model.DETECTORS),
                      help="detector preset giving frame shape, frames per movie, pixel type "
                      "and typical dose (default: counting = K2, 60 x 3838 x 3710 int8)")
    what.add_argument("--shape", type=positive_int, nargs=2, metavar=("NY", "NX"),
                      help="frame shape in pixels (default: the preset's)")
    what.add_argument("--frames", type=positive_int, help="frames per movie (default: the preset's)")
    site = p.add_argument_group("the facility")
    site.add_argument("--movies-per-hour", type=positive_number, default=60.0,
                      help="collection rate (default 60)")
    site.add_argument("--link-gbps", type=positive_number, default=1.0,
                      help="network from the writer to the compute centre in Gbit/s (default 1)")
    site.add_argument("--link-fraction", type=_fraction, default=model.DEFAULT_LINK_FRACTION,
                      help="usable fraction of the link (default 0.63: the MRCZ paper's 60-90 MB/s "
                      "on 1 Gbit/s, midpoint 75 MiB/s)")
    site.add_argument("--storage-cost", type=positive_number, default=150.0,
                      help="$/TB/year (default 150, the paper's 100-200 range; TB = 10^12 bytes)")
    site.add_argument("--hours-per-year", type=positive_number, default=24 * 365 * 0.7,
                      help="collection hours per year for the storage figures (default 6132 = 70 %% "
                      "of the year)")
    site.add_argument("--writer-cores", type=positive_int, help="cores compressing at the "
                      "microscope (default: this machine's usable cores)")
    site.add_argument("--reader-cores", type=positive_int, help="cores reading at the compute "
                      "centre (default: this machine's usable cores)")
    site.add_argument("--goal", choices=model.GOALS, default="transfer",
                      help="live: keep up at the writer with the least load; transfer: shortest "
                      "detector-to-usable-frames time; archive: least storage cost that keeps up "
                      "(default transfer)")
    site.add_argument("--readers", type=_readers, default=("any",), metavar="LIST",
                      help="comma-separated software that must read the files natively: "
                      f"{', '.join(model.READER_CHOICES)} (default any)")
    site.add_argument("--allow-conversion", action="store_true", help="also consider formats the "
                      "readers cannot read, counting the cost of converting them to plain MRC at "
                      "the compute centre")
    site.add_argument("--headroom", type=_headroom, default=0.25, help="share of the time between "
                      "movies the writer keeps free (default 0.25)")
    how = p.add_argument_group("measurements and output")
    how.add_argument("--results", nargs="+", metavar="FILE_OR_DIR", help="result files or folders "
                     "from `mrczbench run` (default: run a short focused sweep now)")
    how.add_argument("--out", default="recommend", help="folder for the recommendation and the "
                     "sweep's results (default ./recommend)")
    how.add_argument("--json", action="store_true", help="print JSON instead of the table")
    how.add_argument("--list-readers", action="store_true",
                     help="print which formats each program reads, with sources, and exit")
    p.set_defaults(func=run_command)


def _fraction(text: str) -> float:
    value = positive_number(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def _headroom(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _readers(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in model.READER_CHOICES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown reader {', '.join(bad) or text!r}; valid: "
                                         f"{', '.join(model.READER_CHOICES)}")
    return names


# ---- the scenario and the measurements -------------------------------------------------

def scenario_from(args, movie_facts: dict[str, Any] | None) -> model.Scenario:
    import numpy as np
    from mrczbench.system import usable_cores
    from mrczbench.movies.datasets import load_spec
    preset = load_spec(model.DETECTORS[args.detector])
    facts = movie_facts or {}
    shape = tuple(args.shape or facts.get("shape") or preset.shape)
    frames = args.frames or facts.get("frames") or preset.frames
    dtype = np.dtype(facts.get("dtype") or preset.dtype)
    dose = args.dose or facts.get("dose") or preset.dose
    cores = usable_cores()
    return model.Scenario(
        detector=args.detector, dose=float(dose), shape=(int(shape[0]), int(shape[1])),
        frames=int(frames), bytes_per_pixel=dtype.itemsize, movies_per_hour=args.movies_per_hour,
        link_gbps=args.link_gbps, link_fraction=args.link_fraction, storage_cost=args.storage_cost,
        hours_per_year=args.hours_per_year, writer_cores=args.writer_cores or cores,
        reader_cores=args.reader_cores or cores, goal=args.goal, readers=args.readers,
        allow_conversion=args.allow_conversion, headroom=args.headroom)


def measure_movies(paths: list[str], frames: int = 4) -> dict[str, Any]:
    """Shape, frames, dtype of the first movie and the dose as its mean pixel value over its
    first `frames` frames (counts per pixel per frame for counting data)."""
    import numpy as np
    from mrczbench.movies.readers import iter_movies
    first = next(iter_movies(paths))
    total, count = 0.0, 0
    for i, frame in enumerate(first.iter_frames()):
        if i >= frames:
            break
        total += float(np.asarray(frame, dtype=np.float64).sum())
        count += frame.size
    return {"shape": tuple(first.shape[1:]), "frames": first.shape[0], "dtype": str(first.dtype),
            "dose": total / count if count else None, "measured_from": first.name}


def sweep_suite(scenario: model.Scenario) -> str:
    """A suite file for the focused sweep: a few frames of the preset at the scenario's dose,
    the usual contenders available here, at the writer's and the reader's core counts."""
    from mrczbench import formats
    from mrczbench.movies.datasets import load_spec
    preset = load_spec(model.DETECTORS[scenario.detector])
    names = [n for n, cfg in model.SWEEP_CONTENDERS.items()
             if cfg["format"] in formats.format_names()
             and not formats.format_class(cfg["format"]).unavailable_reason()
             and (scenario.allow_conversion or model.is_native(cfg, scenario.readers))]
    threads = sorted({scenario.writer_cores, scenario.reader_cores})
    contenders = "\n".join(f'"{n}" = {_inline(model.SWEEP_CONTENDERS[n])}' for n in names)
    options = "".join(f"\n{k} = {json.dumps(v)}" for k, v in preset.options.items())
    return f'''description = "recommend: focused sweep for {scenario.detector} at dose {scenario.dose:g}"
figure = "recommend"
ops = ["encode", "decode", "write", "read_warm"]
repeats = 3
min_batch_seconds = 0.05
timeout = 900

[dataset]
kind = "{preset.kind}"
frames = {min(3, scenario.frames)}
shape = [{scenario.shape[0]}, {scenario.shape[1]}]
dose = {scenario.dose!r}
dtype = "{preset.dtype}"
seed = 1
{"[dataset.options]" + options if options else ""}

[contenders]
{contenders}

[sweep]
contender = {json.dumps(names)}
threads = {json.dumps(threads)}
'''


def _inline(config: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in config.items()) + " }"


def measured_rows(args, scenario: model.Scenario, out: Path):
    from mrczbench import load_results
    if args.results:
        return load_results(args.results), None
    from mrczbench import run_suite
    out.mkdir(parents=True, exist_ok=True)
    suite_file = out / f"sweep-{time.strftime('%Y%m%dT%H%M%S')}.toml"
    suite_file.write_text(sweep_suite(scenario), encoding="utf-8")
    print(f"no --results given: running a focused sweep on this machine ({suite_file}); "
          f"results go to {out / 'results'}", file=sys.stderr)
    jsonl = run_suite(str(suite_file), data=args.data, out=out / "results", summary=False)
    return load_results(jsonl), jsonl


# ---- output --------------------------------------------------------------------------------

def snippets(e: model.Evaluation, s: model.Scenario) -> dict[str, str]:
    cfg, threads = e.candidate.config, s.writer_cores
    fmt = cfg.get("format")
    if fmt == "mrcz":
        extra = f" --blocksize {cfg['blocksize']}" if cfg.get("blocksize") else ""
        filt = f" --filter {cfg['filter']}" if cfg.get("filter", "bitshuffle") != "bitshuffle" else ""
        py_extra = f", blocksize={cfg['blocksize']}" if cfg.get("blocksize") else ""
        py_filt = f", filter={cfg['filter']!r}" if filt else ""
        return {"mrczbench": f"mrczbench compress movie.mrc movie.mrcz --codec {cfg['codec']} "
                             f"--level {cfg['level']} --threads {threads}{extra}{filt}",
                "python": f"mrcz.write('movie.mrcz', stack, codec={cfg['codec']!r}, "
                          f"level={cfg['level']}, threads={threads}{py_extra}{py_filt})"}
    if fmt == "tiff":
        comp = cfg.get("compression", "none")
        level = cfg.get("level")
        relion = {"lzw": "--compression lzw", "deflate": f"--compression zip --deflate_level {level or 6}",
                  "none": "--compression none"}.get(comp, f"--compression {comp}")
        imod = {"lzw": "-c lzw", "deflate": f"-c zip -q {level or 6}", "none": ""}.get(comp, "")
        return {"relion": f"relion_convert_to_tiff --i movies.star --o Converted/ {relion}",
                "imod": f"mrc2tif -s {imod} movie.mrc movie.tif".replace("  ", " ")}
    if fmt in ("bzip2", "lbzip2"):
        return {"shell": f"lbzip2 -{cfg.get('level', 9)} -n {threads} -k movie.mrc   # -> movie.mrc.bz2"
                if fmt == "lbzip2" else f"bzip2 -{cfg.get('level', 9)} -k movie.mrc   # -> movie.mrc.bz2"}
    if fmt == "mrc-uint4":
        return {"imod": "newstack -mode 101 movie.mrc movie-4bit.mrc",
                "python": "mrcz.write('movie-4bit.mrc', stack, mode101=True)"}
    return {}


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    s: model.Scenario = result["scenario"]
    ranked = result["ranked"]

    def entry(e: model.Evaluation) -> dict[str, Any]:
        c = e.candidate
        return {"label": c.label, "format": c.config.get("format"), "codec": c.config.get("codec"),
                "compression": c.config.get("compression"), "level": c.config.get("level"),
                "blocksize": c.config.get("blocksize"), "filter": c.config.get("filter"),
                "threads": s.writer_cores, "config": c.config, "ratio": c.ratio,
                "ratio_dose": c.dose, "native": c.native,
                "write_mib_per_s": c.write.mib_per_s, "write_op": c.write.op, "write_note": c.write.note,
                "read_mib_per_s": c.read.mib_per_s, "read_op": c.read.op, "read_note": c.read.note,
                "seconds_per_movie": {"write": e.write_s, "send": e.send_s, "read": e.read_s,
                                      "convert": e.convert_s, "transfer": e.transfer_s},
                "keeps_up": e.keeps_up, "margin": e.margin, "tb_per_year": e.tb_per_year,
                "cost_per_year": e.cost_per_year, "snippets": snippets(e, s)}

    return {"recommended": entry(ranked[0]),
            "alternatives": [entry(e) for e in ranked[1:1 + ALTERNATIVES]],
            "assumptions": {**dataclasses.asdict(s), "raw_bytes_per_movie": s.raw_bytes,
                            "interval_s": s.interval_s, "link_mib_per_s": s.link_bytes_per_s / MiB,
                            "model": model.__doc__.split("The model, per movie")[1].split("Speeds come")[0].strip()},
            "notes": result["notes"]}


def as_text(result: dict[str, Any]) -> str:
    s: model.Scenario = result["scenario"]
    ranked = result["ranked"][:1 + ALTERNATIVES]
    best = ranked[0]
    lines = [f"Recommended for goal '{s.goal}': {best.candidate.label} "
             f"({json.dumps(best.candidate.config, sort_keys=True)}, threads {s.writer_cores})", ""]
    header = ["", "contender", "ratio", "write MiB/s", "read MiB/s", "write s", "send s",
              "read s", "transfer s", "keeps up (margin)", "TB/year", "$/year"]
    rows = []
    for i, e in enumerate(ranked):
        c = e.candidate
        mark = lambda sp: format_number(sp.mib_per_s) + ("*" if sp.note else "")
        rows.append(["->" if i == 0 else str(i + 1), c.label + ("" if c.native else " (convert)"),
                     f"{c.ratio:.3f}", mark(c.write), mark(c.read), f"{e.write_s:.2f}",
                     f"{e.send_s:.2f}", f"{e.read_s + e.convert_s:.2f}", f"{e.transfer_s:.2f}",
                     f"{'yes' if e.keeps_up else 'NO'} ({100 * e.margin:.0f} %)",
                     format_number(round(e.tb_per_year, 1)), format_number(round(e.cost_per_year))])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines.append("  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    derived = [(e.candidate.label, sp) for e in ranked for sp in (e.candidate.write, e.candidate.read) if sp.note]
    for label, sp in derived:
        lines.append(f"* {label} {sp.op}: {sp.note}")
    lines += ["", "Use it:"] + [f"  {k}: {v}" for k, v in snippets(best, s).items()]
    lines += ["", f"Assumptions: {s.detector}, {s.frames} x {s.shape[0]} x {s.shape[1]} x "
              f"{s.bytes_per_pixel} B = {s.raw_bytes / MiB:,.0f} MiB per movie, dose {s.dose:g} "
              f"e/px/frame; {s.movies_per_hour:g} movies/hour (one every {s.interval_s:,.0f} s); "
              f"link {s.link_gbps:g} Gbit/s x {s.link_fraction:g} usable = {s.link_bytes_per_s / MiB:,.0f} MiB/s; "
              f"writer {s.writer_cores} / reader {s.reader_cores} cores; headroom {100 * s.headroom:.0f} %; "
              f"storage ${s.storage_cost:g}/TB/year over {s.hours_per_year:,.0f} h/year; "
              f"readers: {', '.join(s.readers)}.",
              "ratio = stored/raw; write = encode + file write into the page cache; transfer = "
              "max(write, send) + read (compression and sending overlap).",
              "Speeds, ratios and sizes are measured on this machine unless marked *; the model: "
              "`mrczbench recommend --help` and docs/DESIGN.md."]
    lines += [f"! {note}" for note in result["notes"]]
    return "\n".join(lines)


def run_command(args) -> int:
    if args.list_readers:
        for name, entry in model.READERS.items():
            formats = ", ".join(f"{f}" + (f" {c}" if c else "") for f, c in sorted(entry["formats"], key=str))
            print(f"{name}: {formats}\n    source: {entry['source']}")
        return 0
    from mrczbench.atomic import atomic_output
    facts = measure_movies(args.data) if args.data else None
    if facts and not facts.get("dose") and not args.dose:
        raise MrczbenchError("--data: the dose could not be measured (empty movie): give --dose")
    scenario = scenario_from(args, facts)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MrczbenchError(f"--out {out}: exists and is not a folder; give a folder")
    started = time.perf_counter()
    frame, jsonl = measured_rows(args, scenario, out)
    result = model.recommend(frame, scenario)
    if facts:
        result["notes"].insert(0, f"dose {facts['dose']:.3g} e/px/frame measured as the mean pixel "
                                  f"value of {facts['measured_from']}" if not args.dose else
                               f"dose given; movies measured from {facts['measured_from']}")
    document = as_json(result)
    document["results"] = [str(jsonl)] if jsonl else list(args.results)
    document["seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = as_text(result)
    with atomic_output(out / f"recommendation-{stamp}.json") as f:
        f.write(json.dumps(document, indent=1, default=str).encode())
    with atomic_output(out / f"recommendation-{stamp}.txt") as f:
        f.write(text.encode() + b"\n")
    print(json.dumps(document, indent=1, default=str) if args.json else text)
    print(f"saved to {out}/recommendation-{stamp}.json and .txt ({document['seconds']:.0f} s)",
          file=sys.stderr)
    return 0
