"""The text of a comparison (mrczbench.analysis.compare): its tables, the run-wide shift,
the pooled contenders and the one-line verdict that `mrczbench compare` prints."""
from __future__ import annotations

import math

from mrczbench.analysis.compare import (DEFAULT_ALPHA, MIN_CASES_FOR_SHIFT,
                                        MIN_CONTENDERS_FOR_POOLING, MIN_CONTENDERS_FOR_SHIFT,
                                        Comparison, flag_counts)
from mrczbench.units import format_number, format_table


def _format(value) -> str:
    if isinstance(value, bool):
        return "REGRESSION" if value else ""
    return format_number(value)


CASE_COLUMNS = ["dataset", "contender", "op", "n BASE", "n NEW", "BASE median (s)",
                "NEW median (s)", "unstable", "time NEW/BASE", "vs run", "95% CI", "p", "p adj",
                "time", "size NEW/BASE", "size", "regression"]
CONTENDER_COLUMNS = ["contender", "case/ops", "vs run", "p", "p adj", "time", "regression"]


def render(table, columns=CASE_COLUMNS) -> str:
    cells = [[_format(v) for v in row] for row in table[columns].itertuples(index=False)]
    return format_table(columns, cells, rule=True)


def shift_line(comparison: Comparison, factor: float) -> str:
    """What the run-wide shift is and what the tests make of it."""
    if comparison.shift is None:
        return ("Run-wide shift: not estimated (fewer than "
                f"{MIN_CASES_FOR_SHIFT} timed case/ops of {MIN_CONTENDERS_FOR_SHIFT} contenders); "
                "case/ops are tested against a time ratio of 1.")
    text = (f"Run-wide shift: NEW took ×{format_number(comparison.shift)} the time of BASE "
            "(median over all timed case/ops); case/ops and contenders are tested relative to it "
            "(`vs run`).")
    if comparison.shift > factor or comparison.shift < 1 / factor:
        text += (f" It is beyond ×{factor:g}: the machine ran at another speed, or a change "
                 "slowed or sped up every contender alike; compare cannot tell which (re-run "
                 "BASE and NEW back to back on a quiet machine).")
    return text


def contender_line(comparison: Comparison, factor: float, alpha: float) -> str:
    if comparison.contenders is None:
        return (f"Contenders pooled: not tested (needs {MIN_CONTENDERS_FOR_POOLING} or more "
                "contenders with timed case/ops and a run-wide shift).")
    table = comparison.contenders
    slower = ", ".join(f"{name} ×{format_number(ratio)}" for name, ratio in
                       zip(table["contender"][table["regression"]], table["vs run"][table["regression"]]))
    return (f"Contenders pooled over their case/ops: {len(table)} tested, "
            f"{comparison.contender_regressions} slower beyond ×{factor:g} (p adj < {alpha:g})"
            f"{': ' + slower if slower else ''}; drift between runs of one contender "
            f"(tau) ×{format_number(math.exp(table.attrs['tau']))}.")


def summary_line(table, factor: float, alpha: float = DEFAULT_ALPHA,
                 contender_regressions: int = 0) -> str:
    counts = {name: int((table["time"] == name).sum())
              for name in ("slower", "faster", "within factor", "no significant change",
                           "insufficient samples", "error in NEW", "error in both",
                           "only in BASE", "only in NEW")}
    counts["larger"] = int((table["size"] == "larger").sum())
    counts["smaller"] = int((table["size"] == "smaller").sum())
    parts = [f"{count} {name}" for name, count in counts.items() if count]
    regressions = int(table["regression"].sum())
    worse = [f"{regressions} case/op(s)" if regressions else "",
             f"{contender_regressions} contender(s)" if contender_regressions else ""]
    verdict = (f"REGRESSION: {' and '.join(filter(None, worse))} worse beyond ×{factor:g}"
               if regressions or contender_regressions else f"no regression beyond ×{factor:g}")
    flags = flag_counts(table, alpha, factor)
    tests = ""
    if flags["tested"]:
        tests = (f" Of {flags['tested']} timed case/op(s), {flags['raw significant']} had p < "
                 f"{alpha:g} before correction ({flags['raw flagged']} beyond ×{factor:g}); "
                 f"{flags['flagged']} stay significant beyond ×{factor:g} after "
                 f"Benjamini-Hochberg (p adj < {alpha:g}).")
    return (f"{len(table)} case/op(s): {', '.join(parts) or 'nothing to compare'}.{tests} "
            f"{verdict}.")
