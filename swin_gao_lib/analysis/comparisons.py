"""Every comparison of a study, tested by a method that fits its data, and decided.

The comparisons are those the families imply (:mod:`.study`: each accumulating
configuration against its baseline, each equal-micro-batch one against its
plain partner) and those a study declares (:mod:`swin_gao_lib.config.design`);
a declared comparison the families also imply is one row.

**Method**, by a rule fixed before the data are seen: the *t*-interval
(:mod:`.stats`: paired over shared seeds, else Welch) when no run of either
side collapsed and the interval stays inside the range of an accuracy
difference; else a *permutation* test (:mod:`.resampling`: sign-flip when
paired, label permutation when not) with its inverted interval, TOST and
simulated MDE, and the collapse counts by Fisher's exact test. A diverged run
is a collapsed one, its accuracy scored at chance (:func:`per_seed`). Time,
memory and update counts always get the t-interval and no decision.

**Roles.** The paper's own comparison (:func:`is_paper_comparison`, unless a
study declares the roles) is *primary*, in a Holm family of its own; every
other is *secondary*. Holm, decisions and outcomes: :mod:`.decisions`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from swin_gao_lib.config import RunConfig
from swin_gao_lib.config.design import PRIMARY, SECONDARY, StudyDesign, configuration_key
from swin_gao_lib.analysis.resampling import (ACCURACY_RANGE, fisher_collapse_p,
                                              label_permutation, sign_flip, smallest_p)
from swin_gao_lib.analysis.decisions import decide_table
from swin_gao_lib.analysis.stats import compare, paired_seeds
from swin_gao_lib.analysis.study import (ACCURACY_METRICS, ALPHA, MARGINS, METRICS, PLAIN_BATCH,
                                         POWER, SAME_UPDATES, VS_BASELINE, VS_PLAIN, paper_run)
from swin_gao_lib.config.datasets import title as dataset_title
from swin_gao_lib.config.labels import versus_plain_label

#: A declared comparison's partner, as the ``partner`` column says.
VS_DECLARED = "declared"


def is_paper_comparison(arm: dict[str, Any], partner: dict[str, Any]) -> bool:
    """The paper's comparison: its GAO (in-step, summed, N > 1) against its baseline (N = 1)."""
    return (paper_run(arm) and paper_run(partner) and arm["accumulation_steps"] > 1
            and partner["accumulation_steps"] == 1)


def declared_keys(declared: Any, defaults: dict[str, Any]) -> tuple[str, str]:
    """A declared comparison's arm and partner as configuration keys."""
    return (configuration_key({**defaults, **declared.arm}),
            configuration_key({**defaults, **declared.versus}))


def pairs(configs: pd.DataFrame, design: StudyDesign | None) -> list[dict[str, Any]]:
    """(arm, partner, kind, declaration) for every comparison, inferred ones first."""
    by_key = {c["configuration"]: c for _, c in configs.iterrows()}
    pairs: list[dict[str, Any]] = []
    for _, c in configs.iterrows():
        if c["family"] != "baseline" and isinstance(c["baseline"], str):
            pairs.append({"arm": c, "partner": c["baseline"], "kind": VS_BASELINE})
    for _, c in configs.iterrows():
        if isinstance(c.get("plain"), str):
            pairs.append({"arm": c, "partner": c["plain"], "kind": VS_PLAIN})
    if design is None:
        return pairs
    defaults = RunConfig().to_dict()
    for d in design.comparisons:
        arm, partner = declared_keys(d, defaults)
        if arm not in by_key or partner not in by_key:
            continue  # not in this suite (a file run alone): nothing to compare
        match = next((p for p in pairs if p["arm"]["configuration"] == arm
                      and p["partner"] == partner), None)
        if match is None:
            match = {"arm": by_key[arm], "partner": partner, "kind": VS_DECLARED}
            pairs.append(match)
        match["declared"] = d
    return pairs


def not_made(configs: pd.DataFrame, design: StudyDesign | None) -> pd.DataFrame:
    """Declared comparisons without a run of their arm or of their partner (a file run alone):
    the findings list them rather than drop them."""
    rows = []
    keys = set(configs["configuration"]) if len(configs) else set()
    defaults = RunConfig().to_dict()
    for d in design.comparisons if design is not None else []:
        missing = [what for what, key in zip(("arm", "partner"), declared_keys(d, defaults))
                   if key not in keys]
        if missing:
            arm, versus = {**defaults, **d.arm}, {**defaults, **d.versus}
            differ = ", ".join(f"{k} {arm[k]} vs {versus[k]}" for k in sorted(arm)
                               if arm[k] != versus.get(k))
            rows.append({"dataset": dataset_title(arm["dataset"]), "role": d.role,
                         "label": d.label or f"{d.source}: {differ}",
                         "prediction": d.prediction, "why": d.why,
                         "missing": " and ".join(missing)})
    return pd.DataFrame(rows, columns=["dataset", "role", "label", "prediction", "why",
                                       "missing"])


