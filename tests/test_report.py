"""The one-file HTML report of a run (dashboard/report.py)."""

import re
from html.parser import HTMLParser

import pytest

from bt_core.artifacts import load_run
from bt_dashboard.report import build_report
from fabricate import fabricate_run

VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Every plotly.js bundle starts with this banner.
PLOTLY_BANNER = "plotly.js v"


class TagBalance(HTMLParser):
    """Records every mismatched or unclosed tag and the text of every <script>."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_TAGS:
            self.stack.append(tag)
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script":
            self.scripts[-1] += data


@pytest.fixture(scope="module")
def report(zoo):
    return build_report(load_run(zoo.run_dir), n_resamples=100)


@pytest.fixture(scope="module")
def parsed(report):
    parser = TagBalance()
    parser.feed(report)
    parser.close()
    return parser


def test_report_is_valid_html(parsed):
    assert parsed.doctype.lower() == "doctype html"
    assert parsed.problems == []
    assert parsed.stack == []


def test_report_names_every_model(report, zoo):
    for name in zoo.model_names:
        assert name in report
    assert zoo.failed_error in report  # a broken model keeps its reason


def test_report_inlines_plotly_once_and_fetches_nothing(report, parsed):
    bundles = [script for script in parsed.scripts if PLOTLY_BANNER in script]
    assert len(bundles) == 1
    assert report.count(PLOTLY_BANNER) == 1
    assert "cdn.plot.ly" not in report
    assert not re.search(r"<script[^>]+src=", report)


def test_report_holds_every_section_and_a_figure_per_view(report, zoo):
    for heading in ("Leaderboard", "ROC and precision-recall curves", "Confusion matrices", "Training",
                    "Calibration", "Significance"):
        assert f"<h2>{heading}</h2>" in report
    n_models, n_classes = len(zoo.good_models), 4
    expected_figures = (
        1  # leaderboard intervals
        + 2 * (n_classes + n_models)  # ROC and PR: per class and per model
        + 1  # tumor ROC
        + 2 * n_models  # confusion counts and shares
        + n_models + 1  # training per model, validation overlay
        + 1  # reliability
        + 1  # significance
    )
    assert report.count("Plotly.newPlot(") == expected_figures


def test_report_leaderboard_shows_the_fabricated_accuracy(report, zoo):
    accuracy = zoo.metrics["custom_cnn"]["accuracy"]
    assert f"{accuracy:.1%}" in report
    assert "Cochran" in report


def test_report_of_a_run_without_usable_models_still_opens(tmp_path):
    fabricated = fabricate_run(tmp_path, good_models={})
    report = build_report(load_run(fabricated.run_dir), n_resamples=10)
    parser = TagBalance()
    parser.feed(report)
    assert parser.problems == [] and parser.stack == []
    assert "No model of this run has test predictions" in report
    assert fabricated.failed_error in report


def test_report_leads_with_the_shortcut_severity_or_says_it_is_not_measured(report, tmp_path):
    from fabricate import write_shortcut_measures

    assert "<h2>Shortcut severity</h2>" in report and "Not measured: run python train_all.py --explain" in report
    fabricated = fabricate_run(tmp_path / "measured", good_models={"simple_cnn": 2.5, "cnn_bn": 1.5})
    write_shortcut_measures(fabricated, "simple_cnn", "cnn_bn")
    measured = build_report(load_run(fabricated.run_dir), n_resamples=10)
    assert measured.index("<h2>Shortcut severity</h2>") < measured.index("<h2>Leaderboard</h2>")
    assert "1 of 2 measured models is unsafe" in measured
    assert "simple_cnn (unsafe): about 80% [" in measured and "cnn_bn (no evidence)" in measured
