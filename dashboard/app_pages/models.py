"""Models page: every model of the chosen run side by side."""

import pandas as pd
import streamlit as st

from bt_core.artifacts import ArtifactError
from dashboard import components, loaders
from dashboard.run_picker import selected_run_dir, show_no_runs


def show_problems(table: pd.DataFrame) -> None:
    problems = components.model_problems(table)
    if problems:
        lines = "\n".join(f"- **{model}**: {reason}" for model, reason in problems)
        st.warning(f"{len(problems)} model(s) have no usable results:\n\n{lines}")


def show_table(table: pd.DataFrame) -> None:
    st.dataframe(components.style_models_table(table), hide_index=True)
    st.caption("Metrics on the test split; the best value of each metric is highlighted.")


def show_chart(table: pd.DataFrame) -> None:
    if components.metrics_long(table).empty:
        st.info("No model of this run has results to chart yet.")
        return
    st.plotly_chart(components.metrics_bar_chart(table))


def models_page() -> None:
    st.title("Models")
    run_dir = selected_run_dir()
    if run_dir is None:
        show_no_runs()
        return
    try:
        run = loaders.load_run_tables(run_dir)
    except ArtifactError as exc:
        st.error(f"Run `{run_dir}` cannot be opened: {exc}")
        return
    st.markdown(components.overview_line(components.run_overview(run)))
    table = components.models_table(run)
    show_problems(table)
    show_table(table)
    show_chart(table)


models_page()
