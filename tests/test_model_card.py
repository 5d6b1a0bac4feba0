"""Model cards (bt_core.runs.model_card): models/<model>/MODEL_CARD.md built from the run's own
files, written when a model finishes training and rewritten by the later stages."""

import re
from pathlib import Path

import pytest

from bt_core import artifacts as art
from bt_core import cli
from bt_core.artifacts.layout import model_card_path
from bt_core.artifacts.reader import load_model_card
from bt_core.artifacts import load_shortcuts
from bt_core.metrics import run_comparison
from bt_core.runs import model_card
from bt_core.runs.evaluate import evaluate_run
from bt_core.shortcuts import flags, wording
from fabricate import (
    CLASS_NAMES,
    ZOO_SHORTCUT_CLEAN,
    ZOO_SHORTCUT_FLAGGED,
    ZOO_SHORTCUT_SKIPPED,
    ZOO_SPLIT_SIZES,
    fabricate_zoo_run,
)
from imagefolders import make_pool, write_images

SIZE = 32
MODEL = "simple_cnn"


def section_of(card: str, title: str) -> str:
    """The text under ``## title`` up to the next section."""
    start = card.index(f"## {title}\n")
    following = card.find("\n## ", start + 1)
    return card[start: following if following >= 0 else len(card)]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The zoo run with shortcut measures and every model's card."""
    zoo = fabricate_zoo_run(tmp_path_factory.mktemp("cards"), shortcuts=True)
    written = model_card.write_model_cards(zoo.run_dir)
    return zoo, written


def test_every_usable_model_gets_a_card_with_every_section(measured):
    zoo, written = measured
    assert sorted(path.parent.name for path in written) == sorted(zoo.good_models)
    assert not model_card_path(zoo.run_dir, zoo.failed_model).exists()
    assert not model_card_path(zoo.run_dir, zoo.corrupt_model).exists()
    card = load_model_card(zoo.run_dir, ZOO_SHORTCUT_FLAGGED)
    headings = re.findall(r"^## (.+)$", card, flags=re.MULTILINE)
    assert headings == list(model_card.SECTIONS)
    assert model_card.NOT_FOR_CLINICAL_USE in section_of(card, "Intended use")
    assert "Not for clinical use" in card


def test_the_card_carries_the_leaderboards_numbers_and_the_split(measured):
    zoo, _written = measured
    run = art.load_run(zoo.run_dir)
    row = run_comparison.leaderboard(run).set_index("model").loc[ZOO_SHORTCUT_CLEAN]
    card = load_model_card(zoo.run_dir, ZOO_SHORTCUT_CLEAN)
    metrics = section_of(card, "Test metrics with 95% intervals")
    assert (f"| Accuracy | {row['accuracy']:.1%} | {row['accuracy_lower']:.1%} – {row['accuracy_upper']:.1%} |"
            in metrics)
    assert f"| Macro AUC | {row['macro_auc']:.3f} | {row['macro_auc_lower']:.3f} – {row['macro_auc_upper']:.3f} |" in metrics
    assert f"{zoo.metrics[ZOO_SHORTCUT_CLEAN]['accuracy']:.1%}" in metrics  # the stored metrics.json agrees
    data = section_of(card, "Training data and split")
    assert "fingerprint `0123abcd`" in data and "figshare-zoo" in data
    per_class = ZOO_SPLIT_SIZES
    assert f"| glioma | {per_class['train']} | {per_class['val']} | {per_class['test']} |" in data
    total = len(CLASS_NAMES) * per_class["test"]
    assert data.rstrip().endswith("(listed in the manifest).") and f"| {total} |" in data
    assert "`rescale`" in section_of(card, "Preprocessing")
    recipe = section_of(card, "Recipe")
    assert "| Optimizer | Adam |" in recipe and "| Seed | 7 |" in recipe and "| Batch size | 16 |" in recipe


