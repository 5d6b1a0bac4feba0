"""bt-zoo: the installed command, one sub-command per job.

    bt-zoo train --demo                               # what train_all.py does (every training option)
    bt-zoo study study.toml [--resume] [--scheduler ray]   # a study (docs/studies.md); or by flags
    bt-zoo evaluate RUN_DIR --data PATH [--name NAME] # score a finished run on other data
    bt-zoo explain RUN_DIR [--models a,b] [--methods m] [--map-size N]
    bt-zoo merge RUN_DIR... --out DIR --run-id NAME
    bt-zoo predict RUN_DIR IMAGE... [--out DIR] [--method M] [--models a,b]  # probabilities and overlays
    bt-zoo profile RUN_DIR [--data PATH]                # the Data page's profile of an older run
    bt-zoo report RUN_DIR [--out FILE.html]           # the one-file HTML report
    bt-zoo cards RUN_DIR                              # every model's MODEL_CARD.md, written again
    bt-zoo dashboard [--artifacts DIR] [--port N] [--address HOST]
    bt-zoo export-mlflow RUN_DIR [--tracking-uri URI] [--experiment NAME]

train, evaluate, explain and merge run the code of ``train_all.py``'s options of the same
names, with its exit statuses: 0 done, 1 a model failed (or could not be scored or
explained), 2 bad arguments or an unusable run or dataset, 3 disk full, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bt_core.cli import options, predict, profile, publish, serve, train_all
from bt_core.cli.actions import execute
from bt_core.cli.logs import configure_logging

def _train_parser(commands) -> None:
    sub = commands.add_parser("train", help="train a zoo and write one run folder (train_all.py's training options)",
                              description="Train a zoo of models and write one run folder; the run folder is "
                                          "printed on stdout. Exit status 0, 1 (a model failed), 2, 3, 130.")
    options.add_source_options(sub)
    options.add_models_option(sub, "comma-separated model names (see --list-models)")
    options.add_training_options(sub)
    options.add_methods_option(sub)
    options.add_no_explain_option(sub, "training")
    options.add_list_models_option(sub)


def _study_parser(commands) -> None:
    sub = commands.add_parser("study", help="a study: models x variants x seeds, one run folder per cell",
                              description="Run (or with --resume continue) a study declared in a TOML file or by "
                                          "flags (docs/studies.md) into --out/<study id>. Exit status 0 every "
                                          "cell done, 1 a cell failed, 2, 130.")
    sub.add_argument("study", nargs="?", metavar="STUDY_TOML", help="the study file (or declare it by flags)")
    options.add_source_options(sub)
    options.add_models_option(sub, "a study by flags: comma-separated model names (see --list-models)")
    options.add_training_options(sub)
    options.add_study_options(sub, study_file=False)
    options.add_no_explain_option(sub, "each cell")


def _evaluate_parser(commands) -> None:
    sub = commands.add_parser("evaluate", help="score a finished run's models on another dataset folder",
                              description="Score every model of a finished run on the dataset folder --data and "
                                          "store it in the run as evaluations/NAME. Exit status 1: a model "
                                          "could not be scored.")
    sub.add_argument("evaluate", metavar="RUN_DIR", help=options.RUN_DIR_HELP)
    sub.add_argument("--data", required=True, help="dataset folder to score the run's models on (either layout)")
    options.add_evaluation_options(sub)
    options.add_methods_option(sub)
    options.add_no_explain_option(sub, "scoring")


def _explain_parser(commands) -> None:
    sub = commands.add_parser("explain", help="explanation maps and shortcut measures of a finished run",
                              description="Compute a finished run's explanation maps and shortcut measures "
                                          "(under TensorFlow). Exit status 1: one or more models skipped.")
    sub.add_argument("explain", metavar="RUN_DIR", help=options.RUN_DIR_HELP)
    options.add_models_option(sub, "the run's models to analyze, comma-separated (default: all)")
    options.add_methods_option(sub)
    options.add_map_size_option(sub)


def _merge_parser(commands) -> None:
    sub = commands.add_parser("merge", help="merge runs of one experiment trained with different --models",
                              description="Merge shards (runs of the same experiment with different --models) "
                                          "into one run folder --out/--run-id.")
    sub.add_argument("merge", nargs="+", metavar="RUN_DIR", help="the shards' run folders")
    options.add_out_options(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bt-zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_version_option(parser)
    options.add_logging_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_train_parser, _study_parser, _evaluate_parser, _explain_parser, _merge_parser, predict.add_predict_parser,
                profile.add_profile_parser,                 publish.add_report_parser, publish.add_cards_parser, serve.add_dashboard_parser,
                publish.add_export_mlflow_parser):
        add(commands)
    for sub in commands.choices.values():
        options.add_logging_options(sub, keep_unset=True)
    return parser


def _train_all_namespace(args: argparse.Namespace) -> argparse.Namespace:
    """train_all.py's namespace for a train / evaluate / explain / merge command: its defaults,
    then what this command was given."""
    namespace = train_all.defaults()
    for key, value in vars(args).items():
        setattr(namespace, key, value)
    return namespace


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{name: parser} of ``parser``'s sub-commands."""
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    return dict(found[0].choices) if found else {}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.quiet and args.verbose:  # one before the command, the other after it
        parser.error("--quiet and --verbose exclude each other")
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    if args.command == "predict":
        return predict.predict(args.run_dir, args.images, args.out, args.method, args.models)
    if args.command == "profile":
        return profile.profile(args.run_dir, args.data)
    if args.command == "report":
        return publish.report(args)
    if args.command == "cards":
        return publish.cards(Path(args.run_dir))
    if args.command == "export-mlflow":
        return publish.export_mlflow(args)
    if args.command == "dashboard":
        return serve.dashboard(args)
    if args.command == "study" and not (args.study or args.data or args.demo or args.resume):
        subcommand_parsers(parser)["study"].error("give a STUDY_TOML, or --data PATH with --seeds / --variants, "
                                                  "or --resume STUDY_DIR")
    if args.command == "study" and not args.study and not (args.seeds or args.variants or args.resume):
        args.variants = "none"  # a study by flags, even with neither --seeds nor --variants
    if args.command == "train" and not (args.data or args.demo or args.list_models or args.resume):
        subcommand_parsers(parser)["train"].error("one of --data PATH, --demo or --resume RUN_DIR is required")
    return execute(_train_all_namespace(args))
