"""Writing a report folder: PNG + SVG figures, CSV + Markdown tables, `report.md` and one
self-contained `index.html` (figures inlined, nothing fetched).

The folder may hold the user's own files. The report only overwrites or removes files it
can prove it wrote: every report writes `.mrczbench-report.json`, a manifest of the files it
wrote with their SHA-256. A file with a report file name whose current content matches no
digest in the manifest is never touched: writing stops before anything is written, naming
it. Before each file is written, its new digest is added to the manifest beside the old one,
so a report interrupted part-way still owns both versions. Files of an earlier report that
this one does not write again (e.g. a dose-sweep figure beside a metadata report) are
removed only when they carry a report suffix and their content matches a recorded digest:
a manifest entry without a digest (as a forged manifest may hold) proves nothing.

Every user-controlled string (file, dataset, contender and suite names, error messages) is
escaped in both index.html and report.md."""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
from pathlib import Path
from typing import Any

from mrczbench.analysis.report import about, sections
from mrczbench.analysis.report.figures import CAPTIONS, make_figures
from mrczbench.analysis.report.paper import PAPER_CITATION
from mrczbench.analysis.report.tables import (error_table, link_table, summary_table, table1,
                                              table1_note)
from mrczbench.analysis.results import LoadedResults
from mrczbench.analysis.stats import DEFAULT_PRECISION, UNSTABLE_RULE, case_stats, case_table
from mrczbench.atomic import atomic_output
from mrczbench.errors import ResultsError
from mrczbench.spreadsheet import safe_table
from mrczbench.units import format_number

MANIFEST = ".mrczbench-report.json"
MANIFEST_OWNER = "mrczbench report"