def test_the_card_says_the_shortcut_findings_and_dedup_metrics_in_words(measured):
    zoo, _written = measured
    card = load_model_card(zoo.run_dir, ZOO_SHORTCUT_FLAGGED)
    findings = section_of(card, "Shortcut findings")
    assert "Severity: **unsafe**: about 80.0%" in findings
    record = load_shortcuts(zoo.run_dir)["models"][ZOO_SHORTCUT_FLAGGED]
    fired = {flag["name"]: flag for flag in record["flags"]}
    for name in ("outside_head", "border", "background_accuracy"):  # the dashboard's words and numbers
        flag = fired[name]
        assert (f"Flag **{wording.flag_label(flag)}**: {wording.flag_reason(flag, record)}. "
                f"{flags.FLAG_SENTENCES[name]}") in findings
        assert "%" in wording.flag_reason(flag, record) and "n/a" not in wording.flag_reason(flag, record)
    clean = section_of(load_model_card(zoo.run_dir, ZOO_SHORTCUT_CLEAN), "Shortcut findings")
    assert "Severity: **no evidence**" in clean and "No attention or probe flag fired" in clean
    skipped = section_of(load_model_card(zoo.run_dir, ZOO_SHORTCUT_SKIPPED), "Shortcut findings")
    assert skipped.startswith("## Shortcut findings\n\nNot measured: no gradcam maps.")
    dedup = section_of(card, "Metrics on the de-duplicated test set")
    accuracy = zoo.metrics[ZOO_SHORTCUT_FLAGGED]["accuracy"]
    assert f"| Accuracy | {accuracy:.1%} | 50.0% |" in dedup and "158 of 160 test images kept" in dedup
    limitations = section_of(card, "Limitations")
    assert "2 duplicate pair(s), 1 of them across splits" in limitations
    assert "another scanner or site" in limitations  # unsafe severity


def test_absent_shortcut_files_say_not_measured_yet(fabricated_run):
    model_card.write_model_cards(fabricated_run.run_dir)
    card = load_model_card(fabricated_run.run_dir, fabricated_run.good_models[0])
    expected = f"Not measured yet: run `python train_all.py --explain {fabricated_run.run_dir}`."
    assert expected in section_of(card, "Shortcut findings")
    assert expected in section_of(card, "Metrics on the de-duplicated test set")
    assert "None yet: score the model on another dataset folder" in section_of(card, "External evaluations")
    assert "Only 48 test images" in section_of(card, "Limitations")


def test_refresh_reports_a_broken_run_instead_of_failing(tmp_path):
    said = []
    assert model_card.refresh_model_cards(tmp_path / "missing", say=said.append) == []
    assert said and said[0].startswith("model cards not written: ArtifactError:")


