"""The report's text sections beyond figures and tables: the paper's claims checked from the
rows (analysis.findings), the recommended defaults for a stated scenario (analysis.recommend)
and gain recovery beside RELION's published percentages (issue 11).

Each builder takes the loaded results (and, for the tables, a case table) and returns what the
writer shows, or None / a one-line reason when the data does not support the section."""
from __future__ import annotations

import dataclasses
import json
import math

from mrczbench.analysis.report.select import FIG3, figure_key, params_of
from mrczbench.analysis.results import LoadedResults
from mrczbench.errors import MrczbenchError

GAIN_FORMAT = "gain-counts"  # a gain-normalised movie stored as integer counts + gain
INNER_KEYS = ("codec", "level", "compression", "filter", "blocksize")  # passed to the inner format
RELION_SOURCE = ("RELION movie-compression page, \"K2 counting, gain normalised from EPU\": "
                 "EMPIAR-10317, 40 x 3838 x 3710 float32 from EPU, mean 1.45; 32-bit float MRC "
                 "2,278,237,824 bytes; 1502 pixels unreliable")
# (what RELION did, stored as % of the float32 MRC, the mrczbench contender family it matches)
RELION_K2_FLOAT = [
    ("IMOD mrc2tif, lzw (float32)", 68.3, ("direct", "tiff", "lzw")),
    ("IMOD mrc2tif, zip level 6 (float32)", 55.9, ("direct", "tiff", "deflate")),
    ("bzip2 (float32)", 32.4, ("direct", "bzip2", None)),
    ("relion_convert_to_tiff after gain estimation", 11.9, ("counts", "tiff", None)),
    ("8-bit integer MRC, uncompressed (gain not normalised)", 25.0, ("counts", "mrc", None)),
]

# The stated default scenario of the "Recommended defaults" section (issue 12)
DEFAULT_SCENARIO = dict(detector="counting", movies_per_hour=60.0, link_gbps=1.0,
                        storage_cost=150.0, hours_per_year=24 * 365 * 0.7, goal="transfer",
                        readers=("any",), allow_conversion=False, headroom=0.25)


# --- findings ------------------------------------------------------------------------------------
def findings_table(results: LoadedResults):
    """claim / verdict / evidence per paper claim (analysis.findings), with the machine's L2
    cache and physical cores from run.json."""
    import pandas as pd
    from mrczbench.analysis.findings import check_results
    found = check_results(results)
    return pd.DataFrame([{"claim (McLeod et al. 2017)": f.claim, "verdict": f.verdict,
                          "evidence (numbers from these results)": f.evidence,
                          "confidence": f.confidence} for f in found])


# --- recommended defaults ----------------------------------------------------------------------
@dataclasses.dataclass
class Recommendation:
    text: str | None        # recommend_text.as_text of the default scenario, None when none
    document: dict | None   # recommend_text.as_json of it
    reason: str             # why there is none ("" when there is one)
    scenario: str           # the stated scenario in one line

    def table(self):
        """The recommended configuration and its alternatives, one row each."""
        import pandas as pd
        if self.document is None:
            return None
        entries = [self.document["recommended"], *self.document["alternatives"]]
        tied = set(self.document.get("tied") or [])
        return pd.DataFrame([{
            "rank": "recommended" if i == 0 else ("tied" if e["label"] in tied else str(i + 1)),
            "contender": e["label"],
            "config": json.dumps(e["config"], sort_keys=True), "threads": e["threads"],
            "ratio (stored/raw)": e["ratio"],
            "write (MiB/s)": e["write_mib_per_s"],
            "write 95% CI (MiB/s)": _interval(e.get("write_interval_mib_per_s")),
            "read (MiB/s)": e["read_mib_per_s"], "read op": e["read_op"],
            "read 95% CI (MiB/s)": _interval(e.get("read_interval_mib_per_s")),
            **{f"{stage} (s/movie)": e["seconds_per_movie"][stage]
               for stage in ("write", "send", "read", "transfer")},
            "keeps up": "yes" if e["keeps_up"] else "NO", "margin": e["margin"],
            "TB/year": e["tb_per_year"], "$/year": e["cost_per_year"],
            "derived speeds": "; ".join(f"{stage}: {note}" for stage, note in
                                        (("write", e["write_note"]), ("read", e["read_note"])) if note),
        } for i, e in enumerate(entries)])

    def lines(self) -> list[str]:
        """How to use the recommendation, and the model's notes, one line each."""
        if self.document is None:
            return []
        use = [f"{name}: {snippet}" for name, snippet in
               self.document["recommended"]["snippets"].items()]
        return [f"Scenario: {self.document.get('scenario', self.scenario)}", *use] + \
            [f"Note: {note}" for note in self.document["notes"]]


def _interval(pair) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f"{pair[0]:,.0f}-{pair[1]:,.0f}"


def _movie_rows(rows):
    """8-bit movie rows (the K2 counting scenario's pixel type), metadata suites left out."""
    rows = rows[rows["figure"].map(figure_key) != figure_key(FIG3)]
    # recommend reads each contender's config from its params (a JSON object)
    return rows[rows["dtype"].isin(["int8", "uint8"]) & rows["params"].str.startswith("{")]


