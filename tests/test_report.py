"""The one-file HTML report of a run (dashboard/report.py)."""

import html
import re
from html.parser import HTMLParser

import pytest

from bt_core.artifacts import evaluation_dir, load_run
from bt_dashboard.report import build_report
from fabricate import CLASS_NAMES, fabricate_run

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


# --------------------------------------------------------------------------- the finding

NEW_SECTIONS = ("Shortcut severity", "Shortcuts", "Grad-CAM gallery", "Dataset audit", "External evaluations",
                "Model cards")
EVALUATION = "hospital"


def fabricate_one_class_evaluation(run_dir, models, n_images=6, name=EVALUATION, healthy=0, fingerprint=None):
    """evaluations/<EVALUATION>: the models scored on tumor images only (tumor mode), as the
    pipeline stores it (metrics.json from metrics_from_predictions: one_class, not_measurable)."""
    import numpy as np

    from bt_core.artifacts import STATUS_DONE, RunWriter, evaluation_dir, predictions_frame
    from bt_core.metrics import metrics_from_predictions

    classes = ["notumor", "tumor"]
    labels = ["notumor"] * healthy + ["tumor"] * (n_images - healthy)  # healthy > 0: two classes
    ids = [f"{label}/img_{i:03d}.png" for i, label in enumerate(labels)]
    writer = RunWriter(evaluation_dir(run_dir, name), {
        "run_id": f"{run_dir.name}/evaluations/{name}", "class_names": classes, "image_size": 8,
        "evaluation": {"of_run": run_dir.name, "name": name, "mode": "tumor", "data": "/data/hospital",
                       "not_trained": [], "negative_class": "notumor"},
        "dataset": {"name": name, "counts": {"test": {"notumor": healthy, "tumor": n_images - healthy}},
                    "fingerprint": fingerprint},
    })
    import pandas as pd

    writer.write_split(pd.DataFrame({"path": ids, "split": "test", "label": labels}))
    rng = np.random.default_rng(3)
    writer.write_test_images(rng.integers(0, 256, (n_images, 8, 8, 3), dtype=np.uint8), ids)
    for number, name in enumerate(models):
        p_tumor = np.r_[np.full(n_images - number - 1, 0.9), np.full(number + 1, 0.2)]
        predictions = predictions_frame(ids, labels, np.c_[1 - p_tumor, p_tumor], classes)
        writer.write_predictions(name, predictions)
        writer.write_metrics(name, metrics_from_predictions(predictions, classes))
        writer.set_model_status(name, STATUS_DONE, family="custom", input_size=8, preprocessing="rescale")


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory):
    """The zoo run with shortcut measures (one model with stored maps), a one-class external
    evaluation and every model's card."""
    from fabricate import fabricate_zoo_run
    from bt_core.runs.model_card import write_model_cards

    zoo = fabricate_zoo_run(tmp_path_factory.mktemp("measured"), shortcuts=True)
    fabricate_one_class_evaluation(zoo.run_dir, zoo.good_models[:2])
    write_model_cards(zoo.run_dir)
    return zoo


@pytest.fixture(scope="module")
def measured_report(measured_run):
    return build_report(load_run(measured_run.run_dir), n_resamples=50)


def plotly_free(report: str) -> str:
    """The report without its inline plotly.js bundle (which names URLs in its own code)."""
    start = report.index("<script type=\"text/javascript\">")
    return report[:start] + report[report.index("</script>", start):]


def test_report_has_the_finding_sections_in_order_with_links_to_them(measured_report):
    headings = re.findall(r"<h2>([^<]+)</h2>", measured_report)
    assert headings[:4] == list(NEW_SECTIONS[:4]) and headings[4] == "Leaderboard"
    assert headings[-2:] == list(NEW_SECTIONS[-2:])
    for title in headings:
        anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        assert f'<a href="#{anchor}">{title}</a>' in measured_report
        assert f'<section id="{anchor}">' in measured_report
    parser = TagBalance()
    parser.feed(measured_report)
    assert parser.problems == [] and parser.stack == []


def test_report_fetches_nothing_and_links_only_inside_itself(measured_report):
    rest = plotly_free(measured_report)
    assert not re.search(r"https?://", rest)
    targets = re.findall(r'(?:src|href)="([^"]*)"', rest)
    assert targets and all(t.startswith(("#", "data:image/png;base64,")) for t in targets)


