"""What the Compare runs page shows (no Streamlit): two test sets side by side (two runs, or
a run and one of its evaluations): leaderboard deltas, the difference of one model's
confusion matrices and the images the two disagree on.

Every number comes from each run's stored predictions through bt_core.metrics (the
leaderboard the Models page shows); this module only lines the two up: B − A.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.artifacts import EVALUATIONS_DIR
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import common, deep_links, figures
from bt_dashboard.views import models as models_view
from bt_dashboard.views.common import MODEL

SCORE, DELTA = "Score", "B − A"
# The figure's scores (the Models page's column names): the headline ones, as bars of B − A per model.
FIGURE_SCORES = [common.ACCURACY, common.MACRO_F1, common.MACRO_AUC]
DISAGREEMENT_COLUMNS = ["id", "True", "A predicts", "A confidence", "B predicts", "B confidence"]


def evaluation_parts(folder: str | Path) -> tuple[str, str | None]:
    """(run id, evaluation name) of a test set's folder: ``RUN/evaluations/NAME`` is run
    RUN's evaluation NAME, any other folder a run's own test split (name None)."""
    path = Path(folder)
    if path.parent.name == EVALUATIONS_DIR:
        return path.parent.parent.name, path.name
    return path.name, None


def target_label(run_label: str, evaluation: str | None = None) -> str:
    """A test set's line in the A / B pickers: the run's label, and the evaluation's name."""
    return run_label if evaluation is None else f"{run_label} → evaluation {evaluation}"


def comparison_targets(run_labels: Mapping[str, str], evaluations: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Every test set that can be picked, folder -> label: each run's own test split, then
    each of its evaluations (``RUN/evaluations/NAME``)."""
    targets: dict[str, str] = {}
    for run_dir, label in run_labels.items():
        targets[run_dir] = target_label(label)
        for name in evaluations.get(run_dir, ()):
            targets[str(Path(run_dir) / EVALUATIONS_DIR / name)] = target_label(label, name)
    return targets


def default_pair(targets: Sequence[str], shown: str | None) -> tuple[str, str]:
    """The pair first shown: A the test set the sidebar shows (else the first), B the next
    other run's own test split (else any other test set). Needs two targets."""
    first = shown if shown in targets else targets[0]
    own_run = evaluation_parts(first)[0]
    others = [folder for folder in targets if folder != first]
    other_runs = [folder for folder in others
                  if evaluation_parts(folder)[1] is None and evaluation_parts(folder)[0] != own_run]
    return first, (other_runs or others)[0]


# --------------------------------------------------------------------------- leaderboard deltas


def common_models(board_a: pd.DataFrame, board_b: pd.DataFrame) -> list[str]:
    """The models both leaderboards have, in A's order."""
    in_b = set(board_b["model"].astype(str))
    return [name for name in board_a["model"].astype(str) if name in in_b]


def only_in(board: pd.DataFrame, other: pd.DataFrame) -> list[str]:
    in_other = set(other["model"].astype(str))
    return [name for name in board["model"].astype(str) if name not in in_other]


def leaderboard_deltas(board_a: pd.DataFrame, board_b: pd.DataFrame) -> pd.DataFrame:
    """One row per model both have and leaderboard score (the Models page's score columns
    both boards hold): A's value, B's and B − A (NaN when either is undefined)."""
    scores = {label: key for label, key in models_view.SCORE_COLUMNS.items()
              if key in board_a.columns and key in board_b.columns}
    a = board_a.assign(model=board_a["model"].astype(str)).set_index("model")
    b = board_b.assign(model=board_b["model"].astype(str)).set_index("model")
    rows = []
    for model in common_models(board_a, board_b):
        for label, key in scores.items():
            value_a, value_b = float(a.at[model, key]), float(b.at[model, key])
            rows.append({MODEL: model, SCORE: label, "A": value_a, "B": value_b, DELTA: value_b - value_a})
    return pd.DataFrame(rows, columns=[MODEL, SCORE, "A", "B", DELTA])


def deltas_figure(deltas: pd.DataFrame, models: Sequence[str]) -> go.Figure:
    """B − A of the headline scores, one bar per model, grouped by score; a zero line."""
    colors = figures.model_colors(list(models))
    shown = deltas[deltas[SCORE].isin(FIGURE_SCORES)]
    figure = go.Figure()
    for model in models:
        rows = shown[shown[MODEL] == model]
        figure.add_trace(go.Bar(
            x=rows[SCORE], y=rows[DELTA], name=model, marker_color=colors[model],
            customdata=rows[["A", "B"]].to_numpy(),
            hovertemplate=f"{model} · %{{x}}<br>B − A %{{y:+.3f}}<br>A %{{customdata[0]:.3f}}, "
                          "B %{customdata[1]:.3f}<extra></extra>",
        ))
    figure.add_hline(y=0, line=figures.REFERENCE_LINE)
    figure.update_layout(barmode="group", title="Leaderboard deltas (B − A)", yaxis_title="B − A")
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=FIGURE_SCORES)
    return figures.legend_right(figure)


