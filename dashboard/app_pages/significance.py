"""Significance page: are the models' differences on the test set more than luck?

Exact McNemar tests on every pair (Holm-corrected), their flip counts, Cochran's Q across
all models, and paired bootstrap tests of the macro AUC and macro F1 differences.
"""

import pandas as pd
import streamlit as st

from bt_core.artifacts import Run
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_run_models
from bt_dashboard.views import common
from bt_dashboard.views import significance as view

ALPHA = 0.05


def show_heatmap(run: Run, matrix: pd.DataFrame) -> None:
    figure = view.significance_heatmap(
        matrix, alpha=ALPHA, title="McNemar p, Holm-adjusted (* p < 0.05)"
    )
    # Roughly square cells: a two-model matrix need not span the page.
    size = 140 + 70 * len(matrix)
    figure.update_layout(height=max(320, size))
    presentation.show_figure(
        figure, presentation.file_stem(run.run_id, "significance"), width=max(560, size + 120)
    )


def show_pairs(run: Run, pairs: pd.DataFrame) -> None:
    st.subheader("Flips per pair")
    table = view.flip_table(pairs)
    styled = table.style.format({"p (exact McNemar)": "{:.3g}", "p (Holm)": "{:.3g}"})
    presentation.show_table(
        table, presentation.file_stem(run.run_id, "mcnemar-pairs"), styled=styled,
        column_config={column: st.column_config.Column(label, help=text)
                       for column, (label, text) in view.FLIP_LABELS.items()},
    )
    st.caption(
        "A right, B wrong: images that flip right → wrong going from A to B; A wrong, B right: "
        "wrong → right. McNemar's test uses only these discordant images."
    )


def show_differences(run: Run) -> None:
    st.subheader("Differences in macro AUC and macro F1")
    one = common.one_class_test(run)
    if one is not None:  # both compare classes
        st.info(f"Macro AUC and macro F1 differences: **{one.text}**. McNemar above still compares "
                f"how often each model calls the {one.class_name} images right.")
        return
    table = view.difference_table(loaders.load_metric_differences(run.directory), ALPHA, p_as_text=True)
    styled = table.style.format({"A − B": "{:+.3f}"}, na_rep="—")
    presentation.show_table(table, presentation.file_stem(run.run_id, "metric-differences"), styled=styled)
    st.caption(
        "Paired bootstrap (2,000 resamples of the test images, the same for every model): the "
        "interval of A − B and a two-sided p-value, Holm-adjusted over the pairs of each metric. "
        "McNemar above compares right/wrong only; this compares the scores that rank."
    )


def significance_page() -> None:
    st.title("Significance")
    opened = open_run_models(minimum=2)
    if opened is None:
        return
    run, model_data = opened
    pairs, matrix, cochran = loaders.load_significance(run.directory, ALPHA)
    st.markdown(view.cochran_line(cochran, ALPHA))
    show_heatmap(run, matrix)
    show_pairs(run, pairs)
    show_differences(run)


significance_page()
