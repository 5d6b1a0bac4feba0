"""What the Study page and the study picker show (no Streamlit): seed summaries, variant
effects and cell status, read from a study's tables and study.json (never recomputed).

The tables are bt_core.runs.study_summary's (formats: bt_core.artifacts.study_tables):
``cells`` (one row per cell and metric), ``groups`` (mean / sd over seeds per model, variant
and metric), ``effects`` (variant − baseline, seed-matched, with a 95% interval and its
method) and ``flips`` (seed-to-seed flip rate per model and variant).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from bt_core.artifacts.study import CellRecord, StudySummary

from bt_dashboard.views import figures
from bt_dashboard.views.common import MISSING

MODEL, VARIANT, METRIC = "Model", "Variant", "Metric"
FLIP_RATE = "Flip rate"
EVAL_PREFIX = "eval/"
# The test split's metrics, in the order the page lists them; external ones follow, then the shortcut score.
TEST_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "macro_auc": "Macro AUC",
                "dedup_accuracy": "De-duplicated accuracy"}
SHORTCUT_SCORE = "shortcut_score"
SHORTCUT_LABEL = "Shortcut score"
# The test split's shortcut measures (the parts score, then the counterfactual severity), in words.
SHORTCUT_METRICS = {SHORTCUT_SCORE: SHORTCUT_LABEL, "shortcut_severity": "Shortcut severity"}
# An external score's name in words where replacing "_" is not enough.
SCORE_WORDS = {"tumor_auc": "tumor AUC", "macro_auc": "macro AUC", "micro_auc": "micro AUC", "macro_f1": "macro F1",
               "weighted_f1": "weighted F1", "ece": "ECE", "sensitivity_at_95_specificity": "sensitivity @ 95% spec.",
               "specificity_at_95_sensitivity": "specificity @ 95% sens."}
# Effects the page shows: these, and every external evaluation's sensitivity.
EFFECT_METRICS = ("accuracy", "dedup_accuracy", *SHORTCUT_METRICS)
EFFECT_EVAL_METRICS = ("sensitivity", SHORTCUT_SCORE)
# An external evaluation's scores its table shows first (the rest behind "Every score").
EVAL_HEADLINE = ("accuracy", "sensitivity", "specificity", "tumor_auc", SHORTCUT_SCORE)
STATUS_COLUMNS = {"cell_id": "Cell", "model": MODEL, "variant": VARIANT, "seed": "Seed", "status": "Status",
                  "reason": "Reason", "attempts": "Attempts", "seconds": "Seconds", "finished": "Finished"}
STATUS_ORDER = ("failed", "pending", "done")
NO_CELL_DONE = "No finished cell yet: the study's tables are empty."


def study_label(summary: StudySummary) -> str:
    """The study picker's line: id and cells done, or why it cannot be opened."""
    if summary.error:
        return f"⚠ {summary.study_id} — cannot open: {summary.error}"
    failed = f", {summary.failed} failed" if summary.failed else ""
    return f"{summary.study_id} · {summary.done}/{summary.cells} cells done{failed}"


def cell_run_label(cell: CellRecord) -> str:
    """A cell's line in the run picker: model, variant, seed."""
    return f"{cell.model} · {cell.variant} · seed {cell.seed}"


# --------------------------------------------------------------------------- metrics


def metric_label(metric: str) -> str:
    """A metric name of the tables in words: ``eval/br35h/sensitivity`` -> "br35h: sensitivity"."""
    if metric in TEST_METRICS:
        return TEST_METRICS[metric]
    if metric in SHORTCUT_METRICS:
        return SHORTCUT_METRICS[metric]
    if metric.startswith(EVAL_PREFIX) and metric.count("/") >= 2:
        _prefix, name, score = metric.split("/", 2)
        return f"{name}: {SCORE_WORDS.get(score, score.replace('_', ' '))}"
    return metric.replace("_", " ")


def evaluation_name(metric: str) -> str | None:
    """The external evaluation a metric belongs to (None: the test split or the shortcut score)."""
    return metric.split("/", 2)[1] if metric.startswith(EVAL_PREFIX) and metric.count("/") >= 2 else None


def ordered_metrics(metrics: Sequence[str]) -> list[str]:
    """The test split's metrics first (their fixed order), then external ones (in the order
    given), then the shortcut score; unknown names after them."""
    present = list(dict.fromkeys(metrics))
    test = [metric for metric in TEST_METRICS if metric in present]
    external = [metric for metric in present if evaluation_name(metric) is not None]
    shortcut = [metric for metric in SHORTCUT_METRICS if metric in present]
    other = [metric for metric in present if metric not in {*test, *external, *shortcut}]
    return [*test, *external, *shortcut, *other]


