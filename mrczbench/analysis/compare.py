"""Comparing two runs (`mrczbench compare BASE NEW`, mrczbench.commands.compare): what got
faster, slower, smaller or larger. This module holds the matching and the tests; the text
is compare_text.py's, the fairness warnings from run.json fairness.py's.

Cases are matched across runs by what they measure — dataset (name, dose, shape, dtype), format
and its full parameters, and op — never by run id, so runs on different days line up.
Two runs of the same code differ by more than their samples' spread (the machine's speed
drifts between runs), so the drift is measured from the runs and the tests are relative to
it: the run-wide shift (median log time ratio over all case/ops; reported, not gated), per
(case, op) a Welch t-test on log(seconds) relative to that shift with the op's drift between
runs added to the variance (`p`; bootstrap 95 % interval of the median ratio), corrected for
the many case/ops with Benjamini-Hochberg (`p adj`), and per contender its case/ops pooled
(a contender's slowdown moves all of them), with the drift between contenders in the
variance. A timing change counts only when its adjusted p < alpha and it is beyond the
factor. Why not Mann-Whitney: with 5 samples a side its smallest p is 2/252 = 0.0079, which
no correction over hundreds of tests lets through. With fewer than --min-samples valid
samples on a side the verdict is "insufficient samples" (also below 2 a side, whatever
--min-samples says: a t-test needs a variance). Medians and the "unstable" flag come from
mrczbench.analysis.stats, the rule the terminal summary and the report use.

Stored sizes are deterministic: a size change is compared exactly (within 0.1 %), with no
test. Warnings (stderr and the printed output) say when the comparison is weak: a run
recorded as busy at its start, BASE and NEW on different machines, mrczbench versions or
commits, or with different page-cache eviction methods.

Exit status (usable as a CI gate): 1 when something regressed — a case/op or a contender
significantly slower (after the correction) beyond the factor, stored size larger beyond the
factor, or a case that ran in BASE now errors —
2 for unreadable or missing result files, bad options, or when nothing was tested (no case
in common, or cases matched but none had --min-samples valid samples on both sides),
0 otherwise.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from mrczbench.analysis import stats
from mrczbench.errors import ResultsError
from mrczbench.units import format_number

MATCH_KEY = ["dataset", "dose", "frames", "ny", "nx", "dtype", "format", "params", "op"]
DEFAULT_FACTOR = 1.1
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 5
BOOTSTRAP_RESAMPLES = 2000
SAME_SIZE_TOLERANCE = 0.001  # stored sizes within 0.1 % count as unchanged

VERDICT_ORDER = ["REGRESSION", "slower", "error in NEW", "larger", "faster", "smaller",
                 "within factor", "no significant change", "insufficient samples",
                 "only in BASE", "only in NEW", "error in both"]


def _keyed(rows):
    """Rows with a hashable match key (NaN-free strings, so missing dose etc. still match)."""
    rows = rows.copy()
    # missing values (no dose for users' movies) become "" first: under pandas 3, astype(str)
    # leaves NaN in place and the join would fail
    keys = rows[MATCH_KEY].astype(object)
    rows["key"] = keys.where(keys.notna(), "").astype(str).agg(" | ".join, axis=1)
    return rows


def bootstrap_ratio_ci(base, new, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0):
    """95 % bootstrap interval of median(new) / median(base)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    base_medians = np.median(rng.choice(base, (resamples, len(base))), axis=1)
    new_medians = np.median(rng.choice(new, (resamples, len(new))), axis=1)
    low, high = np.percentile(new_medians / base_medians, [2.5, 97.5])
    return float(low), float(high)


TESTED_VERDICTS = ("slower", "faster", "within factor", "no significant change")
MIN_SAMPLES_FOR_TEST = 2  # a t-test needs a variance on each side
# a run-wide shift is the median over case/ops of several contenders: one contender's change
# must not move it (a quick dose sweep has 756 case/ops of 18 contenders)
MIN_CASES_FOR_SHIFT = 20
MIN_CONTENDERS_FOR_SHIFT = 3
MIN_CONTENDERS_FOR_POOLING = 5  # to estimate how far contenders drift apart between runs
# Contenders of the same code drift apart between two runs: measured 5-7 % (log sd 0.047 and
# 0.068) for pairs of quick dose sweeps (18 contenders) on a quiet shared 2-core VM. A robust
# estimate from a handful of contenders can come out near 0, so the pooled test assumes at
# least this drift (a smaller one only costs power, a larger one is estimated from the data).
MIN_CONTENDER_DRIFT = 0.05