def test_report_shortcuts_and_audit_come_from_the_stored_summary(measured_run, measured_report):
    from fabricate import ZOO_SHORTCUT_CLEAN, ZOO_SHORTCUT_FLAGGED, ZOO_SHORTCUT_SKIPPED
    from bt_dashboard.views import shortcut_audit, shortcuts as view
    from bt_core.artifacts import load_shortcuts

    summary = view.read_summary(load_shortcuts(measured_run.run_dir))
    shortcuts = measured_report[measured_report.index('<section id="shortcuts">'):
                                measured_report.index('<section id="grad-cam-gallery">')]
    assert html.escape(view.verdict_headline(summary).replace("**", "")) in shortcuts
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td>", shortcuts)
    assert rows[:2] == [ZOO_SHORTCUT_FLAGGED, ZOO_SHORTCUT_CLEAN]  # then the map baselines
    assert ZOO_SHORTCUT_SKIPPED in shortcuts  # named as not measured
    audit = measured_report[measured_report.index('<section id="dataset-audit">'):
                            measured_report.index('<section id="leaderboard">')]
    duplicates = summary.audit["duplicates"]
    assert html.escape(shortcut_audit.duplicates_line(duplicates).replace("**", "")) in audit
    assert "<td>train-test</td>" in audit
    accuracy = measured_run.metrics[ZOO_SHORTCUT_FLAGGED]["accuracy"]
    assert f"<td>{accuracy:.1%}</td>" in audit and f"<td>{0.5 - accuracy:+.1%}</td>" in audit
    border = summary.audit["source_probe"]["border"]
    assert html.escape(shortcut_audit.source_probe_sentence("border", border)) in audit
    assert f"<td>{border['folds']}</td>" in audit and f"<td>{border['folds']}.000</td>" not in audit  # a count


def test_gallery_embeds_bounded_overlays_of_the_stored_maps(measured_run, measured_report):
    from fabricate import ZOO_SHORTCUT_CLEAN, ZOO_SHORTCUT_FLAGGED
    from bt_dashboard.report import gallery

    section = measured_report[measured_report.index('<section id="grad-cam-gallery">'):
                              measured_report.index('<section id="dataset-audit">')]
    blocks = dict(re.findall(r"<h3>([^<]+)</h3>(.*?)(?=<h3>|</section>)", section, flags=re.S))
    flagged = blocks[ZOO_SHORTCUT_FLAGGED]
    assert flagged.count("<img ") == gallery.N_ERRORS + gallery.N_OUTSIDE
    assert "% confident" in flagged and "% outside head" in flagged
    assert "No stored gradcam maps" in blocks[ZOO_SHORTCUT_CLEAN]
    # the most confident error comes first, as the predictions say
    errors = gallery.confident_errors(measured_run.predictions[ZOO_SHORTCUT_FLAGGED], CLASS_NAMES)
    first = errors.iloc[0]
    # named by its id, so a reader can open it in Inspect
    assert html.escape(f"{first.id}: {first.label} → {first.pred} ✗ · {first.confidence:.0%} confident") in flagged
    from bt_core.artifacts import load_shortcut_images

    largest = load_shortcut_images(measured_run.run_dir, ZOO_SHORTCUT_FLAGGED)["outside_head"].max()
    assert f"{largest:.0%} outside head" in flagged  # maps of 1.2 runs: the per-image table's shares
    sizes = [len(uri) for uri in re.findall(r'src="(data:image/png;base64,[^"]+)"', section)]
    assert sizes and max(sizes) < 8_000  # stored at the 32 px of the test images, not enlarged


def test_gallery_picks_the_confident_errors_and_largest_outside_shares():
    import pandas as pd
    from bt_dashboard.report import gallery

    predictions = pd.DataFrame({"id": ["a", "b", "c", "d"], "label": ["x", "x", "y", "y"],
                                "pred": ["y", "x", "x", "x"], "p_x": [0.3, 0.9, 0.6, 0.95], "p_y": [0.7, 0.1, 0.4, 0.05]})
    errors = gallery.confident_errors(predictions, ["x", "y"], n=2)
    assert errors["id"].tolist() == ["d", "a"] and errors["confidence"].tolist() == [0.95, 0.7]
    shares = pd.Series([0.2, float("nan"), 0.9, 0.5], index=["a", "b", "c", "d"])
    assert gallery.most_outside(shares, n=3).index.tolist() == ["c", "d", "a"]
    assert gallery.thumbnail_side(32) == 32 and gallery.thumbnail_side(512) == gallery.THUMBNAIL_SIDE


def test_report_shows_external_evaluations_and_one_class_scores_as_not_measurable(measured_run, measured_report):
    section = measured_report[measured_report.index('<section id="external-evaluations">'):
                              measured_report.index('<section id="model-cards">')]
    assert f"<h3>{EVALUATION}</h3>" in section
    first, second = measured_run.good_models[:2]
    rows = dict(re.findall(r"<tr>\s*<td>([^<]+)</td>(.*?)</tr>", section, flags=re.S))
    assert "<td>not measurable</td>" in rows[first] and "Macro AUC" in section
    assert "sensitivity (tumor) 83.3%, Wilson 95%" in rows[first]  # 5 of 6 called tumor
    assert "sensitivity (tumor) 66.7%" in rows[second]
    assert "holds tumor images only" in rows[first]  # the stored reason


