"""bt-zoo (bt_core.cli.zoo): every sub-command, its help, and the train_all.py code paths it shares."""

import argparse
import html
from importlib import metadata
from pathlib import Path

import pytest

from bt_core import cli
from bt_core.cli import publish, train_all, zoo
from bt_core.cli.actions import EXIT_USAGE
from fabricate import fabricate_run

RUN_ID = "20240501-120000_demo"


def option_actions(parser: argparse.ArgumentParser):
    """(parser prog, action) for every option and positional of ``parser``, its sub-commands
    (their one-line help included) and theirs."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {command.dest: command.help for command in action._choices_actions}
            yield from ((parser.prog, argparse.Action([], name, help=helps.get(name))) for name in action.choices)
            for sub in action.choices.values():
                yield from option_actions(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield parser.prog, action


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    return [f"{prog} {action.option_strings or action.dest}" for prog, action in option_actions(parser)
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS]


@pytest.mark.parametrize("build", [train_all.build_parser, zoo.build_parser], ids=["train_all.py", "bt-zoo"])
def test_every_option_of_every_command_has_help(build):
    parser = build()
    assert len(list(option_actions(parser))) > 30  # the walk reaches the sub-commands' options
    assert undocumented(parser) == []


def test_the_help_walk_finds_an_option_without_help():
    parser = argparse.ArgumentParser(prog="p")
    sub = parser.add_subparsers().add_parser("s", help="a command")
    sub.add_argument("--seed", type=int)
    assert undocumented(parser) == ["p s ['--seed']"]
    undocumented_command = argparse.ArgumentParser(prog="q")
    undocumented_command.add_subparsers().add_parser("t")
    assert undocumented(undocumented_command) == ["q t"]


def test_every_command_is_there_and_help_names_it(capsys):
    names = set(zoo.subcommand_parsers(zoo.build_parser()))
    assert names == {"train", "evaluate", "explain", "merge", "predict", "profile", "report", "cards", "dashboard",
                     "export-mlflow", "study"}
    with pytest.raises(SystemExit) as exited:
        zoo.main(["--help"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert [name for name in sorted(names) if f"    {name} " not in printed and f"    {name}\n" not in printed] == []


@pytest.mark.parametrize("main, prog", [(zoo.main, "bt-zoo"), (cli.main, "train_all.py")])
def test_version_comes_from_the_package_metadata(main, prog, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"{prog} {metadata.version('brain-tumor-zoo')}"


def as_train_all(argv: list[str]) -> dict:
    """What bt-zoo hands to train_all.py's code: its namespace, less the sub-command's name."""
    namespace = vars(zoo._train_all_namespace(zoo.build_parser().parse_args(argv)))
    namespace.pop("command")
    return namespace


@pytest.mark.parametrize("zoo_argv, train_all_argv", [
    (["train", "--data", "D", "--models", "a,b", "--epochs", "3", "--seed", "7", "--val-fraction", "0.2",
      "--tensorboard", "--resume", "--run-id", "r", "-q"],
     ["--data", "D", "--models", "a,b", "--epochs", "3", "--seed", "7", "--val-fraction", "0.2",
      "--tensorboard", "--resume", "--run-id", "r", "-q"]),
    (["train", "--demo", "--no-explain"], ["--demo", "--no-explain"]),
    (["evaluate", "RUN", "--data", "D", "--name", "ext", "--replace", "--no-explain"],
     ["--evaluate", "RUN", "--data", "D", "--name", "ext", "--replace", "--no-explain"]),
    (["explain", "RUN", "--models", "a", "--methods", "gradcam", "--map-size", "16"],
     ["--explain", "RUN", "--models", "a", "--methods", "gradcam", "--map-size", "16"]),
    (["merge", "A", "B", "--out", "O", "--run-id", "zoo"], ["--merge", "A", "B", "--out", "O", "--run-id", "zoo"]),
    (["-v", "explain", "RUN"], ["--explain", "RUN", "--verbose"]),
])
def test_each_command_runs_train_all_with_the_same_settings(zoo_argv, train_all_argv):
    assert as_train_all(zoo_argv) == vars(cli.parse_args(train_all_argv))


def test_tensorboard_reaches_the_run_config(tmp_path):
    args = cli.parse_args(["--data", str(tmp_path), "--tensorboard"])
    assert cli.build_config(args).tensorboard is True
    assert cli.build_config(cli.parse_args(["--data", str(tmp_path)])).tensorboard is False


@pytest.mark.parametrize("argv, message", [
    (["train"], "one of --data PATH, --demo or --resume RUN_DIR is required"),
    (["evaluate", "RUN"], "the following arguments are required: --data"),
    (["-q", "train", "--demo", "-v"], "--quiet and --verbose exclude each other"),
])
def test_bad_arguments_exit_2_with_one_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        zoo.main(argv)
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_an_unreadable_run_is_the_same_error_from_both_commands(tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    assert zoo.main(["explain", str(missing)]) == EXIT_USAGE
    from_zoo = capsys.readouterr().err
    assert cli.main(["--explain", str(missing)]) == EXIT_USAGE
    assert from_zoo == capsys.readouterr().err
    assert from_zoo.splitlines()[-1] == f"error: {missing / 'manifest.json'} is missing: not a run folder"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fabricate_run(tmp_path_factory.mktemp("artifacts"), RUN_ID).run_dir


def test_report_is_written_to_the_run_id_in_the_current_folder(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert zoo.main(["report", str(run_dir)]) == 0
    written = tmp_path / f"{RUN_ID}_report.html"
    assert capsys.readouterr().out.strip() == str(written)
    text = written.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html") and html.escape(RUN_ID) in text
    assert [p.name for p in tmp_path.iterdir()] == [written.name]  # no temporary file left


@pytest.fixture
def quick_report(monkeypatch):
    """build_report replaced by a stub naming the run (the real one takes seconds)."""
    import bt_dashboard.report

    monkeypatch.setattr(bt_dashboard.report, "build_report", lambda run: f"<!DOCTYPE html><p>{run.run_id}</p>")


def test_report_out_names_the_file_and_a_broken_run_exits_2(run_dir, tmp_path, capsys, quick_report):
    target = tmp_path / "sub" / "r.html"
    assert zoo.main(["report", str(run_dir), "--out", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_text(encoding="utf-8") == f"<!DOCTYPE html><p>{RUN_ID}</p>"
    assert zoo.main(["report", str(tmp_path / "nothing")]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("error: ")


def test_export_mlflow_without_mlflow_says_how_to_install_it(run_dir, monkeypatch, capsys):
    real_find_spec = publish.importlib.util.find_spec
    monkeypatch.setattr(publish.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real_find_spec(name, *a))
    assert zoo.main(["export-mlflow", str(run_dir)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == "export-mlflow needs MLflow: pip install 'brain-tumor-zoo[mlflow]'"


def test_export_mlflow_passes_the_report_and_a_local_store_by_default(run_dir, tmp_path, monkeypatch, capsys,
                                                                     quick_report):
    pytest.importorskip("mlflow")
    from bt_core.tracking import mlflow_export

    seen = {}

    def export_run(run, *, tracking_uri, experiment, report_html):
        seen.update(run=Path(run), uri=tracking_uri, experiment=experiment, report=Path(report_html).name,
                    report_text=Path(report_html).read_text(encoding="utf-8"))
        return ["id-1", "id-2"]

    monkeypatch.setattr(mlflow_export, "export_run", export_run)
    monkeypatch.chdir(tmp_path)
    assert zoo.main(["export-mlflow", str(run_dir), "--experiment", "lab"]) == 0
    assert capsys.readouterr().out.split() == ["id-1", "id-2"]
    assert seen["uri"] == (tmp_path / "mlruns").resolve().as_uri() and seen["experiment"] == "lab"
    assert seen["run"] == run_dir and seen["report"] == f"{RUN_ID}_report.html"
    assert seen["report_text"] == f"<!DOCTYPE html><p>{RUN_ID}</p>"


def test_export_mlflow_to_a_store_that_refuses_exits_2_naming_it(run_dir, tmp_path, monkeypatch, capsys,
                                                                  quick_report):
    pytest.importorskip("mlflow")
    from mlflow.exceptions import MlflowException

    from bt_core.tracking import mlflow_export

    def refused(*args, **kwargs):
        raise MlflowException("Model registry functionality is unavailable\n(traceback detail)")

    monkeypatch.setattr(mlflow_export, "export_run", refused)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    assert zoo.main(["export-mlflow", str(run_dir), "--tracking-uri", "sqlite:///x.db"]) == EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: cannot log to sqlite:///x.db: Model registry functionality is unavailable")
    assert publish.os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == str(publish.HTTP_RETRIES)  # a dead server fails fast


@pytest.mark.parametrize("command", [["cards"], ["--cards"]], ids=["bt-zoo cards", "train_all.py --cards"])
def test_cards_writes_every_finished_models_card_again(command, tmp_path, capsys):
    from bt_core.artifacts import load_model_card, model_card_path

    fabricated = fabricate_run(tmp_path, RUN_ID)
    for name in fabricated.good_models:
        model_card_path(fabricated.run_dir, name).unlink(missing_ok=True)
    main = zoo.main if command == ["cards"] else cli.main
    assert main([*command, str(fabricated.run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(model_card_path(fabricated.run_dir, name)) for name in fabricated.good_models]
    for name in fabricated.good_models:
        assert "not for clinical use" in load_model_card(fabricated.run_dir, name).lower()


def test_cards_of_a_folder_that_is_no_run_exits_2_and_goes_alone(tmp_path, capsys):
    assert zoo.main(["cards", str(tmp_path)]) == EXIT_USAGE
    assert "is missing: not a run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["--cards", str(tmp_path), "--demo"])
    assert exited.value.code == EXIT_USAGE
    assert "--cards takes a finished run folder only" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["profile"], ["--profile"]], ids=["bt-zoo profile", "train_all.py --profile"])
def test_profile_without_the_runs_dataset_exits_2_saying_to_give_it(command, tmp_path, capsys):
    fabricated = fabricate_run(tmp_path, RUN_ID)
    main = zoo.main if command == ["profile"] else cli.main
    missing = tmp_path / "moved-away"
    assert main([*command, str(fabricated.run_dir), "--data", str(missing)]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: dataset folder {missing} is not on this machine; give it with --data")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--profile", str(fabricated.run_dir), "--demo"])
    assert exited.value.code == EXIT_USAGE
    assert "--profile takes a finished run folder and optionally --data PATH only" in capsys.readouterr().err