TABLE_TITLES = {
    "runs": "What these results are: runs, profiles and the machine's load",
    "findings": "Findings — the paper's claims checked from these results",
    "table1": "Table 1 — reproduction next to the paper's published numbers",
    "gain_recovery": "Gain recovery — float32 stored directly vs as integer counts, beside RELION",
    "link_break_even": "When does compression pay? (compress + transfer + decompress)",
    "summary": "All cases and operations (median, p10–p90, min of valid samples)",
    "errors": "Error rows (no timing)",
}

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;
padding:2px 6px;text-align:right;vertical-align:top}th{background:#eee}
td.text{text-align:left;min-width:8em;max-width:60em}td.bad{color:#b00;font-weight:bold}
td.reproduced{color:#070;font-weight:bold}td.partly{color:#a60;font-weight:bold}
td.refuted{color:#b00;font-weight:bold}
img{max-width:100%;border:1px solid #ddd}figcaption{font-size:13px;color:#444}
pre{overflow-x:auto;background:#f6f6f6;padding:0.6em;font-size:12px}
.warn{color:#b00}.quick{background:#fee;border:2px solid #b00;padding:0.5em 1em;
color:#b00;font-weight:bold}"""

VERDICT_CLASSES = {"reproduced": "reproduced", "partly reproduced": "partly", "refuted": "refuted"}


# --- text ------------------------------------------------------------------------------------
def format_cell(value: Any) -> str:
    """A table cell: units.format_number, booleans as 'yes' or empty."""
    if isinstance(value, bool):
        return "yes" if value else ""
    return format_number(value)


def markdown_text(value: Any) -> str:
    """Text that Markdown shows as written: no HTML, links, images or table breaks."""
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    for char in ("\\", "`", "[", "]", "|", "*", "_"):
        text = text.replace(char, "\\" + char)
    return text


def markdown_table(table) -> str:
    header = "| " + " | ".join(markdown_text(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(markdown_text(format_cell(v)) for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell_class(value: Any, text: str) -> str:
    if text in ("UNSTABLE", "BUSY", "MISSED"):
        return " class=bad"
    if text in VERDICT_CLASSES:
        return f" class={VERDICT_CLASSES[text]}"
    return " class=text" if isinstance(value, str) and len(text) > 24 else ""


def html_table(table) -> str:
    """A table in its own horizontally scrolling box, so a wide one never widens the page."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(
        f"<td{_cell_class(v, format_cell(v))}>{html.escape(format_cell(v))}</td>"
        for v in row) + "</tr>" for row in table.itertuples(index=False))
    return (f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table></div>")


# --- figures as bytes --------------------------------------------------------------------------
def _freeze_layout(figure) -> None:
    """Run the constrained layout once and keep its positions: it is half the cost of a save,
    and would otherwise run again for the PNG and the SVG."""
    engine = figure.get_layout_engine()
    if engine is not None and engine.__class__.__name__ == "ConstrainedLayoutEngine":
        engine.execute(figure)
        figure.set_layout_engine("none")


def _png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    # no Software tag: it carries a URL, and the HTML must reference nothing outside itself
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _svg_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None})
    return buffer.getvalue()


# --- the manifest: which files in the folder are ours ----------------------------------------
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain_name(name: Any) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and not name.startswith(".")
            and "/" not in name and os.sep not in name and "\0" not in name)


REPORT_SUFFIXES = (".png", ".svg", ".csv", ".md", ".html")


def read_manifest(out: Path) -> dict[str, set[str]]:
    """{file name: the SHA-256 digests its content may have} of the report last written
    into `out`; {} when there is none. A manifest we did not write is an error."""
    path = out / MANIFEST
    if not path.exists() and not path.is_symlink():
        return {}
    not_ours = ResultsError(f"{path} is not a manifest written by mrczbench report: not "
                            f"touching that folder; choose another --out folder")
    if path.is_symlink() or not path.is_file():
        raise not_ours
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        raise not_ours from None
    if not isinstance(data, dict) or data.get("written_by") != MANIFEST_OWNER \
            or not isinstance(data.get("files"), dict):
        raise not_ours
    files = {}
    for name, digests in data["files"].items():
        digests = [digests] if isinstance(digests, str) else digests
        if _plain_name(name) and isinstance(digests, list):
            files[name] = {d for d in digests if isinstance(d, str) and len(d) == 64}
    return files


def _write_manifest(out: Path, files: dict[str, set[str]]) -> None:
    listed = {name: sorted(digests) for name, digests in sorted(files.items())}
    text = json.dumps({"written_by": MANIFEST_OWNER, "files": listed}, indent=1)
    with atomic_output(out / MANIFEST) as handle:
        handle.write((text + "\n").encode("utf-8"))


def _is_ours(path: Path, manifest: dict[str, set[str]]) -> bool:
    """The manifest lists `path` and it is a regular file whose content is one we wrote."""
    if not manifest.get(path.name) or path.is_symlink() or not path.is_file():
        return False
    return _digest(path.read_bytes()) in manifest[path.name]


def check_overwrites(out: Path, names, manifest: dict[str, set[str]]) -> None:
    """Refuse, before writing anything, when a file to be written exists and is not ours."""
    foreign = [name for name in names if ((out / name).exists() or (out / name).is_symlink())
               and not _is_ours(out / name, manifest)]
    if foreign:
        listed = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise ResultsError(f"{out}: {listed} {'exists' if len(foreign) == 1 else 'exist'} and "
                           f"{'was' if len(foreign) == 1 else 'were'} not written by mrczbench "
                           f"report (or changed since): not overwriting; choose another --out "
                           f"folder")


def remove_stale_outputs(out: Path, keep, manifest: dict[str, set[str]]) -> list[Path]:
    """Remove files of the earlier report in `out` that this report does not write again,
    where the manifest proves them ours and unchanged; anything else stays."""
    from mrczbench.atomic import check_not_input
    removed = []
    for name in sorted(set(manifest) - set(keep)):
        path = out / name
        if path.suffix in REPORT_SUFFIXES and _is_ours(path, manifest):
            check_not_input(path)
            path.unlink()
            removed.append(path)
    return removed


# --- the report ----------------------------------------------------------------------------------
def _tables(results: LoadedResults, stats, cases) -> dict:
    tables = {"runs": about.runs_table(results), "findings": sections.findings_table(results),
              "table1": table1(cases), "gain_recovery": sections.gain_table(cases),
              "link_break_even": link_table(cases),
              "summary": summary_table(stats), "errors": error_table(results.rows)}
    return {name: table for name, table in tables.items() if table is not None and len(table)}


def _counts(results: LoadedResults, stats) -> dict[str, Any]:
    rows = results.rows
    timed = rows[rows["error"].isna()]
    counts = {
        "samples": len(rows), "valid samples": int(timed["valid"].sum()),
        "invalid cold samples excluded": int((~timed["valid"]).sum()),
        "error rows": int(rows["error"].notna().sum()),
        "unstable series": int(stats["unstable"].sum()) if len(stats) else 0,
        "series that met their precision target": (
            f"{int(stats['met_target'].sum())} of {len(stats)}" if len(stats) else "0 of 0"),
        "runs": rows["run_id"].nunique(),
    }
    if results.skipped_lines:
        counts["cut-off lines skipped (crashed or running run)"] = "; ".join(
            f"{count} in {name}" for name, count in sorted(results.skipped_lines.items()))
    return counts


def _notes(results: LoadedResults, tables, cases) -> list[str]:
    notes = [
        "ratio = stored/raw (the paper's convention: 0.37 = 37 % of the original); "
        "MB = MiB = 2^20 bytes; speeds are MiB/s of raw data; link speeds Gbit/s = 10^9 bit/s.",
        "Timings are medians ± the half-width of their 95 % confidence interval "
        "(distribution-free, order statistics; 6 or more samples). A series whose interval is "
        f"wider than ±{100 * DEFAULT_PRECISION:g} % (or that has fewer than 6 samples) missed its "
        "target: ringed red in figures, MISSED in tables; differences inside the intervals are "
        "ties.",
        f"Unstable: {UNSTABLE_RULE} (UNSTABLE in tables) — rerun on a quieter machine.",
        "Cold-read samples whose file was still in the page cache (valid = false) are excluded.",
    ]
    if "table1" in tables:
        notes.append(table1_note(cases))
        notes.append(f"Paper numbers: {PAPER_CITATION}")
    if "gain_recovery" in tables:
        notes.append(sections.gain_note(tables["gain_recovery"]))
    return notes


def write_report(results: LoadedResults, out: Path, figures: dict | None = None) -> list[Path]:
    """Write figures, tables, report.md and index.html into `out`; return the files written.
    `figures` (from make_figures) saves building them again when the caller has them.
    Raises ResultsError, before writing anything, when a file it would write exists and is
    not one it wrote (see the module docstring)."""
    out = Path(out)
    stats = case_stats(results.rows)
    cases = case_table(stats)
    if figures is None:
        figures = make_figures(results, cases)
    tables = _tables(results, stats, cases)
    names = ([f"{name}{suffix}" for name in figures for suffix in (".png", ".svg")]
             + [f"{name}{suffix}" for name in tables for suffix in (".csv", ".md")]
             + ["index.html", "report.md"])
    # OS errors (read-only, full disk, --out naming a file) become one line in cli.main
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out)
    check_overwrites(out, names, manifest)
    remove_stale_outputs(out, names, manifest)
    manifest = {name: manifest.get(name, set()) for name in names}
    digests = _write_files(results, out, figures, tables, stats, cases, manifest)
    _write_manifest(out, {name: {digest} for name, digest in digests.items()})
    return [out / name for name in digests]


def _write_files(results, out: Path, figures: dict, tables: dict, stats, cases,
                 manifest: dict[str, set[str]]) -> dict[str, str]:
    digests: dict[str, str] = {}

    def write(name: str, data: bytes | str) -> None:
        data = data.encode("utf-8") if isinstance(data, str) else data
        digests[name] = _digest(data)
        # recorded before it is written: an interrupted report still owns the new content
        manifest[name] = manifest[name] | {digests[name]}
        _write_manifest(out, manifest)
        with atomic_output(out / name) as handle:
            handle.write(data)

    pngs: dict[str, bytes] = {}
    for name, figure in figures.items():
        _freeze_layout(figure)
        pngs[name] = _png_bytes(figure)
        write(f"{name}.png", pngs[name])
        write(f"{name}.svg", _svg_bytes(figure))
    titles = dict(TABLE_TITLES)
    if "table1" in tables:
        datasets = list(dict.fromkeys(tables["table1"]["dataset"]))
        titles["table1"] += f" (dataset{'s' if len(datasets) > 1 else ''} {', '.join(datasets)})"
    for name, table in tables.items():
        write(f"{name}.csv", safe_table(table).to_csv(index=False))
        write(f"{name}.md", f"## {markdown_text(titles[name])}\n\n{markdown_table(table)}\n")
    page = _page(results, stats, cases, tables, titles)
    write("index.html", _html(results, page, figures, pngs, tables))
    write("report.md", _markdown(results, page, figures, tables))
    return digests


def _page(results, stats, cases, tables, titles) -> dict[str, Any]:
    """What index.html and report.md both say, beside figures and tables."""
    counts = _counts(results, stats)
    quick = about.quick_runs(results)
    return {"title": f"mrczbench report — suite {', '.join(results.suites)}"
                     + (" (QUICK PROFILE)" if quick else ""),
            "quick": (f"{about.QUICK_WARNING}. Quick runs: {', '.join(quick)}." if quick else ""),
            "about": about.summary_lines(results),
            "counts": counts, "notes": _notes(results, tables, cases), "titles": titles,
            "trouble": bool(counts["invalid cold samples excluded"] or counts["error rows"]
                            or results.skipped_lines),
            "recommendation": sections.recommended_defaults(results)}


TROUBLE = ("Some samples were excluded (cold reads from the page cache) or failed (error rows, "
           "cut-off lines): see the counts above and the tables below.")
UNSTABLE_NOTE = "Some series are unstable (noisy timings): marked in the figures and tables."
RECOMMEND_TITLE = "Recommended defaults"
SECTION_ORDER = ("findings",)  # tables shown before the figures; the rest follow them


def _html_recommendation(page) -> str:
    rec = page["recommendation"]
    parts = [f"<h2 id='recommended'>{RECOMMEND_TITLE}</h2>",
             f"<p>Scenario: {html.escape(rec.scenario)}.</p>"]
    if rec.text is None:
        parts.append(f"<p>No recommendation: {html.escape(rec.reason)}.</p>")
    else:
        parts.append(html_table(rec.table()))
        parts.append("<ul>" + "".join(f"<li><code>{html.escape(line)}</code></li>"
                                      for line in rec.lines()) + "</ul>")
    return "".join(parts)


def _html(results, page, figures, pngs, tables) -> str:
    title, counts, titles = page["title"], page["counts"], page["titles"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    if page["quick"]:
        parts.append(f"<p class=quick>{html.escape(page['quick'])}</p>")
    parts += [f"<p><b>Machine:</b> {html.escape(results.machine.describe())} · "
              f"<b>date:</b> {html.escape(results.machine.date)}</p>",
              "".join(f"<p>{html.escape(line)}</p>" for line in page["about"]),
              f"<h2 id='runs'>{html.escape(titles['runs'])}</h2>{html_table(tables['runs'])}",
              "<ul>" + "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
                               for k, v in counts.items()) + "</ul>"]
    if page["trouble"]:
        parts.append(f"<p class=warn>{html.escape(TROUBLE)}</p>")
    if counts["unstable series"]:
        parts.append(f"<p>{html.escape(UNSTABLE_NOTE)}</p>")
    parts.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in page["notes"]) + "</ul>")
    later = [name for name in tables if name != "runs" and name not in SECTION_ORDER]
    for name in SECTION_ORDER:
        if name in tables:
            parts.append(f"<h2 id='{name}'>{html.escape(titles[name])}</h2>{html_table(tables[name])}")
    parts.append(_html_recommendation(page))
    for name in figures:
        data = base64.b64encode(pngs[name]).decode("ascii")
        parts.append(f"<figure id='{name}'><img alt='{name}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(CAPTIONS[name])}</figcaption></figure>")
    for name in later:
        parts.append(f"<h2 id='{name}'>{html.escape(titles[name])}</h2>{html_table(tables[name])}")
    parts.append("</body></html>")
    return "\n".join(parts)


def _markdown_recommendation(page) -> list[str]:
    rec = page["recommendation"]
    lines = [f"## {RECOMMEND_TITLE}", "", f"Scenario: {markdown_text(rec.scenario)}.", ""]
    if rec.text is None:
        return lines + [f"No recommendation: {markdown_text(rec.reason)}.", ""]
    return (lines + [markdown_table(rec.table()), ""]
            + [f"- {markdown_text(line)}" for line in rec.lines()] + [""])


def _markdown(results, page, figures, tables) -> str:
    titles = page["titles"]
    lines = [f"# {markdown_text(page['title'])}", ""]
    if page["quick"]:
        lines += [f"**{markdown_text(page['quick'])}**", ""]
    lines += [f"Machine: {markdown_text(results.machine.describe())} · date: "
              f"{markdown_text(results.machine.date)}", ""]
    lines += [markdown_text(line) for line in page["about"]] + [""]
    lines += [f"## {markdown_text(titles['runs'])}", "", markdown_table(tables["runs"]), ""]
    lines += [f"- {markdown_text(k)}: {markdown_text(v)}" for k, v in page["counts"].items()] + [""]
    if page["trouble"]:
        lines += [f"**{markdown_text(TROUBLE)}**", ""]
    lines += [f"- {markdown_text(note)}" for note in page["notes"]] + [""]
    for name in SECTION_ORDER:
        if name in tables:
            lines += [f"## {markdown_text(titles[name])}", "", markdown_table(tables[name]), ""]
    lines += _markdown_recommendation(page)
    for name in figures:
        lines += [f"![{name}]({name}.png)", "", CAPTIONS[name], ""]
    for name in tables:
        if name != "runs" and name not in SECTION_ORDER:
            lines += [f"## {markdown_text(titles[name])}", "", markdown_table(tables[name]), ""]
    return "\n".join(lines)
