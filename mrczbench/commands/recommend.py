"""`mrczbench recommend`: the scenario from the command line, the measurements (the user's
`--results`, or a focused sweep run here), and the answer as a table, snippets and JSON.
The model itself is `mrczbench.analysis.recommend`."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from mrczbench.analysis import recommend as model
from mrczbench.analysis.recommend_text import as_json, as_text
from mrczbench.argtypes import (fraction, fraction_below_one, names_from, positive_int,
                                positive_number)
from mrczbench.errors import MrczbenchError

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
    from mrczbench.argtypes import add_eer_grouping
    add_eer_grouping(what)
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
    site.add_argument("--link-fraction", type=fraction, default=model.DEFAULT_LINK_FRACTION,
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
    site.add_argument("--readers", type=names_from(model.READER_CHOICES, "reader"),
                      default=("any",), metavar="LIST",
                      help="comma-separated software that must read the files natively: "
                      f"{', '.join(model.READER_CHOICES)} (default any)")
    site.add_argument("--allow-conversion", action="store_true", help="also consider formats the "
                      "readers cannot read, counting the cost of converting them to plain MRC at "
                      "the compute centre")
    site.add_argument("--headroom", type=fraction_below_one, default=0.25,
                      help="share of the time between movies the writer keeps free (default 0.25)")
    how = p.add_argument_group("measurements and output")
    how.add_argument("--results", nargs="+", metavar="FILE_OR_DIR", help="result files or folders "
                     "from `mrczbench run` (default: run a short focused sweep now)")
    how.add_argument("--out", default="results/recommend", help="folder for the recommendation "
                     "and the sweep's results (default results/recommend, beside `run`'s results)")
    how.add_argument("--json", action="store_true", help="print JSON instead of the table")
    how.add_argument("--list-readers", action="store_true",
                     help="print which formats each program reads, with sources, and exit")
    p.set_defaults(func=run_command)


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
        kind="user" if movie_facts else preset.kind, dtype=dtype.name,
        detector=args.detector, dose=float(dose), shape=(int(shape[0]), int(shape[1])),
        frames=int(frames), bytes_per_pixel=dtype.itemsize, movies_per_hour=args.movies_per_hour,
        link_gbps=args.link_gbps, link_fraction=args.link_fraction, storage_cost=args.storage_cost,
        hours_per_year=args.hours_per_year, writer_cores=args.writer_cores or cores,
        reader_cores=args.reader_cores or cores, goal=args.goal, readers=args.readers,
        allow_conversion=args.allow_conversion, headroom=args.headroom)


def measure_movies(paths: list[str], frames: int = 4, eer_grouping: int = 32) -> dict[str, Any]:
    """Shape, frames, dtype of the first movie and the dose as its mean pixel value over its
    first `frames` frames (counts per pixel per frame for counting data)."""
    import numpy as np
    from mrczbench.movies.readers import iter_movies
    first = next(iter_movies(paths, eer_grouping=eer_grouping))
    total, count = 0.0, 0
    for i, frame in enumerate(first.iter_frames()):
        if i >= frames:
            break
        total += float(np.sum(frame, dtype=np.float64))  # accumulates in float64, no copy
        count += frame.size
    return {"shape": tuple(first.shape[1:]), "frames": first.shape[0], "dtype": str(first.dtype),
            "dose": total / count if count else None, "measured_from": first.name}


def sweep_suite(scenario: model.Scenario) -> str:
    """A suite file for the focused sweep: a few frames of the preset at the scenario's dose,
    the usual contenders available here, at the writer's and the reader's core counts."""
    from mrczbench import formats
    from mrczbench.movies.datasets import load_spec
    preset = load_spec(model.DETECTORS[scenario.detector])
    sweep = model.sweep_contenders(scenario.goal)
    names = [n for n, cfg in sweep.items()
             if not formats.format_class(cfg["format"]).unavailable_reason()
             and (scenario.allow_conversion or model.is_native(cfg, scenario.readers))]
    threads = sorted({scenario.writer_cores, scenario.reader_cores})
    contenders = "\n".join(f'"{n}" = {_inline(sweep[n])}' for n in names)
    options = "".join(f"\n{k} = {json.dumps(v)}" for k, v in preset.options.items())
    return f'''description = "recommend: focused sweep for {scenario.detector} at dose {scenario.dose:g}"
figure = "recommend"
ops = ["encode", "decode", "write", "read_cold"]
repeats = 6
precision = 0.05
max_repeats = 12
budget = 20
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


def earlier_sweep(out: Path, suite_text: str, data: list[str] | None) -> Path | None:
    """The finished run of an earlier focused sweep in `out` that measured this same sweep
    (same suite text, same --data): asking for another goal reuses it instead of running
    the sweep again."""
    from mrczbench import store
    folder = out / "results"
    if not folder.is_dir():
        return None
    wanted = [str(Path(p).resolve()) for p in data] if data else []
    for run in reversed(store.run_files(folder)):
        meta = store.read_run_metadata(run)
        suite_file = Path(str(meta.get("suite_file", "")))
        try:
            same = suite_file.is_file() and suite_file.read_text(encoding="utf-8") == suite_text
        except OSError:
            same = False
        if same and meta.get("finished") and meta.get("data_files", []) == wanted:
            return run
    return None


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/<stem>-<UTC time to the second><suffix>, with -2, -3 ... when that exists, so
    answers saved within one second never overwrite each other."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = folder / f"{stem}-{stamp}{suffix}"
    number = 2
    while path.exists():
        path = folder / f"{stem}-{stamp}-{number}{suffix}"
        number += 1
    return path


def measured_rows(args, scenario: model.Scenario, out: Path):
    from mrczbench.bench.runner import run_suite
    from mrczbench.store import load_results
    if args.results:
        return load_results(args.results), None
    text = sweep_suite(scenario)
    reused = earlier_sweep(out, text, args.data)
    if reused:
        print(f"no --results given: reusing the focused sweep already in {out} ({reused}); "
              f"delete it or give --results to measure again", file=sys.stderr)
        return load_results(reused), reused
    out.mkdir(parents=True, exist_ok=True)
    suite_file = unique_path(out, "sweep", ".toml")
    suite_file.write_text(text, encoding="utf-8")
    print(f"no --results given: running a focused sweep on this machine ({suite_file}); "
          f"results go to {out / 'results'}", file=sys.stderr)
    jsonl = run_suite(str(suite_file), data=args.data, out=out / "results", summary=False,
                      eer_grouping=args.eer_grouping)
    return load_results(jsonl), jsonl


def busy_note(frame) -> str | None:
    """A note when any run behind the rows was recorded as busy at its start."""
    from mrczbench import store
    busy = []
    for path in frame["source_file"].dropna().unique() if "source_file" in frame.columns else []:
        load = store.read_run_metadata(path).get("load_at_start")
        if isinstance(load, dict) and load.get("busy"):
            busy.append(f"load {load.get('load_average')} on {load.get('usable_cores')} cores")
    if not busy:
        return None
    return (f"the machine was busy while measuring ({'; '.join(sorted(set(busy)))}): speeds "
            f"are noisy, more configurations tie; measure again on a quiet machine to decide")


def run_command(args) -> int:
    if args.list_readers:
        for name, source in model.READER_SOURCES.items():
            formats = ", ".join(f"{f}" + (f" {c}" if c else "") for f, c in
                                sorted(model.native_formats(name), key=str))
            print(f"{name}: {formats}\n    source: {source}")
        return 0
    from mrczbench.atomic import atomic_output, protect_inputs
    protect_inputs([*(args.data or []), *(args.results or [])])
    facts = measure_movies(args.data, eer_grouping=args.eer_grouping) if args.data else None
    if facts and not args.dose and not 0 < (facts.get("dose") or 0) < float("inf"):
        raise MrczbenchError(f"--data: the mean pixel value of {facts['measured_from']} is "
                             f"{facts.get('dose')!r}, not a dose (a dark or gain-normalised "
                             f"movie?): give --dose E_PER_PIXEL_PER_FRAME")
    scenario = scenario_from(args, facts)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MrczbenchError(f"--out {out}: exists and is not a folder; give a folder")
    started = time.perf_counter()
    frame, jsonl = measured_rows(args, scenario, out)
    result = model.recommend(frame, scenario)
    busy = busy_note(frame)
    if busy:
        result["notes"].insert(0, busy)
    if facts:
        result["notes"].insert(0, f"dose {facts['dose']:.3g} e/px/frame measured as the mean pixel "
                                  f"value of {facts['measured_from']}" if not args.dose else
                               f"dose given; movies measured from {facts['measured_from']}")
    document = as_json(result)
    document["results"] = [str(jsonl)] if jsonl else list(args.results)
    document["seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    saved = unique_path(out, "recommendation", ".json")
    text = as_text(result)
    with atomic_output(saved) as f:
        f.write(json.dumps(document, indent=1, default=str).encode())
    with atomic_output(saved.with_suffix(".txt")) as f:
        f.write(text.encode() + b"\n")
    print(json.dumps(document, indent=1, default=str) if args.json else text)
    print(f"saved to {saved} and {saved.with_suffix('.txt').name} ({document['seconds']:.0f} s)",
          file=sys.stderr)
    return 0