def metric_groups(metrics: Sequence[str]) -> dict[str, list[str]]:
    """The page's tabs: "Test split", one per external evaluation, "Shortcuts" (score and
    flip rate: always, the flip rate has its own table)."""
    ordered = ordered_metrics(metrics)
    groups: dict[str, list[str]] = {"Test split": [metric for metric in ordered if metric in TEST_METRICS]}
    for metric in ordered:
        name = evaluation_name(metric)
        if name is not None:
            groups.setdefault(f"External: {name}", []).append(metric)
    groups["Shortcuts"] = [metric for metric in ordered if metric in SHORTCUT_METRICS]
    return {title: metrics for title, metrics in groups.items() if metrics or title == "Shortcuts"}


def headline_metrics(metrics: Sequence[str]) -> list[str]:
    """What a tab's table shows until "Every score": an evaluation's headline scores
    (accuracy, sensitivity, specificity, tumor AUC), every other metric as given."""
    headline = [metric for metric in metrics
                if evaluation_name(metric) is None or metric.rsplit("/", 1)[1] in EVAL_HEADLINE]
    return headline or list(metrics[:len(EVAL_HEADLINE)])


# --------------------------------------------------------------------------- seed summary


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def mean_sd_text(mean: Any, sd: Any, n_seeds: Any) -> str:
    """"0.912 ± 0.013 (3 seeds)"; one seed has no sd: "0.912 (1 seed)"; no value: "—"."""
    mean, sd, n = _number(mean), _number(sd), _number(n_seeds)
    if math.isnan(mean):
        return MISSING
    seeds = "" if math.isnan(n) else f" ({int(n)} seed{'' if int(n) == 1 else 's'})"
    spread = "" if math.isnan(sd) else f" ± {sd:.3f}"
    return f"{mean:.3f}{spread}{seeds}"


def flip_text(row: Mapping[str, Any]) -> str:
    """A flip rate with what it was measured on: "0.083 (3 seed pairs, 40 images)"."""
    rate = _number(row.get("flip_rate"))
    if math.isnan(rate):
        return MISSING
    pairs, images = _number(row.get("n_pairs")), _number(row.get("n_images"))
    detail = [f"{int(pairs)} seed pair{'' if int(pairs) == 1 else 's'}"] if not math.isnan(pairs) else []
    detail += [f"{int(images)} images"] if not math.isnan(images) else []
    return f"{rate:.3f}" + (f" ({', '.join(detail)})" if detail else "")


def _rank(preferred: Sequence[str], seen: Sequence[str]) -> dict[str, int]:
    """Position of each name: ``preferred`` order first, the rest in the order seen."""
    return {name: index for index, name in enumerate(dict.fromkeys([*preferred, *seen]))}


