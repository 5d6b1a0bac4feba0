"""bt_dashboard.presentation: presentation mode reaches tables and figures (AppTest)."""

from streamlit.testing.v1 import AppTest

from bt_dashboard import presentation
from bt_dashboard.views import run_details as run_view
from bt_core.artifacts import load_manifest


def tables_script(presenting: bool) -> None:
    import pandas as pd
    import streamlit as st

    from bt_dashboard import presentation

    st.session_state["presentation_mode"] = presenting
    presentation.show_table(pd.DataFrame({"a": [0.123456, None], "n": [3.0, 12.5], "s": ["x", None]}), "short")
    presentation.show_table(pd.DataFrame({"a": range(presentation.STATIC_TABLE_MAX_ROWS + 1)}), "long")
    presentation.show_table(pd.DataFrame({"a": [1]}), "picked", key="pick", on_select="rerun")
    presentation.show_table(pd.DataFrame({"a": [1]}), "no-csv", csv=False,
                            column_config={"a": st.column_config.Column(help="a help text")})
    presentation.show_table(pd.DataFrame({"a": [0.5]}), "bar", csv=False,
                            column_config={"a": st.column_config.ProgressColumn()})


def test_presenting_turns_short_unselectable_tables_into_static_tables():
    app = AppTest.from_function(tables_script, args=(True,)).run()
    assert not app.exception
    # short and no-csv become static tables; the long, the selectable and the progress-bar
    # ones stay grids.
    assert len(app.table) == 2 and len(app.dataframe) == 3
    assert len(app.dataframe[0].value) == presentation.STATIC_TABLE_MAX_ROWS + 1
    downloads = [button.proto.id.rsplit("-", 1)[-1] for button in app.get("download_button")]
    assert downloads == ["csv_short", "csv_long", "csv_picked"]  # csv=False: none
    # The static table prints numbers as the grid does and blank cells as its placeholder
    # (the Styler's display values, as Arrow bytes).
    shown = app.table[0].proto.arrow_data.styler.display_values
    assert b"0.1235" in shown and b"12.5" in shown and b"3.0" not in shown and b"12.50" not in shown
    assert shown.count(presentation.common.MISSING.encode("utf-8")) == 2


def test_without_presenting_every_table_is_a_grid():
    app = AppTest.from_function(tables_script, args=(False,)).run()
    assert not app.exception
    assert len(app.table) == 0 and len(app.dataframe) == 5


def test_grid_number_text_drops_needless_decimals():
    assert [presentation.grid_number_text(value) for value in (3.0, 12.5, 0.123456, -2.0, 1e6)] == [
        "3", "12.5", "0.1235", "-2", "1000000"]


def test_presentation_css_enlarges_static_tables_and_metric_values():
    css = presentation.PRESENTATION_CSS
    assert '[data-testid="stTable"] th, [data-testid="stTable"] td' in css
    assert "font-size: 1.2rem" in css and '[data-testid="stMetricValue"]' in css


def test_run_page_in_presentation_mode_shows_static_tables_and_the_timing(open_app, fabricated_run):
    app = open_app(fabricated_run.run_dir.parent)
    app.switch_page("app_pages/run_details.py").run()
    grids = len(app.dataframe)
    assert grids >= 4 and not app.table
    app.sidebar.toggle(key=presentation.PRESENTATION_KEY).set_value(True).run()
    assert not app.exception
    assert len(app.table) == grids and not app.dataframe
    assert run_view.timing_line(load_manifest(fabricated_run.run_dir)) in [md.value for md in app.markdown]