def margins_for(title: str, declared: Any, design: StudyDesign | None,
                margins: dict[str, float]) -> dict[str, float]:
    """Each metric's margin in a data set (by title): the suite's, the design's, the declared
    comparison's, the later overriding."""
    out = dict(margins)
    if design is not None:
        for dataset, m in design.margins.items():
            if dataset_title(dataset) == title:
                out.update(m)
    if declared is not None:
        out.update(declared.margin)
    return out


def _collapses(rows: pd.DataFrame) -> tuple[int, int]:
    """(collapsed, runs) of one configuration: a diverged run is a collapsed one."""
    return int(rows["collapsed"].sum()), len(rows)


def _diverged(rows: pd.DataFrame) -> int:
    return int(rows["diverged"].sum())


def per_seed(rows: pd.DataFrame, metric: str, scoring: str = "at chance") -> dict[Any, float]:
    """One configuration's values of ``metric`` by seed.

    A diverged run has no measurement: its test accuracy is scored ``at chance``
    (1 / classes: a model that learned nothing; leaving it out would compare
    only the seeds that survived), ``at 0`` or ``dropped``; its other metrics stay out.
    """
    values = {}
    for seed, value, gone, chance in zip(rows["seed"], rows[metric], rows["diverged"],
                                         rows["chance"]):
        if gone and metric == "test_accuracy":
            if scoring != "dropped":
                values[seed] = chance if scoring == "at chance" else 0.0
        elif pd.notna(value):
            values[seed] = value
    return values


def confounds(arm: dict[str, Any], partner: dict[str, Any]) -> str | None:
    """What else differs between two configurations: more epochs (more compute), a rate
    scaled by rule to a batch it was never tuned at."""
    found = []
    if arm["epochs"] != partner["epochs"]:
        found.append(f"{arm['epochs'] / partner['epochs']:g}x the epochs and compute")
    for c in (arm, partner):
        if c["lr_scaling"] != "none" and c["batch_size"] != c["lr_base_batch"]:
            found.append(f"a rate scaled by rule ({c['lr_scaling']}) from B={c['lr_base_batch']}, "
                         f"not tuned at B={c['batch_size']}")
    return "; ".join(dict.fromkeys(found)) or None


def test_metric(a: dict, b: dict, bounded: bool, any_collapse: bool, confidence: float):
    """(method, reason, numbers) for one metric of one comparison (module docstring)."""
    t = compare(a, b, confidence)
    if not bounded or not t.tested:
        return t.test, "", _t_numbers(t)
    inside = ACCURACY_RANGE[0] <= t.ci_low and t.ci_high <= ACCURACY_RANGE[1]
    if not any_collapse and inside:
        return t.test, "no run collapsed: one mode, t fits", _t_numbers(t)
    seeds = paired_seeds(a, b)
    if seeds is not None:
        perm = sign_flip([a[s] for s in seeds], [b[s] for s in seeds])
    else:
        perm = label_permutation(list(a.values()), list(b.values()))
    reason = ("some runs collapsed: two modes, t does not fit" if any_collapse
              else "the t-interval left the range of an accuracy difference")
    if perm.exact:  # few seeds cap how small p can be, before any correction
        reason += f"; smallest attainable p {smallest_p(perm.n_a, perm.n_b, seeds is not None):.2g}"
    low, high = perm.interval(confidence)
    return perm.test, reason, {
        "difference": perm.estimate, "ci_low": low, "ci_high": high, "t": math.nan,
        "df": math.nan, "p_value": perm.p_value, "n": perm.n_a, "n_baseline": perm.n_b,
        "se": math.nan, "mde": perm.minimum_detectable_effect(ALPHA, POWER),
        "significant": int(np.sign(perm.estimate)) if low > 0 or high < 0 else 0,
        "_tost": perm.tost_p}


def _t_numbers(t) -> dict[str, Any]:
    return {"difference": t.estimate, "ci_low": t.ci_low, "ci_high": t.ci_high,
            "t": t.statistic, "df": t.df, "p_value": t.p_value, "n": t.n_a,
            "n_baseline": t.n_b, "se": t.se, "significant": t.significant(),
            "mde": t.minimum_detectable_effect(ALPHA, POWER),
            "_tost": (lambda m: t.equivalence(m).p_value) if t.tested else (lambda m: math.nan)}