def log_ratio(base, new) -> tuple[float, float, float] | None:
    """(d, se², df) of log(seconds): d = mean log NEW − mean log BASE (the log of the typical
    time ratio), se² its squared standard error and df Welch–Satterthwaite's degrees of
    freedom. Times are positive and skewed; their logs are close to normal and a ratio is a
    shift of them. None with fewer than MIN_SAMPLES_FOR_TEST samples on a side."""
    import numpy as np
    if min(len(base), len(new)) < MIN_SAMPLES_FOR_TEST:
        return None
    log_base, log_new = np.log(base), np.log(new)
    var_base = np.var(log_base, ddof=1) / len(log_base)  # squared standard errors
    var_new = np.var(log_new, ddof=1) / len(log_new)
    se2 = var_base + var_new
    df = se2 ** 2 / (var_base ** 2 / (len(log_base) - 1) + var_new ** 2 / (len(log_new) - 1)) \
        if se2 > 0 else math.inf
    return float(np.mean(log_new) - np.mean(log_base)), float(se2), float(df)


def welch_p(d: float, se2: float, df: float) -> float:
    """Two-sided p of Welch's t statistic d / se. No spread at all: p = 1 for d = 0, else 0."""
    from scipy.special import stdtr  # Student's t CDF (scipy.stats.ttest_ind is 20x slower)
    if se2 == 0:
        return 1.0 if d == 0 else 0.0
    return float(2 * stdtr(df, -abs(d) / math.sqrt(se2)))


def run_shift(table: list[dict]) -> float | None:
    """The run-wide log time ratio: the median d over every tested case/op, when there are
    enough of them (MIN_CASES_FOR_SHIFT, MIN_CONTENDERS_FOR_SHIFT) for a change of one
    contender to leave it alone; None otherwise (tests are then against a ratio of 1).
    Two runs of the same code differ run-wide by several per cent on a shared machine (its
    speed drifts between runs); the tests of case/ops and contenders are relative to it."""
    import numpy as np
    tested = [row for row in table if row["_d"] is not None]
    if len(tested) < MIN_CASES_FOR_SHIFT or \
            len({row["contender"] for row in tested}) < MIN_CONTENDERS_FOR_SHIFT:
        return None
    return float(np.median([row["_d"] for row in tested]))


def robust_variance(values) -> float:
    """The squared median absolute deviation (scaled to a normal's variance): a spread that
    the few case/ops or contenders that really changed do not inflate."""
    import numpy as np
    values = np.asarray(values, float)
    return float((1.4826 * np.median(np.abs(values - np.median(values)))) ** 2)


def drift_variance(table: list[dict], shift: float | None) -> dict[str, float]:
    """Per op, tau²: how far case/ops of the same code drift apart between two runs beyond
    their within-run spread (the machine's speed drifts over seconds to minutes, and a run
    measures each case in its own stretch of time). Estimated robustly from all case/ops of
    the op: their spread of d around the run-wide shift, less the typical within-run se².
    Empty (no drift assumed) when the run-wide shift could not be estimated."""
    import numpy as np
    if shift is None:
        return {}
    tested = [row for row in table if row["_d"] is not None]
    by_op: dict[str, list[dict]] = {}
    for row in tested:
        by_op.setdefault(row["op"], []).append(row)

    def tau2(rows):
        return max(0.0, robust_variance([r["_d"] - shift for r in rows])
                   - float(np.median([r["_se2"] for r in rows])))
    overall = tau2(tested)
    return {op: tau2(rows) if len(rows) >= MIN_CASES_FOR_SHIFT else overall
            for op, rows in by_op.items()}


def adjust_p_values(table: list[dict], alpha: float, factor: float, shift: float | None) -> None:
    """Welch p of every tested case/op relative to the run-wide shift, with the op's drift
    between runs added to its within-run variance; Benjamini-Hochberg over all of them
    (`p adj`), then the timing verdict of each from its adjusted p and its time ratio
    relative to the run (`vs run`)."""
    from scipy.stats import false_discovery_control
    tested = [row for row in table if row["_d"] is not None]
    if not tested:
        return
    drift = drift_variance(table, shift)
    for row in tested:
        relative = row["_d"] - (shift or 0.0)
        row["_var"] = row["_se2"] + drift.get(row["op"], 0.0)
        row["vs run"] = math.exp(relative)
        row["p"] = welch_p(relative, row["_var"], row["_df"])
    adjusted = false_discovery_control([row["p"] for row in tested], method="bh")
    for row, p_adj in zip(tested, adjusted):
        row["p adj"] = float(p_adj)
        row["time"] = verdict(p_adj, row["vs run"], alpha, factor)
        row["regression"] = row["regression"] or row["time"] == "slower"  # size may be one


