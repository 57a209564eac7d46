"""Which cases each figure and table shows.

Table 1 and Fig. 3 take the cases of suites that declare them (the suite's `figure` field,
recorded in run.json and carried by every row as `figure`); whatever the suite file is called.
Fig. 3 cases (metadata serialisation) are not movie compression, so the movie figures and
tables leave them out. The sweep figures (Fig. 2a-d) take any movie cases whose data sweeps
their parameter. Input everywhere: a case table (stats.case_table)."""
from __future__ import annotations

import json
import math
import re

from mrczbench.units import format_number

TABLE1 = "Table 1"
FIG3 = "Fig. 3"
MIN_SWEEP_POINTS = 3  # a sweep figure needs a series with at least this many x values


def figure_key(text) -> str:
    """'Fig. 3', 'fig 3' and 'FIG3' name the same figure."""
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


def declared(cases, figure: str):
    """Cases of suites that declare `figure` (e.g. TABLE1)."""
    return cases[cases["figure"].map(figure_key) == figure_key(figure)]


def movie_cases(cases):
    """Cases of movie compression: all but those of suites that declare Fig. 3."""
    return cases[cases["figure"].map(figure_key) != figure_key(FIG3)]


def first_op(cases, *ops: str) -> str | None:
    """Of `ops`, the one timed for the most cases, the earlier on a tie (e.g. encode, else
    write: a table of file formats without in-memory codecs still gets a speed axis)."""
    counts = [(cases[f"{op}_mibs"].notna().sum() if f"{op}_mibs" in cases.columns else 0, -i, op)
              for i, op in enumerate(ops)]
    count, _, op = max(counts)
    return op if count else None


def params_of(value: str) -> dict:
    """The format config of a case (canonical JSON text) as a dict; {} when it is none."""
    try:
        params = json.loads(value) if value else {}
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def series_names(cases, swept: str):
    """A readable name per case for a sweep over `swept`: format, codec and the parameters that
    vary between cases (other than `swept`), plus dataset and run when several are shown."""
    import pandas as pd
    params = cases["params"].map(params_of)
    keys = sorted({key for p in params for key in p} - {"format", "codec", swept})
    varying = [key for key in keys if len({format_number(p.get(key)) for p in params}) > 1]
    context = [column for column in ("dataset", "run_id")
               if column != swept and swept != "dose" and cases[column].nunique() > 1]

    def name(index) -> str:
        row, p = cases.loc[index], params.loc[index]
        parts = [row["format"]]
        codec = p.get("codec", row["codec"])
        if codec is not None and str(codec) not in ("", "nan", "None"):
            parts.append(str(codec))
        parts += [f"{key}={format_number(p.get(key))}" for key in varying]
        parts += [f"{column}={row[column]}" for column in context]
        return " ".join(parts)

    return pd.Series([name(i) for i in cases.index], index=cases.index, dtype=object)


def main_dataset(cases) -> str:
    """The dataset the scatter and link figures use: most cases, then dose nearest 1 e/px/frame."""
    counts = cases.groupby("dataset").agg(n=("case_id", "size"), dose=("dose", "first"))
    counts["distance"] = counts["dose"].fillna(1.0).clip(lower=1e-6).map(math.log).abs()
    return counts.sort_values(["n", "distance"], ascending=[False, True]).index[0]


def sweep_cases(cases, column: str):
    """Movie cases in series where `column` takes MIN_SWEEP_POINTS values or more, with a
    `series` name and an `origin` (suite/kind/dtype) column."""
    import pandas as pd
    cases = movie_cases(cases)
    cases = cases[cases[column].notna()]
    if column == "blocksize":
        cases = cases[cases["blocksize"] > 0]  # 0 = automatic, not a point on the axis
    if cases.empty:
        return cases
    # A series never mixes suites or kinds of data: the detectors suite's doses (one per
    # detector model) are not a dose sweep, and must not join the Poisson dose sweep's lines.
    origin = (cases["suite"].astype(str) + "/" + cases["dataset_kind"].astype(str) + "/"
              + cases["dtype"].astype(str))
    cases = cases.assign(origin=origin)
    # a dose sweep changes the dataset, not the contender: its series are the contenders;
    # other sweeps name what varies within their own suite
    if column == "dose":
        names = cases["label"]
    else:
        names = pd.concat([series_names(part, column) for _, part in cases.groupby("origin")])
    cases = cases.assign(series=names)
    counts = cases.groupby(["origin", "series"])[column].nunique()
    swept = counts[counts >= MIN_SWEEP_POINTS].index
    cases = cases[cases.set_index(["origin", "series"]).index.isin(swept)]
    if cases["origin"].nunique() > 1:  # name where each series came from
        cases = cases.assign(series=cases["series"] + " [" + cases["origin"] + "]")
    return cases


def speed_cases(cases):
    """Movie cases on the main dataset with a compression speed and a ratio, the op timed
    (encode, else write) and the dataset."""
    cases = movie_cases(cases)
    op = first_op(cases, "encode", "write")
    if cases.empty or op is None:
        return cases.iloc[0:0], None, None
    dataset = main_dataset(cases[cases[f"{op}_mibs"].notna()])
    cases = cases[(cases["dataset"] == dataset) & cases[f"{op}_mibs"].notna()
                  & cases["ratio"].notna()]
    return cases, op, dataset


def link_contenders(cases):
    """Cases with compress and decompress speeds on the main dataset, their ops and dataset."""
    cases, encode_op, dataset = speed_cases(cases)
    decode_op = first_op(cases, "decode", "read_warm", "read_cold")
    if cases.empty or decode_op is None:
        return cases.iloc[0:0], None, None, dataset
    cases = cases[cases[f"{decode_op}_mibs"].notna()]
    return cases, encode_op, decode_op, dataset


def truthy(value) -> bool:
    """True for a set flag; False for None, NaN and false."""
    return value is not None and value == value and bool(value)  # value == value: not NaN
