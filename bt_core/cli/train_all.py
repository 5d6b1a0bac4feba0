"""The command line of ``train_all.py``: train a zoo of brain-tumor MRI classifiers and write one
run folder for the dashboard.

    python train_all.py --demo --out artifacts
    python train_all.py --data PATH --models simple_cnn,resnet50 --epochs 30 --img-size 224 --seed 42
    python train_all.py --data PATH --preprocess crop_head,clahe --augment device
    python train_all.py --resume artifacts/RUN_ID          # continue an interrupted run
    python train_all.py --data PATH ... --resume            # the same command, continued
    python train_all.py --merge artifacts/A artifacts/B --out artifacts --run-id zoo
    python train_all.py --explain artifacts/RUN_ID          # maps and measures of a run trained under JAX
    python train_all.py --explain artifacts/RUN_ID --methods gradcam --models simple_cnn --map-size 32
    python train_all.py --evaluate artifacts/RUN_ID --data PATH --name NAME   # score on other data
    python train_all.py --evaluate artifacts/RUN_ID --data PATH --max-per-class 250   # a seeded sample of it
    python train_all.py --cards artifacts/RUN_ID         # every model's MODEL_CARD.md, written again
    python train_all.py --predict artifacts/RUN_ID a.png b.jpg [--out DIR] [--method gradcam]
    python train_all.py --profile artifacts/RUN_ID [--data PATH]   # the Data page of an older run
    python train_all.py --study study.toml [--resume] [--scheduler ray]  # a study: docs/studies.md
    python train_all.py --data PATH --models a,b --seeds 0,1,2 --variants "none;crop_head"  # one by flags

The same commands, one each: ``bt-zoo train | evaluate | explain | merge | predict | profile`` (``bt-zoo --help``).
``--predict RUN_DIR IMAGE...`` prints every finished model's class probabilities for each image
and writes predictions.csv and one overlay PNG per image and model (``--method``, default
gradcam) to ``--out`` (default ./RUN_ID_predictions); exit status 1 there: an image or a model
was skipped (named on stderr), the others are still predicted.
The Keras backend comes from KERAS_BACKEND (tensorflow by default; jax on GPU machines).
Under TensorFlow a run ends with its analysis pass (bt_core.runs.analyze): the explanation
maps of every test image (Grad-CAM and Faster Score-CAM, for the dashboard) and every model's
shortcut measures (bt_core.shortcuts), each model loaded once; tf-keras-vis needs TensorFlow,
so a run trained under another backend gets them from ``--explain RUN_DIR`` afterwards
(exit status there: 0 every model done, 1 one or more skipped, 2 an unreadable run or bad
arguments).
``--evaluate RUN_DIR --data PATH`` scores every model of a finished run on another dataset
folder (the run's classes, or tumor / notumor for tumor detection) and stores it in the run
as RUN_DIR/evaluations/NAME (NAME: ``--name``, default the folder's name; an existing one
is redone only with ``--replace``), then analyzes it like a run (not with
``--no-explain``); exit status 1 there means a model could not be scored.
Progress goes to stderr, one line per epoch with a measured estimate of the time left, and inside
each epoch a bar on a terminal or a line every ~30 s in a log file (``--quiet``: warnings and errors only;
``--verbose``: debugging detail and TensorFlow's own logs); the run folder is printed on stdout.
Exit status: 0 when every model trained, 1 when one or more failed (the others are still
saved, and the run folder records why), 2 for bad arguments, an unusable dataset or an --out
that cannot be written, 3 when the disk (or quota) filled up: "no space left on device while
writing PATH", 130 when interrupted (Ctrl-C). After 3 or 130 the run folder holds no
half-written file and ``--resume RUN_DIR`` continues it, the model that was training from its
last finished epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bt_core.cli import options, predict, profile
from bt_core.cli.actions import execute
from bt_core.cli.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_all.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_source_options(parser)
    options.add_models_option(parser, "comma-separated model names (see --list-models; with --explain: "
                                      "the run's models to analyze, default all)")
    options.add_training_options(parser)
    options.add_study_options(parser)
    parser.add_argument("--merge", nargs="+", metavar="RUN_DIR",
                        help="merge runs of the same experiment with different --models into --out/--run-id")
    parser.add_argument("--explain", metavar="RUN_DIR",
                        help="only analyze a finished run: explanation maps and shortcut measures (under TensorFlow)")
    options.add_methods_option(parser)
    options.add_map_size_option(parser, "--explain: ")
    options.add_no_explain_option(parser, "training")
    parser.add_argument("--evaluate", metavar="RUN_DIR",
                        help="score every model of a finished run on the dataset folder --data and store it "
                             "in the run as evaluations/NAME")
    options.add_evaluation_options(parser, "--evaluate; ")
    parser.add_argument("--cards", metavar="RUN_DIR",
                        help="only write (again) the MODEL_CARD.md of every finished model of a run, "
                             "e.g. of a run made before model cards existed")
    parser.add_argument("--predict", nargs="+", metavar=("RUN_DIR", "IMAGE"),
                        help="predict image files with every finished model of a run: probabilities on stdout, "
                             "predictions.csv and overlay PNGs in --out")
    parser.add_argument("--method", help=f"--predict: {predict.METHOD_HELP}")
    parser.add_argument("--profile", metavar="RUN_DIR",
                        help="only write (again) the data profile of a finished run (its Data page) from its "
                             f"dataset folder; --data: {profile.DATA_HELP}")
    options.add_list_models_option(parser)
    options.add_logging_options(parser)
    options.add_version_option(parser)
    return parser


def check_combination(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The rules of which options go together (parser.error, exit status 2, otherwise)."""
    has_source = bool(args.data or args.demo)
    if args.predict:
        if len(args.predict) < 2:
            parser.error("--predict needs a run folder and at least one image: --predict RUN_DIR IMAGE...")
        if has_source or args.resume is not None or args.merge or args.explain or args.evaluate or args.cards:
            parser.error("--predict takes a finished run folder and image files only (no --data, --demo, --resume, "
                         "--merge, --explain, --evaluate or --cards)")
        return
    if args.method is not None:
        parser.error("--method belongs to --predict RUN_DIR IMAGE...")
    if args.profile:
        if args.demo or args.resume is not None or args.merge or args.explain or args.evaluate or args.cards:
            parser.error("--profile takes a finished run folder and optionally --data PATH only (no --demo, "
                         "--resume, --merge, --explain, --evaluate or --cards)")
        return
    if args.cards:
        if has_source or args.resume is not None or args.merge or args.explain or args.evaluate:
            parser.error("--cards takes a finished run folder only (no --data, --demo, --resume, --merge, "
                         "--explain or --evaluate)")
        return
    if args.evaluate:
        if args.demo or args.resume is not None or args.merge or args.explain:
            parser.error("--evaluate takes a finished run folder and --data PATH only "
                         "(no --demo, --resume, --merge or --explain)")
        if not args.data:
            parser.error("--evaluate RUN_DIR needs --data PATH, the dataset folder to score the run's models on")
    elif args.name is not None or args.replace:
        parser.error("--name and --replace belong to --evaluate RUN_DIR")
    elif args.explain:
        if has_source or args.resume is not None or args.merge:
            parser.error("--explain takes a finished run folder only (no --data, --demo, --resume or --merge)")
    elif args.merge:
        if has_source or args.resume is not None:
            parser.error("--merge takes run folders only (no --data, --demo or --resume)")
    elif not (has_source or args.list_models or args.resume or args.study):
        parser.error("one of --data, --demo, --resume RUN_DIR, --merge, --explain RUN_DIR or "
                     "--evaluate RUN_DIR is required")
    if args.map_size is not None and not args.explain:
        parser.error("--map-size belongs to --explain RUN_DIR")
    check_study_combination(parser, args)


def check_study_combination(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from bt_core.cli.study import is_study_command

    study = is_study_command(args)
    if study and (args.merge or args.explain or args.evaluate or args.cards or args.list_models):
        parser.error("a study (--study, --seeds, --variants) trains its own runs: no --merge, --explain, "
                     "--evaluate, --cards or --list-models")
    if args.study and (args.data or args.demo or args.models or args.seeds or args.variants):
        parser.error("--study STUDY_TOML declares the data, models, seeds and variants: drop --data, --demo, "
                     "--models, --seeds and --variants")
    if not study and (args.scheduler != "sequential" or args.ray_address):
        parser.error("--scheduler and --ray-address belong to a study (--study, --seeds or --variants)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_combination(parser, args)
    return args


def defaults() -> argparse.Namespace:
    """Every option at its default: what ``bt-zoo``'s sub-commands fill in."""
    return build_parser().parse_args([])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    if args.predict:
        out = None if isinstance(args.out, options.Unset) else args.out
        return predict.predict(args.predict[0], args.predict[1:], out, args.method or "gradcam", args.models)
    if args.profile:
        return profile.profile(args.profile, args.data)
    if args.cards:
        from bt_core.cli.publish import cards

        return cards(Path(args.cards))
    return execute(args)