def verdict(p_adj: float, ratio: float, alpha: float, factor: float) -> str:
    """The timing verdict of a tested case/op or contender."""
    if p_adj >= alpha:
        return "no significant change"
    return "slower" if ratio > factor else "faster" if ratio < 1 / factor else "within factor"


def contender_table(table: list[dict], alpha: float, factor: float, shift: float | None):
    """One row per contender: its case/ops pooled. A change of one contender shows in all of
    its case/ops at once, which one pooled test finds where each case/op alone is within its
    noise (quick runs). The pooled log ratio D (mean of d − shift) is tested against 0 with
    the variance of the mean plus tau², the spread of contenders' D that two runs of the same
    code show (estimated robustly from all contenders: the median absolute deviation, less
    what the case/ops' own noise explains; at least MIN_CONTENDER_DRIFT); Benjamini–Hochberg
    over the contenders. Needs MIN_CONTENDERS_FOR_POOLING contenders: None with fewer."""
    import numpy as np
    import pandas as pd
    from scipy.stats import false_discovery_control, norm
    tested = [row for row in table if row["_d"] is not None]
    groups: dict[str, list[dict]] = {}
    for row in tested:
        groups.setdefault(row["contender"], []).append(row)
    if shift is None or len(groups) < MIN_CONTENDERS_FOR_POOLING:
        return None
    names = sorted(groups)
    pooled = np.array([np.mean([r["_d"] - shift for r in groups[n]]) for n in names])
    own = np.array([sum(r["_var"] for r in groups[n]) / len(groups[n]) ** 2 for n in names])
    tau2 = max(MIN_CONTENDER_DRIFT ** 2, robust_variance(pooled) - float(np.median(own)))
    p = 2 * norm.sf(np.abs(pooled) / np.sqrt(own + tau2 + 1e-300))
    p_adj = false_discovery_control(p, method="bh")
    rows = []
    for name, d, p_one, p_one_adj in zip(names, pooled, p, p_adj):
        ratio = float(np.exp(d))
        time = verdict(p_one_adj, ratio, alpha, factor)
        rows.append({"contender": name, "case/ops": len(groups[name]), "vs run": ratio,
                     "p": float(p_one), "p adj": float(p_one_adj), "time": time,
                     "regression": time == "slower"})
    result = pd.DataFrame(rows)
    result.attrs["tau"] = math.sqrt(tau2)
    return result


def flag_counts(table, alpha: float, factor: float) -> dict[str, int]:
    """How many case/ops were tested, had p < alpha before the correction (and a time ratio
    relative to the run beyond the factor: what an uncorrected gate would flag), and are
    flagged after it."""
    if not len(table) or "p" not in table:
        return {"tested": 0, "raw significant": 0, "raw flagged": 0, "flagged": 0}
    p, ratio = table["p"].astype(float), table["vs run"].astype(float)
    beyond = (ratio > factor) | (ratio < 1 / factor)
    return {"tested": int(p.notna().sum()), "raw significant": int((p < alpha).sum()),
            "raw flagged": int(((p < alpha) & beyond).sum()),
            "flagged": int(table["time"].isin(["slower", "faster"]).sum())}


