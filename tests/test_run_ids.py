"""Run ids become folders inside --out: unsafe ones are refused (exit 2, a message), and two
runs with the default id started in the same second never share a folder."""

from __future__ import annotations

import json

import pytest

from bt_core import cli
from bt_core.runs.merge import check_run_id, merge_runs

UNSAFE = ["../../escape", "..", ".hidden", "-dash", "a/b", "a\\b", "", "x" * 101, "sp ace"]


@pytest.mark.parametrize("run_id", UNSAFE)
def test_unsafe_run_ids_are_refused_with_the_rule(run_id):
    with pytest.raises(ValueError, match=r"--run-id .* not a safe folder name inside --out"):
        check_run_id(run_id)


@pytest.mark.parametrize("run_id", ["zoo", "20260101-120000-demo", "Zoo_2.a", "7"])
def test_safe_run_ids_pass(run_id):
    assert check_run_id(run_id) == run_id


def _refused(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--run-id" in err and "not a safe folder name" in err, err
    return err


def test_training_with_an_escaping_or_absolute_run_id_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "out"
    data = tmp_path / "data"
    data.mkdir()
    _refused(["--data", str(data), "--out", str(out), "--run-id", "../../escape", "--no-explain"], capsys)
    target = tmp_path / "abs-run"
    _refused(["--data", str(data), "--out", str(out), "--run-id", str(target), "--no-explain"], capsys)
    _refused(["--resume", "--data", str(data), "--out", str(out), "--run-id", "../../escape"], capsys)
    assert not (tmp_path / "a" / "escape").exists() and not target.exists() and not out.exists()


def test_merge_with_an_escaping_run_id_exits_2_and_writes_nothing(tmp_path, capsys):
    shards = []
    for name in ("s1", "s2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"run_id": name}))
        shards.append(str(tmp_path / name))
    out = tmp_path / "x" / "y" / "out"
    _refused(["--merge", *shards, "--out", str(out), "--run-id", "../../m"], capsys)
    assert not (tmp_path / "x" / "m").exists() and not out.exists()
    with pytest.raises(ValueError, match="not a safe folder name"):  # the function itself, not only the CLI
        merge_runs(shards, out, "/tmp/m", say=lambda _: None)


def test_two_default_run_ids_in_the_same_second_get_two_folders(tmp_path):
    from bt_core.runs.zoo import new_run_folder

    default = "20260101-120000-demo"
    first = new_run_folder(tmp_path, None, default)
    second = new_run_folder(tmp_path, None, default)
    assert first.name == default and second.name == f"{default}-2"
    assert first.is_dir() and second.is_dir() and first != second


def test_a_given_run_id_is_checked_and_an_existing_run_refused(tmp_path):
    from bt_core.runs.zoo import new_run_folder

    run_dir = new_run_folder(tmp_path, "zoo", "unused")
    assert run_dir == tmp_path / "zoo" and run_dir.is_dir()
    (run_dir / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds a run"):
        new_run_folder(tmp_path, "zoo", "unused")
    with pytest.raises(ValueError, match="not a safe folder name"):
        new_run_folder(tmp_path, "../zoo", "unused")
    assert not (tmp_path.parent / "zoo").exists()