def recommended_defaults(results: LoadedResults) -> Recommendation:
    """recommend() for DEFAULT_SCENARIO at the dose of the rows nearest 1 e/px/frame and the
    physical cores of the runs' machine."""
    from mrczbench.analysis import recommend as model
    from mrczbench.analysis.recommend_text import as_json, as_text
    from mrczbench.movies.datasets import load_spec
    import numpy as np
    rows = _movie_rows(results.rows)
    doses = [d for d in rows["dose"].dropna().unique() if d > 0]
    cores = results.machine.physical_cores or 1
    stated = (f"K2 counting (60 x 3838 x 3710 int8), 60 movies/hour, 1 Gbit/s at "
              f"{model.DEFAULT_LINK_FRACTION:g} usable, goal transfer, any reader, "
              f"{cores} writer and reader cores (the runs' machine)")
    if rows.empty or not doses:
        return Recommendation(None, None, "no 8-bit movie rows with a dose in these results",
                              stated)
    dose = float(min(doses, key=lambda d: abs(math.log(d))))
    preset = load_spec(model.DETECTORS["counting"])
    scenario = model.Scenario(
        dose=dose, shape=tuple(preset.shape), frames=int(preset.frames),
        bytes_per_pixel=np.dtype(preset.dtype).itemsize, link_fraction=model.DEFAULT_LINK_FRACTION,
        writer_cores=cores, reader_cores=cores, **DEFAULT_SCENARIO)
    stated = f"{stated}; ratios at dose {dose:g} e/px/frame (the rows' dose nearest 1)"
    try:
        result = model.recommend(rows, scenario)
    except MrczbenchError as exc:
        return Recommendation(None, None, str(exc), stated)
    return Recommendation(as_text(result), as_json(result), "", stated)


# --- gain recovery beside RELION ---------------------------------------------------------------
def _family(case) -> tuple[str, str, str | None, dict]:
    """('counts' or 'direct', format, compression, settings) of a gain-recovery case. The
    settings of counts are what it passes to its inner format (the non-null ones); a direct
    case of that format with those settings is its twin."""
    params = params_of(case["params"])
    params.pop("threads", None)
    if case["format"] == GAIN_FORMAT:
        inner = str(params.pop("inner", ""))
        settings = {k: v for k, v in params.items() if k in INNER_KEYS and v is not None}
        return "counts", inner, params.get("compression"), {**settings, "format": inner}
    return "direct", str(case["format"]), params.get("compression"), params


def _is_twin(direct: dict, counts: dict) -> bool:
    return all(direct.get(key) == value for key, value in counts.items())


def _relion_for(kind: str, fmt: str, compression) -> tuple[str, float] | None:
    for name, percent, (r_kind, r_format, r_compression) in RELION_K2_FLOAT:
        if (kind, fmt) == (r_kind, r_format) and r_compression in (None, compression):
            return name, percent
    return None


def _percent(value) -> float | None:
    return 100 * value if value is not None and value == value else None


def gain_table(cases):
    """Float32 movies stored directly vs after gain recovery (format gain-counts), beside
    RELION's published percentages for a K2 gain-normalised movie. None without gain-counts
    cases."""
    import pandas as pd
    counts = cases[cases["format"] == GAIN_FORMAT]
    if counts.empty:
        return None
    keep = cases[cases["dataset"].isin(counts["dataset"].unique())
                 & cases["run_id"].isin(counts["run_id"].unique())]
    keep = keep[(keep["format"] == GAIN_FORMAT) | (keep["dtype"] == "float32")]
    families = {index: _family(case) for index, case in keep.iterrows()}
    table = []
    for index, case in keep.sort_values(["dataset", "format", "ratio"]).iterrows():
        kind, fmt, compression, settings = families[index]
        relion = _relion_for(kind, fmt, compression)
        twin = None
        if kind == "counts":
            twin = next((keep.loc[i, "ratio"] for i, f in families.items() if f[0] == "direct"
                         and keep.loc[i, "run_id"] == case["run_id"]
                         and keep.loc[i, "dataset"] == case["dataset"] and _is_twin(f[3], settings)),
                        None)
        encode = case.get("encode_mibs")
        table.append({
            "dataset": case["dataset"], "contender": case["label"],
            "stored as": "integer counts + gain" if kind == "counts" else "float32 directly",
            "stored (% of float32)": _percent(case["ratio"]),
            "same format on float32 (%)": _percent(twin),
            "compress (MiB/s)": encode if encode == encode else case.get("write_mibs"),
            "decompress (MiB/s)": case.get("decode_mibs"),
            "RELION (K2, EMPIAR-10317)": relion[0] if relion else "",
            "RELION stored (% of float32)": relion[1] if relion else None,
        })
    return pd.DataFrame(table)


def gain_note(table) -> str:
    """What the gain-recovery table shows, its source, and the size cut per format."""
    pairs = table[table["same format on float32 (%)"].notna()]
    cuts = [f"{row['contender']}: {row['same format on float32 (%)']:.1f} % -> "
            f"{row['stored (% of float32)']:.1f} %" for _, row in pairs.iterrows()]
    text = ("Gain recovery (integer counts + gain, float32 values of the unreliable pixels "
            "kept) against storing the gain-normalised float32 movie directly; sizes in % of "
            "the float32 movie. RELION's numbers: " + RELION_SOURCE + ".")
    if cuts:
        text += " Here: " + "; ".join(cuts) + "."
    return text


def json_text(document) -> str:
    return json.dumps(document, indent=1, default=str)