def check_options(factor: float, alpha: float, min_samples: int) -> None:
    if not factor >= 1:  # also refuses NaN
        raise ResultsError(f"--factor: expected a number >= 1. Got {factor}")
    if not 0 < alpha < 1:
        raise ResultsError(f"--alpha: expected a significance level with 0 < alpha < 1 "
                           f"(e.g. 0.05). Got {alpha}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise ResultsError(f"--min-samples: expected an integer >= 1. Got {min_samples}")


def nothing_tested(table) -> bool:
    """True when cases matched between the runs but none had enough valid samples on both
    sides to be tested (every timing verdict is "insufficient samples")."""
    if not len(table):
        return False
    return (not table["time"].isin(TESTED_VERDICTS).any()
            and (table["time"] == "insufficient samples").any())


@dataclasses.dataclass
class Comparison:
    cases: Any                         # DataFrame: one row per (case, op) found in either run
    contenders: Any                    # DataFrame: one row per contender, pooled (None: too few)
    shift: float | None                # run-wide time ratio NEW/BASE (None: too few case/ops)

    @property
    def regressed(self) -> bool:
        cases = bool(len(self.cases)) and bool(self.cases["regression"].any())
        return cases or self.contender_regressions > 0

    @property
    def contender_regressions(self) -> int:
        return 0 if self.contenders is None else int(self.contenders["regression"].sum())


def compare_rows(base_rows, new_rows, factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA,
                 min_samples: int = DEFAULT_MIN_SAMPLES):
    """The case/op table of compare_runs."""
    return compare_runs(base_rows, new_rows, factor, alpha, min_samples).cases


def compare_runs(base_rows, new_rows, factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA,
                 min_samples: int = DEFAULT_MIN_SAMPLES) -> Comparison:
    """Case/ops and contenders of two runs with their verdicts. Input: normalised rows
    (mrczbench.analysis.results.normalise_rows). `unstable` names the runs (BASE, NEW) whose
    series is unstable by stats.is_unstable."""
    import pandas as pd

    check_options(factor, alpha, min_samples)
    base, new = _keyed(base_rows), _keyed(new_rows)
    table = []
    base_cases, new_cases = dict(tuple(base.groupby("key"))), dict(tuple(new.groupby("key")))
    empty = base.iloc[:0]
    for key in sorted(set(base_cases) | set(new_cases)):
        b, n = base_cases.get(key, empty), new_cases.get(key, empty)
        first = (n if len(n) else b).iloc[0]
        b_times = b[b["error"].isna() & b["valid"]]["seconds"].dropna().to_numpy(float)
        n_times = n[n["error"].isna() & n["valid"]]["seconds"].dropna().to_numpy(float)
        b_summary = stats.summarise(b_times) if len(b_times) else None
        n_summary = stats.summarise(n_times) if len(n_times) else None
        row = {"dataset": first["dataset"], "contender": first["label"], "op": first["op"],
               "n BASE": len(b_times), "n NEW": len(n_times),
               "BASE median (s)": b_summary.median if b_summary else None,
               "NEW median (s)": n_summary.median if n_summary else None,
               "unstable": ", ".join(side for side, summary in (("BASE", b_summary), ("NEW", n_summary))
                                     if summary and summary.unstable),
               "time NEW/BASE": None, "vs run": None, "95% CI": "", "p": None, "p adj": None,
               "time": "", "size NEW/BASE": None, "size": "", "regression": False,
               "_d": None, "_se2": None, "_df": None}
        b_errors, n_errors = b["error"].notna().any(), n["error"].notna().any()
        if b.empty:
            row["time"] = "only in NEW"
        elif n.empty:
            row["time"] = "only in BASE"
        elif n_errors and not len(n_times):
            row["time"] = "error in both" if b_errors and not len(b_times) else "error in NEW"
            row["regression"] = row["time"] == "error in NEW"
        elif (len(b_times) < min_samples or len(n_times) < min_samples
              or min(len(b_times), len(n_times)) < MIN_SAMPLES_FOR_TEST):
            row["time"] = "insufficient samples"
            if len(b_times) and len(n_times):
                row["time NEW/BASE"] = row["NEW median (s)"] / row["BASE median (s)"]
        else:  # the verdict waits for the correction over all case/ops (adjust_p_values)
            low, high = bootstrap_ratio_ci(b_times, n_times)
            row["_d"], row["_se2"], row["_df"] = log_ratio(b_times, n_times)
            row.update({"time NEW/BASE": row["NEW median (s)"] / row["BASE median (s)"],
                        "95% CI": f"{format_number(low)}–{format_number(high)}"})
        b_size, n_size = b["stored_bytes"].dropna(), n["stored_bytes"].dropna()
        if len(b_size) and len(n_size) and b_size.median() > 0:
            size_ratio = n_size.median() / b_size.median()
            row["size NEW/BASE"] = size_ratio
            if size_ratio > 1 + SAME_SIZE_TOLERANCE:
                row["size"] = "larger"
                row["regression"] = row["regression"] or size_ratio > factor
            elif size_ratio < 1 - SAME_SIZE_TOLERANCE:
                row["size"] = "smaller"
        table.append(row)
    shift = run_shift(table)
    adjust_p_values(table, alpha, factor, shift)
    contenders = contender_table(table, alpha, factor, shift)
    table = pd.DataFrame(table).drop(columns=["_d", "_se2", "_df", "_var"], errors="ignore")
    if len(table):
        rank = {verdict: i for i, verdict in enumerate(VERDICT_ORDER)}
        table["_rank"] = [0 if r else rank.get(v, len(rank))
                          for r, v in zip(table["regression"], table["time"])]
        table = table.sort_values(["_rank", "dataset", "contender", "op"]).drop(columns="_rank")
    return Comparison(table.reset_index(drop=True), contenders,
                      None if shift is None else math.exp(shift))