def test_severity_words_name_each_verdict():
    assert "not measured" in model_card.severity_words({})
    uncertain = model_card.severity_words({"severity": {"severity": 0.2, "ci_low": 0.05, "ci_high": 0.4}})
    assert uncertain.startswith("Severity: **uncertain**: about 20.0% (95% 5.0% – 40.0%)")
    pair = {"driving_pair": "glioma -> meningioma"}
    unsafe = model_card.severity_words({"severity": {"severity": 0.4, "ci_low": 0.3, "ci_high": 0.5, **pair}})
    assert unsafe.endswith("most of it: glioma images called meningioma once they get the look of a "
                           "meningioma image.")
    none = model_card.severity_words({"severity": {"severity": 0.0, "ci_low": 0.0, "ci_high": 0.08, **pair}})
    assert none.startswith("Severity: **no evidence**") and "most of it" not in none


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny run trained through the command line (one model, one epoch, no analysis)."""
    root = tmp_path_factory.mktemp("card-run")
    data = make_pool(root / "data", per_class=8, size=SIZE)
    assert cli.main(["--data", str(data), "--models", MODEL, "--epochs", "1", "--img-size", str(SIZE),
                     "--batch-size", "16", "--out", str(root / "artifacts"), "--run-id", "r", "--no-explain"]) == 0
    return root / "artifacts" / "r"


def test_training_writes_the_card_and_evaluate_refreshes_it(trained):
    card = load_model_card(trained, MODEL)
    assert card is not None, "training wrote no card"
    accuracy = art.load_run(trained).models[MODEL].metrics["accuracy"]
    assert f"| Accuracy | {accuracy:.1%} |" in section_of(card, "Test metrics with 95% intervals")
    assert "None yet" in section_of(card, "External evaluations")
    assert "| Optimizer | Adam |" in card and "| Phases | scratch |" in card

    tumor = trained.parent.parent / "hospital"
    write_images(tumor / "tumor", 0, 4, 36, seed=7)
    evaluate_run(trained, tumor, name="hospital", say=lambda _line: None)
    refreshed = load_model_card(trained, MODEL)
    row = next(line for line in section_of(refreshed, "External evaluations").splitlines()
               if line.startswith("| hospital |"))
    assert "| tumor |" in row and "4 images of one class (tumor): sensitivity" in row
    assert "AUC, F1 and precision not measurable: the folder holds tumor images only" in row
    assert "Evaluation `hospital` holds one class only" in section_of(refreshed, "Limitations")


def stub_keras_file(path: Path) -> None:
    """A model.keras that passes the cheap archive check (merge refuses a model without one)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential"}')
        archive.writestr("model.weights.h5", b"")


def test_merge_rewrites_the_cards_instead_of_linking_the_shards(tmp_path):
    import os

    from bt_core.runs.merge import merge_runs
    from fabricate import fabricate_run

    first = fabricate_run(tmp_path / "a", good_models={"simple_cnn": 2.0})
    second = fabricate_run(tmp_path / "b", good_models={"cnn_bn": 1.0})
    # Each model in one shard only, and none with damaged files (merge refuses those).
    for shard, dropped in ((first, [first.corrupt_model]), (second, [second.failed_model, second.corrupt_model])):
        manifest = art.read_manifest(shard.run_dir)
        for name in dropped:
            del manifest["models"][name]
        art.write_json(shard.run_dir / art.MANIFEST, manifest)
    for shard, name in ((first, "simple_cnn"), (second, "cnn_bn")):
        stub_keras_file(art.model_dir(shard.run_dir, name) / art.MODEL_FILE)
    model_card.write_model_cards(first.run_dir)
    shard_card = model_card_path(first.run_dir, "simple_cnn")

    merged = merge_runs([first.run_dir, second.run_dir], tmp_path / "out", "merged", say=lambda _line: None)
    card = model_card_path(merged, "simple_cnn")
    assert not os.path.samefile(card, shard_card)  # replaced, so the shard's own card is untouched
    assert "of run `merged`" in card.read_text(encoding="utf-8")
    assert "of run `20240501-120000_demo`" in shard_card.read_text(encoding="utf-8")
    assert "of run `merged`" in load_model_card(merged, "cnn_bn")


def test_the_analysis_pass_rewrites_the_card_with_its_findings(trained):
    from bt_core.runs.analyze import analyze_run

    assert "Not measured yet" in section_of(load_model_card(trained, MODEL), "Shortcut findings")
    analyze_run(trained, methods=("gradcam",), progress=None)
    card = load_model_card(trained, MODEL)
    summary = art.ShortcutSummary.from_json(art.load_shortcuts(trained))
    verdict = flags.severity_verdict(summary.models[MODEL]["severity"])
    assert section_of(card, "Shortcut findings").startswith(f"## Shortcut findings\n\n- Severity: **{verdict}**")
    dedup = section_of(card, "Metrics on the de-duplicated test set")
    kept = summary.audit["duplicates"]["test_kept"]
    assert f"{kept} of {summary.audit['duplicates']['test_images']} test images kept" in dedup