# --------------------------------------------------------------------------- confusion difference


def confusion_difference(
    matrix_a: np.ndarray, matrix_b: np.ndarray, classes_a: Sequence[str], classes_b: Sequence[str]
) -> np.ndarray | str:
    """B − A of two count matrices (rows true, columns predicted), or why they cannot be
    subtracted: the two test sets must have the same classes in the same order."""
    if list(classes_a) != list(classes_b):
        return (f"the two test sets have different classes (A: {', '.join(classes_a)}; "
                f"B: {', '.join(classes_b)}), so their matrices cannot be subtracted")
    return np.asarray(matrix_b, dtype=np.int64) - np.asarray(matrix_a, dtype=np.int64)


# --------------------------------------------------------------------------- disagreements


@dataclass(frozen=True)
class Disagreements:
    """The images both scored, and the rows where the two predict different classes."""

    shared: int  # image ids both test sets hold
    table: pd.DataFrame  # DISAGREEMENT_COLUMNS, most confident first
    label_conflicts: int  # shared ids whose true labels differ (left out of ``table``)


def disagreements(a: ModelData, classes_a: Sequence[str], b: ModelData, classes_b: Sequence[str]) -> Disagreements:
    """The images of both test sets (same id, same true label) where A and B predict different
    classes: id, true label, each prediction and its confidence (the probability of the
    predicted class). Sorted by the larger confidence, highest first."""
    ids_a, ids_b = np.asarray(a.ids, dtype=str), np.asarray(b.ids, dtype=str)
    shared, in_a, in_b = np.intersect1d(ids_a, ids_b, return_indices=True)
    names_a, names_b = np.asarray(classes_a, dtype=object), np.asarray(classes_b, dtype=object)
    true_a, true_b = names_a[a.y_true[in_a]], names_b[b.y_true[in_b]]
    same_label = true_a == true_b
    pred_a, pred_b = a.proba[in_a].argmax(axis=1), b.proba[in_b].argmax(axis=1)
    table = pd.DataFrame({
        "id": shared, "True": true_a, "A predicts": names_a[pred_a], "A confidence": a.proba[in_a].max(axis=1),
        "B predicts": names_b[pred_b], "B confidence": b.proba[in_b].max(axis=1),
    }, columns=DISAGREEMENT_COLUMNS)
    differ = same_label & (table["A predicts"].to_numpy() != table["B predicts"].to_numpy())
    table = table[differ]
    order = np.argsort(-np.maximum(table["A confidence"].to_numpy(), table["B confidence"].to_numpy()), kind="stable")
    return Disagreements(shared=len(shared), table=table.iloc[order].reset_index(drop=True),
                         label_conflicts=int((~same_label).sum()))


def disagreement_line(found: Disagreements) -> str:
    """What the table holds, in one line."""
    if found.shared == 0:
        return "The two test sets share no image id: there is nothing to compare image by image."
    share = len(found.table) / found.shared
    line = (f"{len(found.table)} of the {found.shared} images both scored get different predictions "
            f"({share:.1%}).")
    if found.label_conflicts:
        line += f" {found.label_conflicts} shared ids have different true labels and are left out."
    return line


def inspect_params(folder: str | Path, model: str, image_id: str) -> dict[str, str]:
    """The deep link that opens ``image_id`` of the test set in ``folder`` on Inspect with ``model``."""
    run_id, evaluation = evaluation_parts(folder)
    return deep_links.link_params(deep_links.DeepLink(run=run_id, test_set=evaluation, models=(model,),
                                                      image=str(image_id)))
