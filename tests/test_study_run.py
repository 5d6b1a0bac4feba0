"""A study end to end on tiny data: 1 model x 2 variants x 2 seeds by flags, interrupted in its
last cell (Ctrl-C inside training), then resumed: the interrupted cell's run continues, the
done cells are not trained again; a failing cell is recorded while the others finish."""

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from bt_core import artifacts as art
from bt_core import cli
from bt_core.cli import zoo as bt_zoo
from bt_core.artifacts.study import load_study
from bt_core.runs import zoo
from bt_core.runs.study import run_cell
from imagefolders import make_pool

LAST = "simple_cnn__crop_head__s1"
CELLS = ["simple_cnn__none__s0", "simple_cnn__none__s1", "simple_cnn__crop_head__s0", LAST]


def study_argv(data: Path, out: Path, study_id: str = "tiny", epochs: str = "1") -> list[str]:
    return ["--data", str(data), "--models", "simple_cnn", "--seeds", "0,1", "--variants", "none;crop_head",
            "--epochs", epochs, "--img-size", "32", "--batch-size", "16", "--out", str(out),
            "--study-id", study_id, "--no-explain", "--quiet"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study interrupted in its last cell, then continued with --resume."""
    root = tmp_path_factory.mktemp("study")
    data = make_pool(root / "data", per_class=8, size=32)
    out = root / "artifacts"
    argv = study_argv(data, out)
    real_train_one, real_run_zoo = zoo.train_one, zoo.run_zoo
    with pytest.MonkeyPatch.context() as patch:
        def interrupt_last(writer, name, config, *args, **kwargs):
            if config.run_id == LAST:
                raise KeyboardInterrupt  # Ctrl-C while the model trains
            return real_train_one(writer, name, config, *args, **kwargs)

        patch.setattr(zoo, "train_one", interrupt_last)
        interrupted_code = cli.main(argv)
    study_dir = out / "tiny"
    interrupted = json.loads((study_dir / "study.json").read_text())
    last_run = study_dir / "runs" / LAST
    last_status = art.read_manifest(last_run)["models"]["simple_cnn"]["status"]
    last_split = (last_run / art.SPLIT).read_bytes()
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        def spy(config, *args, **kwargs):
            calls.append((config.run_id, kwargs.get("resume")))
            return real_run_zoo(config, *args, **kwargs)

        patch.setattr(zoo, "run_zoo", spy)
        resumed_code = cli.main([*argv, "--resume"])
    return SimpleNamespace(data=data, out=out, argv=argv, dir=study_dir, interrupted_code=interrupted_code,
                           interrupted=interrupted, last_status=last_status, last_split=last_split, calls=calls,
                           resumed_code=resumed_code)


def test_an_interrupted_study_keeps_its_done_cells_and_the_unfinished_run(study):
    assert study.interrupted_code == cli.EXIT_INTERRUPTED
    statuses = {c["cell_id"]: c["status"] for c in study.interrupted["cells"]}
    assert statuses == {**{cell: "done" for cell in CELLS[:3]}, LAST: "pending"}
    assert study.last_status == art.STATUS_RUNNING  # a run folder left unfinished


def test_resume_continues_the_interrupted_cell_and_trains_nothing_else(study):
    assert study.resumed_code == cli.EXIT_OK
    assert study.calls == [(LAST, study.dir / "runs" / LAST)]  # resumed, not restarted; done cells untouched
    assert (study.dir / "runs" / LAST / art.SPLIT).read_bytes() == study.last_split


def test_every_cell_is_done_and_a_readable_run_of_its_own_settings(study):
    manifest = load_study(study.dir)
    assert [c.cell_id for c in manifest.cells] == CELLS
    assert all(c.status == "done" and c.attempts == 1 and c.reason is None and c.seconds > 0 and c.finished
               for c in manifest.cells)
    assert (study.dir / "study.toml").is_file()
    for cell in manifest.cells:
        assert cell.run == f"runs/{cell.cell_id}"
        run = art.load_run(study.dir / cell.run)
        config = run.manifest["config"]
        assert (config["seed"], config["models"], config["run_id"]) == (cell.seed, ["simple_cnn"], cell.cell_id)
        assert config["preprocess"] == (["crop_head"] if cell.variant == "crop_head" else [])
        assert (config["epochs"], config["img_size"]) == (1, 32)
        assert run.manifest["models"]["simple_cnn"]["status"] == art.STATUS_DONE


def test_resuming_a_done_study_trains_nothing(study, monkeypatch, capsys):
    before = {c.cell_id: c for c in load_study(study.dir).cells}

    def no_training(*args, **kwargs):
        raise AssertionError("a done cell was trained again")

    monkeypatch.setattr(zoo, "run_zoo", no_training)
    assert cli.main([*study.argv, "--resume"]) == cli.EXIT_OK
    assert "study tiny: 4 done, 0 failed" in capsys.readouterr().out
    assert {c.cell_id: c for c in load_study(study.dir).cells} == before


def test_a_study_folder_alone_is_resumed_from_its_study_json(study, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "run_zoo", lambda *args, **kwargs: pytest.fail("a done cell was trained again"))
    assert cli.main(["--resume", str(study.dir), "--quiet"]) == cli.EXIT_OK
    assert bt_zoo.main(["study", "--resume", str(study.dir), "--quiet"]) == cli.EXIT_OK
    assert capsys.readouterr().out.count("study tiny: 4 done, 0 failed") == 2


def test_an_existing_study_needs_resume_and_the_same_spec(study, capsys):
    assert cli.main(study.argv) == cli.EXIT_USAGE
    assert "study tiny exists; add --resume to continue it" in capsys.readouterr().err
    assert cli.main([*study_argv(study.data, study.out, epochs="2"), "--resume"]) == cli.EXIT_USAGE
    assert "cannot continue study tiny: it was started with another spec (differs in settings.epochs)" in \
        capsys.readouterr().err


def copy_of_the_tiny_study(study):
    def fake_training(config, resume=None, **kwargs):
        """The tiny study's own run of the same cell, copied: no training here."""
        if config.run_id == "simple_cnn__none__s1":
            raise RuntimeError("out of\nmemory")
        target = Path(config.out) / config.run_id
        shutil.copytree(study.dir / "runs" / config.run_id, target)
        return target

    return fake_training


def test_a_study_from_a_toml_file(study, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "run_zoo", copy_of_the_tiny_study(study))
    spec = tmp_path / "specs" / "from-file.toml"
    spec.parent.mkdir()
    relative = os.path.relpath(study.data, spec.parent)
    spec.write_text(f"""[study]
data = "{relative}"
models = ["simple_cnn"]
seeds = [0]
explain = false
[settings]
epochs = 1
img_size = 32
batch_size = 16
[[variants]]
name = "crop_head"
preprocess = ["crop_head"]
""")
    assert cli.main(["--study", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == cli.EXIT_OK
    assert "study from-file: 1 done, 0 failed" in capsys.readouterr().out
    stored = load_study(tmp_path / "out" / "from-file")
    assert [c.cell_id for c in stored.cells] == ["simple_cnn__crop_head__s0"]
    assert stored.spec["data"] == str(study.data)  # resolved against the file's folder
    assert (tmp_path / "out" / "from-file" / "study.toml").is_file()


def test_a_failing_cell_is_recorded_with_its_reason_while_the_others_finish(study, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "run_zoo", copy_of_the_tiny_study(study))
    argv = study_argv(study.data, tmp_path, study_id="other")
    assert cli.main(argv) == cli.EXIT_MODEL_FAILED
    assert "study other: 3 done, 1 failed" in capsys.readouterr().out
    cells = {c.cell_id: c for c in load_study(tmp_path / "other").cells}
    assert cells["simple_cnn__none__s1"].status == "failed"
    assert cells["simple_cnn__none__s1"].reason == "RuntimeError: out of memory"  # one line
    assert cells["simple_cnn__none__s1"].attempts == 1
    assert [cells[c].status for c in CELLS if c != "simple_cnn__none__s1"] == ["done"] * 3
    assert cli.main([*argv, "--resume"]) == cli.EXIT_MODEL_FAILED  # tried again, failed again
    assert load_study(tmp_path / "other").cell("simple_cnn__none__s1").attempts == 2


def test_run_cell_never_raises_and_evaluates_once(study, tmp_path):
    assert run_cell(str(tmp_path / "nowhere"), CELLS[0]).status == "failed"
    assert "is not a study folder" in run_cell(str(tmp_path / "nowhere"), CELLS[0]).reason
    copy = tmp_path / "tiny"
    shutil.copytree(study.dir, copy)
    stored = json.loads((copy / "study.json").read_text())
    stored["spec"]["evaluations"] = [{"name": "again", "data": str(study.data)}]
    (copy / "study.json").write_text(json.dumps(stored))
    first = run_cell(str(copy), CELLS[0])
    assert (first.status, first.reason) == ("done", None)
    evaluation = art.evaluation_dir(copy / "runs" / CELLS[0], "again")
    written = (evaluation / art.MANIFEST).stat().st_mtime_ns
    assert art.list_evaluations(copy / "runs" / CELLS[0]) == ["again"]
    assert run_cell(str(copy), CELLS[0]).status == "done"
    assert (evaluation / art.MANIFEST).stat().st_mtime_ns == written  # not evaluated again
    assert run_cell(str(copy), "no_such_cell").reason == "ValueError: study tiny has no cell 'no_such_cell'"
