"""Deep links: the URL's run, test set, models, method and image open that view.

The parsing is tested without Streamlit; the view with AppTest on an artifacts folder of two
fabricated runs, the second with an external evaluation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import evaluation_dir, read_manifest, write_json
from bt_core.artifacts import layout
from bt_dashboard.settings import ARTIFACTS_ENV
from bt_dashboard.views import deep_links as links
from bt_dashboard.views.deep_links import DeepLink, Ignored
from fabricate import fabricate_run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
INSPECT_PAGE = "app_pages/inspect.py"
OLDER, NEWER = "20240101-000000_older", "20240601-000000_newer"
EVALUATION = "external"


# --------------------------------------------------------------------------- parsing


def test_a_link_round_trips_through_its_query_parameters():
    link = DeepLink(run=NEWER, test_set=EVALUATION, models=("small_cnn", "mobilenet_v2"), method="layercam",
                    image="Testing/glioma/img 1.jpg")
    params = links.link_params(link)
    assert params == {"run": NEWER, "test_set": EVALUATION, "models": "small_cnn,mobilenet_v2",
                      "method": "layercam", "image": "Testing/glioma/img 1.jpg"}
    assert links.parse_link(params) == link
    assert links.link_params(DeepLink()) == {} and links.parse_link({}) == DeepLink()


def test_parsing_drops_blanks_repeats_and_parameters_it_does_not_own():
    link = links.parse_link({"run": "  ", "models": " a,, b ,a,", "present": "1", "method": ""})
    assert link == DeepLink(models=("a", "b"))
    assert links.parse_models(",,") is None and links.parse_models(None) is None


def test_unknown_values_are_dropped_with_their_reason():
    kept, ignored = links.keep_known("models", ("a", "zz", "b"), ["a", "b", "c"], "not in the run")
    assert kept == ("a", "b") and ignored == [Ignored("models", "zz", "not in the run")]
    assert links.check_choice("method", "gradcam", ["gradcam"], "unknown") is None
    assert links.check_choice("method", "magic", ["gradcam"], "known: gradcam") == Ignored(
        "method", "magic", "known: gradcam")
    message = links.ignored_message([Ignored("run", "r9", "no such run"), Ignored("method", "magic", "known: x")])
    assert message == ("The link asks for what this dashboard cannot show, ignored: "
                       "run `r9` (no such run); method `magic` (known: x).")


# --------------------------------------------------------------------------- the view


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """Two runs; the older one (not the picker's default) has an external evaluation whose
    test set lacks a model."""
    artifacts = tmp_path_factory.mktemp("links") / "artifacts"
    older = fabricate_run(artifacts, OLDER, created="2024-01-01T00:00:00", image_side=16)
    fabricate_run(artifacts, NEWER, created="2024-06-01T00:00:00", image_side=16)
    evaluation = fabricate_run(older.run_dir / layout.EVALUATIONS_DIR, EVALUATION, image_side=16,
                               good_models={"small_cnn": 0.8, "efficientnet_b0": 3.0})
    manifest = read_manifest(evaluation.run_dir)
    manifest["evaluation"] = {"of_run": OLDER, "name": EVALUATION, "mode": "classes", "data": "elsewhere"}
    write_json(layout.manifest_path(evaluation.run_dir), manifest)
    return artifacts


@pytest.fixture
def open_link(monkeypatch, two_runs):
    """A new session (a link opened in a fresh tab) on ``page`` with ``query``."""

    def open_link(query: dict[str, str], page: str | None = None) -> AppTest:
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(two_runs))
        app = AppTest.from_file(APP, default_timeout=60)
        app.query_params.update(query)
        if page is not None:
            app.switch_page(page)
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return open_link


def sidebar_value(app: AppTest, label: str):
    return next(box for box in app.sidebar.selectbox if box.label == label).value


def test_a_link_with_every_parameter_opens_that_view(open_link, two_runs):
    evaluation = evaluation_dir(two_runs / OLDER, EVALUATION)
    image = "test_0003"
    app = open_link({"run": OLDER, "test_set": EVALUATION, "models": "efficientnet_b0,small_cnn",
                     "method": "layercam", "image": image}, INSPECT_PAGE)
    assert sidebar_value(app, "Run") == str(two_runs / OLDER)  # not the default, the newest
    assert sidebar_value(app, "Test set") == str(evaluation)
    assert app.session_state["run_dir"] == str(evaluation)
    assert app.multiselect(key="inspect_models").value == ["efficientnet_b0", "small_cnn"]
    assert app.selectbox(key="inspect_method").value == "layercam"
    assert app.selectbox(key="inspect_image").value == image
    assert app.get("image")[0].proto.imgs[0].caption.startswith(f"{image} · ")
    assert not app.warning or all("ignored" not in warning.value for warning in app.warning)
    # The URL still names the same view: it can be sent on.
    assert {key: app.query_params[key] for key in links.PARAMETERS} == {
        "run": OLDER, "test_set": EVALUATION, "models": "efficientnet_b0,small_cnn", "method": "layercam",
        "image": image}


def test_without_a_link_the_url_follows_the_pickers(open_link, two_runs):
    app = open_link({})
    assert sidebar_value(app, "Run") == str(two_runs / NEWER)  # the newest run
    assert app.query_params["run"] == NEWER and "test_set" not in app.query_params
    app.sidebar.selectbox[0].select(str(two_runs / OLDER)).run()
    assert app.query_params["run"] == OLDER and "test_set" not in app.query_params
    next(box for box in app.sidebar.selectbox if box.label == "Test set").select(
        str(evaluation_dir(two_runs / OLDER, EVALUATION))).run()
    assert app.query_params["run"] == OLDER and app.query_params["test_set"] == EVALUATION
    app.sidebar.selectbox[0].select(str(two_runs / NEWER)).run()
    assert app.query_params["run"] == NEWER and "test_set" not in app.query_params

    app = open_link({"run": OLDER, "present": "1"})
    assert sidebar_value(app, "Run") == str(two_runs / OLDER)
    assert app.session_state["presentation_mode"] and app.query_params["present"] == "1"


def test_unknown_values_are_ignored_with_one_warning_naming_them(open_link, two_runs):
    app = open_link({"run": "19990101-000000_gone", "models": "small_cnn,resnet50,nope", "method": "magic"},
                    INSPECT_PAGE)
    warnings = [warning.value for warning in app.warning if "ignored" in warning.value]
    assert len(warnings) == 1
    assert "run `19990101-000000_gone` (no such run in" in warnings[0]
    assert "models `resnet50`" in warnings[0] and "models `nope`" in warnings[0]
    assert "method `magic` (known: gradcam" in warnings[0]
    assert sidebar_value(app, "Run") == str(two_runs / NEWER)  # the newest run instead
    assert app.multiselect(key="inspect_models").value == ["small_cnn"]  # the known one is kept
    assert app.selectbox(key="inspect_method").value == "gradcam"
    assert app.query_params["run"] == NEWER and app.query_params["models"] == "small_cnn"

    app.run()  # the next rerun: the URL is the view's own now, nothing to warn about
    assert not [warning for warning in app.warning if "ignored" in warning.value]

    app = open_link({"run": NEWER, "test_set": EVALUATION})  # the newer run has no evaluation
    assert f"test_set `{EVALUATION}` (not an evaluation of run {NEWER})" in app.warning[0].value
    assert app.session_state["run_dir"] == str(two_runs / NEWER)