def group_order(frame: pd.DataFrame, models: Sequence[str] = (), variants: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(model, variant) pairs of ``frame``: the spec's model and variant order first, then the table's."""
    pairs = list(dict.fromkeys(zip(frame["model"].astype(str), frame["variant"].astype(str))))
    model_rank = _rank(models, [model for model, _variant in pairs])
    variant_rank = _rank(variants, [variant for _model, variant in pairs])
    return sorted(pairs, key=lambda pair: (model_rank[pair[0]], variant_rank[pair[1]]))


def summary_table(groups: pd.DataFrame, metrics: Sequence[str], flips: pd.DataFrame | None = None,
                  models: Sequence[str] = (), variants: Sequence[str] = ()) -> pd.DataFrame:
    """One row per model × variant: each metric's mean ± sd over seeds as text (groups.csv),
    and with ``flips`` the seed-to-seed flip rate (flips.csv)."""
    frames = [frame for frame in (groups, flips) if frame is not None and not frame.empty]
    if not frames:
        return pd.DataFrame(columns=[MODEL, VARIANT, *map(metric_label, metrics)])
    order = group_order(pd.concat([frame[["model", "variant"]] for frame in frames]), models, variants)
    by_key = {(str(row["model"]), str(row["variant"]), str(row["metric"])): row for row in groups.to_dict("records")}
    flip_rows = {} if flips is None else {(str(row["model"]), str(row["variant"])): row
                                          for row in flips.to_dict("records")}
    rows = []
    for model, variant in order:
        row = {MODEL: model, VARIANT: variant}
        for metric in metrics:
            found = by_key.get((model, variant, metric))
            row[metric_label(metric)] = MISSING if found is None else mean_sd_text(
                found.get("mean"), found.get("sd"), found.get("n_seeds"))
        if flips is not None:
            row[FLIP_RATE] = flip_text(flip_rows.get((model, variant), {}))
        rows.append(row)
    return pd.DataFrame(rows)


def seed_figure(cells: pd.DataFrame, groups: pd.DataFrame, metric: str,
                models: Sequence[str] = (), variants: Sequence[str] = ()) -> go.Figure:
    """Every seed of ``metric`` as a dot and the mean over seeds as a tick: models on the x
    axis, one colour per variant (dots of a model side by side, one group per variant)."""
    values = cells[cells["metric"] == metric].copy()
    values["value"] = pd.to_numeric(values["value"], errors="coerce")
    values = values.dropna(subset=["value"])
    means = groups[groups["metric"] == metric]
    variant_names = [name for name in dict.fromkeys([*variants, *values["variant"].astype(str)])
                     if name in set(values["variant"].astype(str))]
    model_names = [name for name in dict.fromkeys([*models, *values["model"].astype(str)])
                   if name in set(values["model"].astype(str))]
    colors = figures.model_colors(variant_names)
    figure = go.Figure()
    for variant in variant_names:
        dots = values[values["variant"].astype(str) == variant]
        figure.add_trace(go.Scatter(
            x=dots["model"].astype(str), y=dots["value"], mode="markers", name=variant, legendgroup=variant,
            offsetgroup=variant, marker={"color": colors[variant], "size": 9, "opacity": 0.8},
            customdata=dots[["seed"]].to_numpy(),
            hovertemplate=f"%{{x}} · {variant} · seed %{{customdata[0]}}<br>%{{y:.3f}}<extra></extra>",
        ))
        tick = means[means["variant"].astype(str) == variant]
        figure.add_trace(go.Scatter(
            x=tick["model"].astype(str), y=pd.to_numeric(tick["mean"], errors="coerce"), mode="markers",
            name=f"{variant} mean", legendgroup=variant, offsetgroup=variant, showlegend=False,
            marker={"symbol": "line-ew", "size": 26, "line": {"width": 3, "color": colors[variant]}},
            hovertemplate=f"%{{x}} · {variant}<br>mean over seeds %{{y:.3f}}<extra></extra>",
        ))
    figure.update_layout(scattermode="group", title=f"{metric_label(metric)}: every seed, and the mean (tick)",
                         yaxis_title=metric_label(metric), legend_title_text="Variant")
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=model_names, title="Model")
    return figures.legend_right(figure)


# --------------------------------------------------------------------------- variant effects


def effect_metrics(effects: pd.DataFrame) -> list[str]:
    """The effects the page shows that effects.csv holds: accuracy, de-duplicated accuracy,
    each external sensitivity and the shortcut score, in the page's order."""
    present = list(dict.fromkeys(effects["metric"].astype(str))) if not effects.empty else []
    wanted = [metric for metric in present if metric in EFFECT_METRICS
              or (evaluation_name(metric) is not None and metric.rsplit("/", 1)[1] in EFFECT_EVAL_METRICS)]
    return ordered_metrics(wanted)


def interval_text(lower: Any, upper: Any) -> str:
    lower, upper = _number(lower), _number(upper)
    return MISSING if math.isnan(lower) or math.isnan(upper) else f"[{lower:+.3f}, {upper:+.3f}]"


def _paired_text(value: Any) -> str:
    if isinstance(value, str):
        value = value.strip().lower() in {"true", "1", "yes"}
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else ("yes" if value else "no")


def effects_table(effects: pd.DataFrame, metrics: Sequence[str],
                  models: Sequence[str] = (), variants: Sequence[str] = ()) -> pd.DataFrame:
    """One row per model, variant and effect metric: difference (variant − baseline) and its
    95% interval, seeds, whether the arms scored the same images, and the method."""
    columns = [MODEL, VARIANT, METRIC, "Difference", "95% interval", "Seeds", "Same images", "Baseline", "Method"]
    chosen = effects[effects["metric"].astype(str).isin(metrics)] if not effects.empty else effects
    if chosen.empty:
        return pd.DataFrame(columns=columns)
    metric_rank = {metric: index for index, metric in enumerate(metrics)}
    pair_rank = {pair: index for index, pair in enumerate(group_order(chosen, models, variants))}
    rows = []
    for row in chosen.to_dict("records"):
        pair = (str(row["model"]), str(row["variant"]))
        n = _number(row.get("n_seeds"))
        rows.append({MODEL: pair[0], VARIANT: pair[1], METRIC: metric_label(str(row["metric"])),
                     "Difference": _number(row.get("difference")),
                     "95% interval": interval_text(row.get("lower"), row.get("upper")),
                     "Seeds": None if math.isnan(n) else int(n), "Same images": _paired_text(row.get("paired_images")),
                     "Baseline": str(row.get("baseline")), "Method": str(row.get("method") or ""),
                     "_order": (pair_rank[pair], metric_rank[str(row["metric"])])})
    return pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def baselines(effects: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(effects["baseline"].astype(str))) if not effects.empty else []


def methods(effects: pd.DataFrame) -> dict[str, list[str]]:
    """Each interval method of effects.csv -> the metrics it was used for (in words)."""
    found: dict[str, list[str]] = {}
    for row in effects.to_dict("records") if not effects.empty else []:
        method = str(row.get("method") or "").strip()
        label = metric_label(str(row["metric"]))
        if method and label not in found.setdefault(method, []):
            found[method].append(label)
    return found


def effects_caption(effects: pd.DataFrame) -> str:
    """Names the baseline and each interval's method ("... seed-matched; interval: <method>"),
    with the metrics a method was used for when there are several."""
    baseline = ", ".join(f"**{name}**" for name in baselines(effects)) or MISSING
    used = methods(effects)
    if not used:
        method = "not stated in effects.csv"
    elif len(used) == 1:
        method = next(iter(used))
    else:
        method = "; ".join(f"{text} ({', '.join(labels)})" for text, labels in used.items())
    return f"Baseline: {baseline}. Difference = variant − baseline, seed-matched; interval: {method}."


def forest_figure(effects: pd.DataFrame, metric: str,
                  models: Sequence[str] = (), variants: Sequence[str] = ()) -> go.Figure:
    """Variant − baseline of ``metric`` for each model and variant: the difference as a dot
    with its 95% interval as a bar, and the zero line (no effect)."""
    rows = effects[effects["metric"].astype(str) == metric]
    order = group_order(rows, models, variants) if not rows.empty else []
    variant_names = list(dict.fromkeys(variant for _model, variant in order))
    colors = figures.model_colors(variant_names)
    by_pair = {(str(row["model"]), str(row["variant"])): row for row in rows.to_dict("records")}
    figure = go.Figure()
    for variant in variant_names:
        pairs = [pair for pair in order if pair[1] == variant]
        found = [by_pair[pair] for pair in pairs]
        difference = [_number(row.get("difference")) for row in found]
        lower = [_number(row.get("lower")) for row in found]
        upper = [_number(row.get("upper")) for row in found]
        figure.add_trace(go.Scatter(
            x=difference, y=[f"{model} · {variant}" for model, variant in pairs], mode="markers", name=variant,
            marker={"color": colors[variant], "size": 10},
            error_x={"type": "data", "symmetric": False, "array": [u - d for u, d in zip(upper, difference)],
                     "arrayminus": [d - lo for d, lo in zip(difference, lower)], "thickness": 2, "width": 6},
            customdata=[[lo, u] for lo, u in zip(lower, upper)],
            hovertemplate="%{y}<br>difference %{x:+.3f}<br>95% interval [%{customdata[0]:+.3f}, "
                          "%{customdata[1]:+.3f}]<extra></extra>",
        ))
    figure.add_vline(x=0, line=figures.REFERENCE_LINE)
    labels = [f"{model} · {variant}" for model, variant in order]
    figure.update_yaxes(type="category", categoryorder="array", categoryarray=labels[::-1], title=None)
    figure.update_layout(title=f"{metric_label(metric)}: variant − baseline (95% interval)",
                         xaxis_title="Difference (variant − baseline)", height=max(260, 90 + 36 * len(labels)))
    return figures.legend_right(figure)


# --------------------------------------------------------------------------- cells


def status_table(cells: Sequence[CellRecord]) -> pd.DataFrame:
    """study.json's cells: failed first (with the reason), then pending, then done."""
    rows = [{label: getattr(cell, key) for key, label in STATUS_COLUMNS.items()} for cell in cells]
    table = pd.DataFrame(rows, columns=list(STATUS_COLUMNS.values()))
    rank = {status: index for index, status in enumerate(STATUS_ORDER)}
    order = table["Status"].map(lambda status: rank.get(status, len(rank))).to_numpy().argsort(kind="stable")
    return table.iloc[order].reset_index(drop=True)


def no_results_message(done: int, study_dir: str) -> str:
    """Why the tables show nothing: no cell is done yet, or the tables lag behind the done cells."""
    if done == 0:
        return NO_CELL_DONE
    return (f"{done} cell{'s are' if done > 1 else ' is'} done, but the study's tables hold no result yet: "
            f"`python train_all.py --resume {study_dir}` writes them.")


def status_line(cells: Sequence[CellRecord]) -> str:
    """"12 cells: 9 done, 1 failed, 2 pending"."""
    counts = {status: sum(1 for cell in cells if cell.status == status) for status in ("done", "failed", "pending")}
    parts = [f"{count} {status}" for status, count in counts.items() if count]
    return f"{len(cells)} cells: " + (", ".join(parts) if parts else "none")
