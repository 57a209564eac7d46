"""What `mrczbench recommend` and the report's "Recommended defaults" section show of a
recommendation (mrczbench.analysis.recommend): the text table, the JSON document, and the
commands that write the recommended format."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from mrczbench.analysis import recommend as model
from mrczbench.errors import MrczbenchError
from mrczbench.units import MiB, format_number, format_table

ALTERNATIVES = 4


def snippets(e: model.Evaluation, s: model.Scenario) -> dict[str, str]:
    """How to write the chosen configuration: a working command and Python call, or in words
    what to do where no command applies. Never empty."""
    cfg, threads = e.candidate.config, s.writer_cores
    fmt = cfg.get("format")
    if fmt == "mrcz":
        extra = f" --blocksize {cfg['blocksize']}" if cfg.get("blocksize") else ""
        filt = f" --filter {cfg['filter']}" if cfg.get("filter", "bitshuffle") != "bitshuffle" else ""
        py_extra = f", blocksize={cfg['blocksize']}" if cfg.get("blocksize") else ""
        py_filt = f", filter={cfg['filter']!r}" if filt else ""
        found = {"mrczbench": f"mrczbench compress movie.mrc movie.mrcz --codec {cfg['codec']} "
                              f"--level {cfg['level']} --threads {threads}{extra}{filt}",
                 "python": f"from mrczbench import mrcz; mrcz.write('movie.mrcz', stack, "
                           f"codec={cfg['codec']!r}, level={cfg['level']}, threads={threads}"
                           f"{py_extra}{py_filt})"}
        if not filt:  # plain MRCZ as python-mrcz writes it
            found["python-mrcz"] = (f"import mrcz; mrcz.writeMRC(stack, 'movie.mrcz', "
                                    f"compressor={cfg['codec']!r}, clevel={cfg['level']}, "
                                    f"n_threads={threads})")
        return found
    if fmt == "tiff":
        comp = cfg.get("compression", "none")
        level = cfg.get("level")
        relion = {"lzw": "--compression lzw", "deflate": f"--compression zip --deflate_level {level or 6}",
                  "none": "--compression none"}.get(comp, f"--compression {comp}")
        imod = {"lzw": "-c lzw", "deflate": f"-c zip -q {level or 6}", "none": ""}.get(comp, "")
        tiff_comp = {"lzw": "'lzw'", "deflate": f"('zlib', {level or 6})", "none": "None"}.get(comp, repr(comp))
        return {"relion": f"relion_convert_to_tiff --i movies.star --o Converted/ {relion}",
                "imod": f"mrc2tif -s {imod} movie.mrc movie.tif".replace("  ", " "),
                "python": f"import tifffile; tifffile.imwrite('movie.tif', stack, "
                          f"compression={tiff_comp})"}
    if fmt in ("bzip2", "lbzip2"):
        return {"shell": f"lbzip2 -{cfg.get('level', 9)} -n {threads} -k movie.mrc   # -> movie.mrc.bz2"
                if fmt == "lbzip2" else f"bzip2 -{cfg.get('level', 9)} -k movie.mrc   # -> movie.mrc.bz2"}
    if fmt == "mrc-uint4":
        return {"imod": "newstack -mode 101 movie.mrc movie-4bit.mrc",
                "python": "from mrczbench import mrcz; mrcz.write('movie-4bit.mrc', stack, mode101=True)",
                "note": "lossless only while every count is <= 15"}
    if fmt == "mrc":
        return {"do": "keep writing plain MRC as the detector software does (no compression "
                      "step, nothing to install)",
                "python": "from mrczbench import mrcz; mrcz.write('movie.mrc', stack)"}
    params = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "format")
    suffix = getattr(_format_class(fmt), "suffix", "")
    return {"python": f"import pathlib; from mrczbench.formats import format_class; "
                      f"format_class({fmt!r})({params}{', ' if params else ''}threads={threads})"
                      f".write(pathlib.Path('movie{suffix}'), stack)",
            "do": f"{fmt} files are mrczbench's own container: no cryo-EM program reads them, so "
                  f"keep them for the archive and read them back with format_class({fmt!r})()"
                  f".read(path) before processing"}


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
                "write_interval_mib_per_s": [c.write.low, c.write.high],
                "read_interval_mib_per_s": [c.read.low, c.read.high],
                "transfer_interval_s": list(e.transfer_range) if e.transfer_range else None,
                "keeps_up": e.keeps_up, "margin": e.margin, "tb_per_year": e.tb_per_year,
                "cost_per_year": e.cost_per_year, "snippets": snippets(e, s)}

    return {"recommended": entry(ranked[0]),
            "alternatives": [entry(e) for e in ranked[1:1 + ALTERNATIVES]],
            "tied": [e.candidate.label for e in result.get("tied", [])],
            "scenario": scenario_line(s),
            "assumptions": {**dataclasses.asdict(s), "raw_bytes_per_movie": s.raw_bytes,
                            "interval_s": s.interval_s, "link_mib_per_s": s.link_bytes_per_s / MiB,
                            "model": model.__doc__.split("The model, per movie")[1].split("Speeds come")[0].strip()},
            "notes": result["notes"]}


def as_text(result: dict[str, Any]) -> str:
    s: model.Scenario = result["scenario"]
    ranked = result["ranked"][:1 + ALTERNATIVES]
    best = ranked[0]
    tied = result.get("tied") or []
    tie_labels = {e.candidate.label for e in tied}
    lines = [f"Recommended for goal '{s.goal}': {best.candidate.label} "
             f"({json.dumps(best.candidate.config, sort_keys=True)}, threads {s.writer_cores})",
             f"Scenario: {scenario_line(s)}"]
    if len(tied) > 1:
        lines.append(f"Tied with it (= in the table): {', '.join(e.candidate.label for e in tied[1:])}")
    lines.append("")
    header = ["", "contender", "ratio", "write MiB/s", "read MiB/s", "write s", "send s",
              "read s", "transfer s", "keeps up (margin)", "TB/year", "$/year"]
    rows = []
    for i, e in enumerate(ranked):
        c = e.candidate
        mark = lambda sp: format_number(sp.mib_per_s) + _pm(sp) + ("*" if sp.note else "")
        transfer = f"{e.transfer_s:.2f}"
        if e.transfer_range:
            transfer += f" ({e.transfer_range[0]:.2f}-{e.transfer_range[1]:.2f})"
        rows.append(["->" if i == 0 else ("=" if c.label in tie_labels else str(i + 1)),
                     c.label + ("" if c.native else " (convert)"),
                     f"{c.ratio:.3f}", mark(c.write), mark(c.read), f"{e.write_s:.2f}",
                     f"{e.send_s:.2f}", f"{e.read_s + e.convert_s:.2f}", transfer,
                     f"{'yes' if e.keeps_up else 'NO'} ({100 * e.margin:.0f} %)",
                     format_number(round(e.tb_per_year, 1)), format_number(round(e.cost_per_year))])
    lines.append(format_table(header, rows, align="ll" + "r" * (len(header) - 2)))
    derived = [(e.candidate.label, sp) for e in ranked for sp in (e.candidate.write, e.candidate.read) if sp.note]
    for label, sp in derived:
        lines.append(f"* {label} {sp.op}: {sp.note}")
    lines += ["", "Use it:"] + [f"  {k}: {v}" for k, v in snippets(best, s).items()]
    lines += ["", f"Assumptions: {scenario_line(s)}; {s.movies_per_hour:g} movies/hour (one every {s.interval_s:,.0f} s); "
              f"link {s.link_gbps:g} Gbit/s x {s.link_fraction:g} usable = {s.link_bytes_per_s / MiB:,.0f} MiB/s; "
              f"writer {s.writer_cores} / reader {s.reader_cores} cores; headroom {100 * s.headroom:.0f} %; "
              f"storage ${s.storage_cost:g}/TB/year over {s.hours_per_year:,.0f} h/year; "
              f"readers: {', '.join(s.readers)}.",
              "ratio = stored/raw; write = encode + file write into the page cache; read = a "
              "cold read from disk (else decode); transfer = max(write, send) + read "
              "(compression and sending overlap). ±: half-width of the 95 % interval of the "
              "median speed; (a-b): the transfer time at the ends of those intervals; "
              "'=': tied with the recommendation (intervals overlap).",
              "Speeds, ratios and sizes are measured on this machine unless marked *; the model: "
              "`mrczbench recommend --help` and docs/DESIGN.md."]
    lines += [f"! {note}" for note in result["notes"]]
    return "\n".join(lines)


def _format_class(name: str):
    from mrczbench import formats
    try:
        return formats.format_class(name)
    except MrczbenchError:
        return None


def _pm(speed: model.Speed) -> str:
    if speed.low is None or speed.high is None:
        return ""
    half = max(speed.mib_per_s - speed.low, speed.high - speed.mib_per_s)
    return f" ±{100 * half / speed.mib_per_s:.0f}%" if speed.mib_per_s else ""


def scenario_line(s: model.Scenario) -> str:
    """The scenario in one line, the same in the text, the JSON and the report section."""
    return (f"{s.detector} ({s.kind}, {s.dtype}), {s.frames} x {s.shape[0]} x {s.shape[1]} x "
            f"{s.bytes_per_pixel} B = {s.raw_bytes / MiB:,.0f} MiB per movie, dose {s.dose:g} "
            f"e/px/frame")