def comparisons(runs: pd.DataFrame, configs: pd.DataFrame, confidence: float = 0.95,
                margins: dict[str, float] | None = None,
                design: StudyDesign | None = None) -> pd.DataFrame:
    """Every comparison, metric by metric: difference, interval, test, decision (module doc).

    ``partner``: ``baseline``, ``plain`` or ``declared``; ``point``: the comparison
    within its control (``N=4``, ``B=512``; with both update counts where they
    should agree and do not); ``test`` and ``method_reason``; ``mde``; ``margin``
    and ``tost_p``; Holm-adjusted ``p_holm``, ``tost_p_holm``, ``collapse_p_holm``
    and the rest of :func:`.decisions.decide_table`; collapse counts and
    Fisher's ``collapse_p``; declared ``prediction`` and ``why``; ``same_values_as``:
    the label of an earlier row with the same values seed by seed (one result
    under two questions).
    """
    base_margins = MARGINS if margins is None else margins
    by_config = {k: g for k, g in runs.groupby("configuration", sort=False)}
    info = configs.set_index("configuration")
    defaults = RunConfig().to_dict()
    rows: list[dict[str, Any]] = []
    tost_of: list[Callable[[float], float]] = []
    values: list[tuple] = []  # each row's (data set, metric, both sides' values by seed)
    for pair in pairs(configs, design):
        c, partner, kind = pair["arm"], pair["partner"], pair["kind"]
        declared = pair.get("declared")
        p = info.loc[partner]
        mine, base = by_config[c["configuration"]], by_config[partner]
        n_mine, n_partner = c["optimizer_updates_mean"], p["optimizer_updates_mean"]
        if kind == VS_PLAIN:
            same = bool(n_mine == n_partner) if pd.notna(n_mine) and pd.notna(n_partner) else None
            control, label = versus_plain_label(c, same), f"{c['label']} vs plain"
        elif kind == VS_DECLARED:
            same = None
            label = declared.label or f"{c['label']} vs {p['label']}"
            control = label
        else:
            same = c["same_updates"] if c["family"] in SAME_UPDATES else None
            control, label = c["control"], c["label"]
        if declared is not None and declared.label:
            control = label = declared.label
        point = f"B={c['batch']}" if c["family"] == PLAIN_BATCH else f"N={c['N']}"
        if same is False or same == False:  # noqa: E712 (numpy bools)
            point += f" ({n_mine:.0f} vs {n_partner:.0f} updates)"
        arm_cfg = {**defaults, **json.loads(c["configuration"])}
        partner_cfg = {**defaults, **json.loads(partner)}
        role = (declared.role if declared is not None
                else SECONDARY if design is not None and design.comparisons
                else PRIMARY if is_paper_comparison(arm_cfg, partner_cfg) else SECONDARY)
        k_a, n_a = _collapses(mine)
        k_b, n_b = _collapses(base)
        row_margins = margins_for(c["dataset"], declared, design, base_margins)
        for metric in METRICS:
            a, b = per_seed(mine, metric), per_seed(base, metric)
            if not a or not b:
                continue
            method, reason, numbers = test_metric(a, b, metric in ACCURACY_METRICS, k_a + k_b > 0,
                                                  confidence)
            scored = _diverged(mine) + _diverged(base) if metric == "test_accuracy" else 0
            if scored:
                reason += f"; {scored} diverged run{'s' if scored > 1 else ''} scored at chance"
            tost_fn = numbers.pop("_tost")
            # the re-scored train accuracy is an accuracy: it is decided at test accuracy's margin
            margin = row_margins.get(metric, row_margins.get("test_accuracy", np.nan)
                                     if metric == "train_eval_accuracy" else np.nan)
            mean, base_mean = float(np.mean(list(a.values()))), float(np.mean(list(b.values())))
            values.append((c["dataset"], metric, tuple(sorted(a.items())),
                           tuple(sorted(b.items()))))
            rows.append({
                "dataset": c["dataset"], "control": control, "family": c["family"],
                "label": label, "arm_label": c["label"], "partner": kind,
                "partner_label": p["label"], "point": point,
                "role": role, "partner_batch": p["batch"], "updates": n_mine,
                "partner_updates": n_partner, "same_updates": same,
                "optimizer": c["optimizer"], "N": c["N"], "batch": c["batch"],
                "micro_batch": c["micro_batch"], "mode": c["mode"], "reduction": c["reduction"],
                "lr_scaling": c["lr_scaling"], "metric": metric,
                "baseline_mean": base_mean, "mean": mean,
                "ratio": mean / base_mean if base_mean else np.nan,
                "test": method, "method_reason": reason, **numbers,
                "margin": margin, "tost_p": tost_fn(margin) if margin > 0 else np.nan,
                "collapsed": k_a, "runs": n_a, "partner_collapsed": k_b, "partner_runs": n_b,
                "diverged": _diverged(mine), "partner_diverged": _diverged(base),
                "collapse_p": fisher_collapse_p(k_a, n_a, k_b, n_b) if k_a + k_b else np.nan,
                "confounds": confounds(arm_cfg, partner_cfg),
                "prediction": declared.prediction if declared is not None else None,
                "why": declared.why if declared is not None else None,
            })
            tost_of.append(tost_fn)
    # An identity (the SGD sum at lr/4 is the mean at lr) gives two questions one set of
    # numbers: the later row names the first, a primary row (the paper's) counting first
    first_with: dict[tuple, str] = {}
    for i in sorted(range(len(rows)), key=lambda i: rows[i]["role"] != PRIMARY):
        first = first_with.setdefault(values[i], rows[i]["label"])
        rows[i]["same_values_as"] = first if first != rows[i]["label"] else None
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    decide_table(table, tost_of)
    return table