def test_a_two_class_evaluation_shows_tumor_sensitivity_and_specificity_from_its_predictions(tmp_path):
    from bt_dashboard.report import appendix
    from fabricate import fabricate_zoo_run

    zoo = fabricate_zoo_run(tmp_path)
    model = zoo.good_models[0]
    # 2 healthy then 4 tumor images; P(tumor) 0.9 on the first 5, 0.2 on the last: the healthy
    # ones are both called tumor (specificity 0 of 2), 3 of the 4 tumor ones are (sensitivity 75%).
    fabricate_one_class_evaluation(zoo.run_dir, [model], n_images=6, name="mixed", healthy=2)
    table = appendix.evaluation_table(load_run(evaluation_dir(zoo.run_dir, "mixed")))
    row = table.set_index("Model").loc[model]
    assert (row["Tumor sensitivity"], row["Tumor specificity"]) == ("75.0%", "0.0%")


def test_an_evaluation_of_the_training_data_itself_is_called_not_external(tmp_path):
    from bt_core.runs.model_card import SAME_DATA, write_model_cards
    from bt_core.artifacts import load_model_card
    from bt_dashboard.report import appendix
    from fabricate import fabricate_zoo_run

    zoo = fabricate_zoo_run(tmp_path)
    own = load_run(zoo.run_dir).dataset.fingerprint
    assert own  # the fabricated run has one
    fabricate_one_class_evaluation(zoo.run_dir, zoo.good_models[:1], name="own", fingerprint=own)
    fabricate_one_class_evaluation(zoo.run_dir, zoo.good_models[:1], name="other", fingerprint="feed")
    section = appendix.evaluations_section(load_run(zoo.run_dir))
    assert section.count("Not external:") == 1 and "Not external: own is the same dataset" in section
    write_model_cards(zoo.run_dir, zoo.good_models[:1])
    card = load_model_card(zoo.run_dir, zoo.good_models[0])
    assert f"| own ({SAME_DATA}) |" in card and "| other |" in card


def test_report_renders_each_stored_model_card_escaped(measured_run, measured_report):
    from bt_dashboard.report import appendix

    section = measured_report[measured_report.index('<section id="model-cards">'):]
    for name in measured_run.good_models:
        assert f"<summary>{name}</summary>" in section
    assert section.count("<strong>Not for clinical use.</strong>") == len(measured_run.good_models)
    assert "<h4>Intended use</h4>" in section and "<h2>Intended use</h2>" not in section
    assert f"<td>{EVALUATION}</td>" in section  # the cards list the evaluation
    html = appendix.render_card(appendix.markdown_renderer(),
                                "# c\n<script>alert(1)</script> [x](https://example.org) ![i](http://x/i.png)")
    assert "<script>" not in html and "&lt;script&gt;" in html and "<a " not in html and "<img" not in html


def test_report_of_an_unmeasured_run_says_why_each_section_is_empty(report, zoo):
    for title in NEW_SECTIONS:
        assert f"<h2>{title}</h2>" in report
    command = f"python train_all.py --explain {zoo.run_dir}"
    for anchor in ("shortcuts", "dataset-audit"):
        section = report[report.index(f'<section id="{anchor}">'):]
        assert f"Not measured: run {command}" in section[:section.index("</section>")]
    assert report.count("No stored gradcam maps") == len(zoo.good_models)
    assert "No external evaluation yet: score the models on another folder with" in report
    assert report.count("no model card stored; write it with python train_all.py --cards") == len(zoo.good_models) + 1


def test_gallery_reads_the_shares_stored_with_the_maps_first(tmp_path):
    import numpy as np
    from bt_core.artifacts import write_maps
    from bt_dashboard.report import gallery

    fabricated = fabricate_run(tmp_path, good_models={"simple_cnn": 2.0})
    n = len(fabricated.test_ids)
    outside = np.linspace(0.0, 1.0, n)
    write_maps(fabricated.run_dir, "simple_cnn", "gradcam", np.zeros((n, 4, 4)), fabricated.test_ids,
               np.zeros(n, dtype=np.int64), shares={"outside_head": outside, "border": outside, "in_box": outside})
    run = load_run(fabricated.run_dir)
    shares = gallery.stored_outside_shares(run, "simple_cnn", "gradcam")
    assert shares.loc[fabricated.test_ids[-1]] == 1.0
    assert gallery.stored_outside_shares(run, "simple_cnn", "layercam") is None  # no maps, no measures


def test_an_unreadable_summary_and_card_are_named_and_the_report_still_builds(tmp_path):
    from bt_core.artifacts import shortcut_summary_path
    from bt_core.artifacts.layout import model_card_path

    fabricated = fabricate_run(tmp_path, good_models={"simple_cnn": 2.0})
    shortcut_summary_path(fabricated.run_dir).parent.mkdir(parents=True)
    shortcut_summary_path(fabricated.run_dir).write_text("{not json", encoding="utf-8")
    model_card_path(fabricated.run_dir, "simple_cnn").write_bytes(b"\xff\xfe")
    report = build_report(load_run(fabricated.run_dir), n_resamples=10)
    for anchor in ("shortcut-severity", "shortcuts", "dataset-audit"):
        section = report[report.index(f'<section id="{anchor}">'):]
        assert "The shortcut measures cannot be read:" in section[:section.index("</section>")]
    assert "simple_cnn: the model card cannot be read:" in report
