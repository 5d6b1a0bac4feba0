"""The Models page's per-class and published tables, and the Confusion page's empty cells (AppTest)."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import METRICS, model_dir, read_json, write_json
from bt_core.metrics import metrics_from_predictions
from bt_dashboard.views import common
from bt_dashboard.views import confusion as confusion_view
from bt_dashboard.views import per_class, published

from fabricate import CLASS_NAMES, fabricate_zoo_run

MODELS_PAGE = "app_pages/models.py"
CONFUSION_PAGE = "app_pages/confusion.py"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    zoo = fabricate_zoo_run(tmp_path_factory.mktemp("artifacts"))
    # custom_cnn as a 1.6 run stores it (one_vs_rest); the other models as older runs did.
    write_json(model_dir(zoo.run_dir, "custom_cnn") / METRICS,
               {**read_json(model_dir(zoo.run_dir, "custom_cnn") / METRICS),
                **metrics_from_predictions(zoo.predictions["custom_cnn"], CLASS_NAMES)})
    return zoo


def open_page(open_app, zoo, page: str) -> AppTest:
    app = open_app(zoo.run_dir.parent)
    app.switch_page(page).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def table_with(app: AppTest, column: str):
    return next(element.value for element in app.dataframe if column in element.value.columns)


def test_models_page_shows_every_model_per_class_and_the_published_figures(open_app, zoo):
    app = open_page(open_app, zoo, MODELS_PAGE)
    assert common.MODEL in app.dataframe[0].value.columns and len(app.get("plotly_chart")) == 1  # leaderboard first
    assert "Per class" in [header.value for header in app.subheader]
    table = table_with(app, per_class.COUNTS)
    assert len(table) == len(CLASS_NAMES) * len(zoo.good_models)
    stored = read_json(model_dir(zoo.run_dir, "custom_cnn") / METRICS)["one_vs_rest"]
    rows = table[table[common.MODEL] == "custom_cnn"].set_index(per_class.CLASS)
    for class_name in CLASS_NAMES:
        counts = stored[class_name]
        assert rows.loc[class_name, per_class.COUNTS] == f"{counts['tp']} / {counts['fp']} / {counts['fn']} / {counts['tn']}"
        assert rows.loc[class_name, per_class.SPECIFICITY] == pytest.approx(stored[class_name]["specificity"])
    older = [name for name in zoo.good_models if name != "custom_cnn"]
    assert per_class.derived_note(older) in [caption.value for caption in app.caption]

    assert [expander.label for expander in app.expander][-1] == "Published results beside this run's"
    figures = table_with(app, published.THIS_RUN).set_index(published.ARCHITECTURE)
    accuracy = read_json(model_dir(zoo.run_dir, "custom_cnn") / METRICS)["accuracy"]
    custom = figures.loc[["custom_cnn"]]  # its source's training accuracy and its test accuracy
    assert custom[published.THIS_RUN].tolist() == [f"{accuracy:.1%}"] * 2
    assert custom[published.PUBLISHED].tolist() == ["99.03%", "97.72%"]
    assert custom[published.MEASURE].tolist() == ["training accuracy (5-fold average)", "test accuracy"]
    lines = next(m.value for m in app.markdown if m.value.startswith("- **")).splitlines()
    assert len(lines) == len(figures) and all("Source: " in line for line in lines)
    assert lines[0].startswith("- **custom_cnn** (custom CNN (\"novel customized CNN\"), 4 classes), 99.03% training "
                               "accuracy (5-fold average): data: ")


def test_a_click_on_an_empty_confusion_cell_says_it_holds_no_image(open_app, zoo, tmp_path):
    matrix = np.asarray(read_json(model_dir(zoo.run_dir, "custom_cnn") / METRICS)["confusion_matrix"])
    empty = [(CLASS_NAMES[i], CLASS_NAMES[j]) for i, j in zip(*np.nonzero(matrix == 0))]
    assert empty, "the fabricated custom_cnn needs an empty cell"
    cell = empty[0]
    selection = {"points": [{"x": cell[1], "y": cell[0]}]}
    assert confusion_view.clicked_cell(selection, matrix, CLASS_NAMES) == (cell, True)
    full = next((CLASS_NAMES[i], CLASS_NAMES[j]) for i, j in zip(*np.nonzero(matrix)))
    assert confusion_view.clicked_cell({"points": [{"x": full[1], "y": full[0]}]}, matrix, CLASS_NAMES) == (full, False)
    assert confusion_view.clicked_cell({"points": [{"x": "elsewhere", "y": None}]}, matrix, CLASS_NAMES) == (None, False)

    app = open_page(open_app, zoo, CONFUSION_PAGE)
    assert not app.info  # nothing said before a click
    # What the matrix's on_select callback records for a click on an empty cell.
    app.session_state["confusion_cell_model"] = "custom_cnn"
    app.session_state["confusion_empty_cell"] = ("custom_cnn", cell)
    app.run()
    assert not app.exception
    message = f"**custom_cnn**: no test image of true class {cell[0]} was predicted {cell[1]} (0 images in this cell)."
    assert [info.value for info in app.info] == [message] == [confusion_view.empty_cell_message("custom_cnn", cell)]
    assert app.selectbox(key="confusion_cell_model").value == "custom_cnn"
    app.run()  # said once: the next rerun of the explorer is quiet again
    assert not app.info
