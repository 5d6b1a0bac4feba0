"""bt_dashboard.views.published: published figures beside a run's (no Streamlit)."""

import dataclasses


from bt_core.reference.published import PublishedResult, load_published_results
from bt_dashboard.views import published as view

PUBLISHED = PublishedResult(
    architecture="custom_cnn", model="custom CNN", metric="test accuracy", value=0.9903, task="4 classes",
    dataset="Kaggle Brain Tumor MRI", pretraining="none", split="the dataset's Training / Testing folders",
    duplicates="not removed", source="a paper", url="https://example.org/paper", verified=True, image_size=224)
SUMMARY = {"audit": {"duplicates": {"test_images": 40, "test_kept": 31,
                                    "deduplicated_metrics": {"custom_cnn": {"accuracy": 0.75}}}}}


def test_rows_carry_this_runs_accuracy_and_its_deduplicated_one(run, zoo):
    others = dataclasses.replace(PUBLISHED, architecture="densenet121", model="DenseNet121")
    table = view.published_table(run, [others, PUBLISHED], SUMMARY)
    assert list(table.columns) == view.COLUMNS
    first, second = table.iloc[0], table.iloc[1]  # the architecture this run trained comes first
    assert (first[view.ARCHITECTURE], first[view.AS_PUBLISHED], first[view.TASK]) == ("custom_cnn", "custom CNN", "4 classes")
    assert (first[view.PUBLISHED], first[view.MEASURE]) == ("99.03%", "test accuracy")
    assert first[view.THIS_RUN] == f"{run.models['custom_cnn'].metrics['accuracy']:.1%}"
    assert first[view.DEDUPLICATED] == "75.0%"
    assert first[view.SOURCE] == "a paper https://example.org/paper"
    assert second[view.THIS_RUN] == second[view.DEDUPLICATED] == view.NOT_IN_RUN
    # A model that failed in the run is not compared either.
    failed = view.published_table(run, [dataclasses.replace(PUBLISHED, architecture=zoo.failed_model)], SUMMARY)
    assert failed.loc[0, view.THIS_RUN] == view.NOT_IN_RUN


def test_what_differs_names_each_difference_in_one_line(run):
    line = view.differences(PUBLISHED, run, "custom_cnn", SUMMARY["audit"]["duplicates"])
    assert "\n" not in line
    assert f"data: Kaggle Brain Tumor MRI there, folder {run.dataset.name} here" in line
    assert "pretraining" not in line  # none there, none here
    assert "split: the dataset's Training / Testing folders there, a seeded stratified split" in line
    assert "duplicates: not removed there; here 9 of 40 test images are copies" in line
    assert f"image size: 224 px there, {run.image_size} px here" in line
    pretrained = dataclasses.replace(PUBLISHED, pretraining="ImageNet", task="binary (tumor / no tumor)")
    line = view.differences(pretrained, run, "custom_cnn", {})
    assert "pretraining: ImageNet there, none here" in line
    assert "duplicates: not removed there; not audited here (analyze the run)" in line
    assert f"task: binary (tumor / no tumor) there, {len(run.class_names)} classes here" in line


def test_without_an_audit_the_deduplicated_column_says_so(run):
    table = view.published_table(run, [PUBLISHED], None)
    assert table.loc[0, view.DEDUPLICATED] == view.NOT_AUDITED
    unverified = dataclasses.replace(PUBLISHED, verified=False, url="")
    assert view.source_text(unverified) == "a paper (not verified)"


def test_the_shipped_figures_make_a_table_for_any_run(run):
    table = view.published_table(run, load_published_results(), SUMMARY)
    assert len(table) == len(load_published_results())
    assert table[view.SOURCE].str.len().gt(0).all() and table[view.DIFFERS].str.len().gt(0).all()
    assert view.style_published(table).to_html()


def test_the_grid_keeps_the_short_columns_and_each_row_gets_one_line_below(run):
    table = view.published_table(run, [PUBLISHED], SUMMARY)
    assert list(view.style_published(table).data.columns) == view.GRID_COLUMNS
    [line] = view.difference_lines(table)
    assert line.startswith("**custom_cnn** (custom CNN, 4 classes), 99.03% test accuracy: data: ")
    assert line.endswith("Source: a paper https://example.org/paper") and "\n" not in line
