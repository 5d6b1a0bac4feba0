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
Exit status: 0 when every model trained, 1 when one or more failed (the others are still
saved, and the run folder records why), 2 for bad arguments, an unusable dataset or an --out
that cannot be written, 3 when the disk (or quota) filled up: "no space left on device while
writing PATH", 130 when interrupted (Ctrl-C). After 3 or 130 the run folder holds no
half-written file and ``--resume RUN_DIR`` continues it, the model that was training from its
last finished epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

EXIT_OK, EXIT_MODEL_FAILED, EXIT_USAGE, EXIT_DISK_FULL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
DEMO_DATA_DIR = "data/demo"
DEMO_DEFAULTS = {"epochs": 10, "img_size": 64}
# --resume without a folder: find the run from --run-id, or by its settings, in --out.
FIND_RUN = ""


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # Over 60 lines: one flat table of options and their combination rules, read top to bottom.
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="dataset folder: ROOT/Training|Testing/<class>/* or ROOT/<class>/*")
    source.add_argument("--demo", action="store_true", help="generate the synthetic demo dataset and train the demo zoo")
    parser.add_argument("--demo-data", default=DEMO_DATA_DIR, help=f"where --demo writes its dataset ({DEMO_DATA_DIR})")
    parser.add_argument("--models", help="comma-separated model names (see --list-models; with --explain: "
                                         "the run's models to analyze, default all)")
    parser.add_argument("--epochs", type=int, help="maximum epochs per phase (early stopping may stop sooner)")
    parser.add_argument("--img-size", type=int, help="square input size in pixels")
    parser.add_argument("--batch-size", type=int, help="batch size for every model (default: each model's recipe)")
    parser.add_argument("--out", default="artifacts", help="folder that receives the run folder (artifacts)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--weights", default="none", help="none (from scratch), imagenet, or a local weights file")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15, help="pool layout only")
    parser.add_argument("--max-per-class", type=int, help="use at most N images per class and source split")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--preprocess", default="",
                        help="image operations applied in order when decoding, comma-separated: "
                             "clahe, sharpen, histeq, crop_head (default: none)")
    parser.add_argument("--augment", choices=["device", "numpy", "none"], default="device",
                        help="device: one random affine warp per image inside the compiled train step (default); "
                             "numpy: flips, shifts, brightness on the host; none")
    parser.add_argument("--no-augment", action="store_true", help="same as --augment none")
    parser.add_argument("--data-parallel", action="store_true",
                        help="split each batch over all local devices (JAX DataParallel / tf MirroredStrategy)")
    parser.add_argument("--workers", type=int, default=1,
                        help="threads preparing batches ahead of the model (1: none; try 4-8 on a fast GPU)")
    parser.add_argument("--run-id", help="name of the run folder (default: time stamp and dataset name)")
    parser.add_argument("--resume", nargs="?", const=FIND_RUN, metavar="RUN_DIR",
                        help="continue an interrupted run: RUN_DIR alone (its stored settings), or added to "
                             "the original command (the run named by --run-id, else the newest run in --out "
                             "with the same settings). Finished models are kept; the others train again")
    parser.add_argument("--merge", nargs="+", metavar="RUN_DIR",
                        help="merge runs of the same experiment with different --models into --out/--run-id")
    parser.add_argument("--explain", metavar="RUN_DIR",
                        help="only analyze a finished run: explanation maps and shortcut measures (under TensorFlow)")
    parser.add_argument("--methods", default=None,
                        help="explanation methods to compute, comma-separated (default: gradcam,faster_scorecam)")
    parser.add_argument("--map-size", type=int, default=None,
                        help="--explain: side of the stored maps in pixels (default: min(64, image size))")
    parser.add_argument("--no-explain", action="store_true",
                        help="do not compute explanation maps and shortcut measures after training")
    parser.add_argument("--evaluate", metavar="RUN_DIR",
                        help="score every model of a finished run on the dataset folder --data and store it "
                             "in the run as evaluations/NAME")
    parser.add_argument("--name", help="name of the evaluation (--evaluate; default: the --data folder's name)")
    parser.add_argument("--replace", action="store_true", help="redo an existing evaluation of the same --name")
    parser.add_argument("--list-models", action="store_true", help="print the model names and exit")
    args = parser.parse_args(argv)
    has_source = bool(args.data or args.demo)
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
    elif not (has_source or args.list_models or args.resume):
        parser.error("one of --data, --demo, --resume RUN_DIR, --merge, --explain RUN_DIR or "
                     "--evaluate RUN_DIR is required")
    if args.map_size is not None and not args.explain:
        parser.error("--map-size belongs to --explain RUN_DIR")
    return args


def build_config(args: argparse.Namespace):
    from bt_core.training.config import DEFAULT_MODELS, DEMO_MODELS, RunConfig

    demo = bool(args.demo)
    defaults = DEMO_DEFAULTS if demo else {"epochs": 30, "img_size": 224}
    models = _names(args.models)
    data = args.data
    if demo:
        from bt_core.data.demo import generate_demo_dataset

        data = str(generate_demo_dataset(args.demo_data))
    weights = None if str(args.weights).lower() == "none" else args.weights
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise SystemExit(f"--weights: no such file: {weights}")
    augment_mode = "none" if args.no_augment else args.augment
    return RunConfig(
        data=data,
        models=models or (DEMO_MODELS if demo else DEFAULT_MODELS),
        # "is None", not "or": --epochs 0 is refused by RunConfig, never read as the default.
        epochs=defaults["epochs"] if args.epochs is None else args.epochs,
        img_size=defaults["img_size"] if args.img_size is None else args.img_size,
        batch_size=args.batch_size,
        seed=args.seed,
        out=args.out,
        weights=weights,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        max_per_class=args.max_per_class,
        precision=args.precision,
        augment=augment_mode != "none",
        run_id=args.run_id,
        demo=demo,
        preprocess=_names(args.preprocess),
        augment_mode=augment_mode,
        data_parallel=args.data_parallel,
        workers=args.workers,
    )


@dataclass
class Stage:
    """What the command was doing, to say how to continue when it stops: ``step`` (train,
    explain, evaluate, merge) and the run folder once it exists."""

    step: str = "train"
    run_dir: Path | None = None

    def found(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def remedy(self) -> str:
        from bt_core.artifacts import manifest_path

        if self.step == "explain" and self.run_dir is not None:
            return f"compute the maps with `python train_all.py --explain {self.run_dir}`"
        if self.step == "train" and self.run_dir is not None and manifest_path(self.run_dir).is_file():
            return f"resume with `python train_all.py --resume {self.run_dir}`"
        return "run the command again"


def _train(args: argparse.Namespace, stage: Stage) -> Path:
    """Start a run, or resume one; returns its folder."""
    from bt_core.runs.resume import check_same_experiment, find_run_to_resume, stored_config
    from bt_core.runs.zoo import run_zoo

    if args.resume is None:
        return run_zoo(build_config(args), on_run_folder=stage.found)
    if args.resume == FIND_RUN:
        config = build_config(args)
        return run_zoo(config, resume=find_run_to_resume(config), on_run_folder=stage.found)
    run_dir = Path(args.resume)
    config = stored_config(run_dir)
    if args.data or args.demo:  # a full command plus the folder: they must describe the same run
        check_same_experiment(run_dir, build_config(args))
    return run_zoo(config, resume=run_dir, on_run_folder=stage.found)


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _explain(run_dir: Path, methods: str | None, models: str | None = None, map_size: int | None = None) -> dict:
    """The run's analysis pass (maps, then shortcut measures, one model load each);
    returns analyze_run's result."""
    from bt_core.runs.analyze import DEFAULT_METHODS, analyze_run

    _say(f"explanation maps and shortcut measures of {run_dir} ...")
    return analyze_run(run_dir, methods=_names(methods) or DEFAULT_METHODS, models=_names(models) or None,
                       map_size=map_size, progress=_say)


def _explain_after_training(run_dir: Path, methods: str | None) -> None:
    import keras

    if keras.backend.backend() != "tensorflow":
        _say(f"explanation maps need TensorFlow (tf-keras-vis); this run trained under "
             f"{keras.backend.backend()}. Compute them with: python train_all.py --explain {run_dir}")
        return
    result = _explain(run_dir, methods)
    for name, reason in result["skipped"].items():
        _say(f"warning: no maps for {name}: {reason}")


def _evaluate(args: argparse.Namespace) -> int:
    """Score a finished run on --data, then analyze the evaluation; the exit status."""
    from bt_core.artifacts import load_manifest
    from bt_core.runs.evaluate import evaluate_run, scoring_failures

    evaluation_dir = evaluate_run(Path(args.evaluate), args.data, args.name, say=_say, replace=args.replace)
    if not args.no_explain:
        _explain_after_training(evaluation_dir, args.methods)
    failed = scoring_failures(load_manifest(evaluation_dir))
    for name, error in failed.items():
        print(f"error: {name} could not be scored: {error}", file=sys.stderr)
    print(evaluation_dir)
    return 1 if failed else 0


def _failed_file(exc: BaseException) -> str:
    """The file a full-disk error names (NoSpaceLeft's path, else the OSError's filename)."""
    current: BaseException | None = exc
    while current is not None:
        path = getattr(current, "path", None) or getattr(current, "filename", None)
        if path:
            return str(path)
        current = current.__cause__ or current.__context__
    return "a file"


def _error_status(exc: Exception, stage: Stage) -> int | None:
    """Print what went wrong and return the exit status; None for an error that is a bug."""
    from bt_core.artifacts import ArtifactError
    from bt_core.artifacts.files import is_disk_full

    if is_disk_full(exc):  # first: Keras and h5py wrap it in other types
        print(f"error: no space left on device while writing {_failed_file(exc)}: free space and "
              f"{stage.remedy()}", file=sys.stderr)
        return EXIT_DISK_FULL
    if isinstance(exc, PermissionError):
        print(f"error: permission denied: {exc.filename or exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, (ValueError, FileNotFoundError, ArtifactError)):
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return None


def _run(args: argparse.Namespace, stage: Stage) -> int:
    """Everything but the listing of models; the exit status."""
    from bt_core.artifacts import STATUS_FAILED, load_manifest

    if args.run_id is not None:  # a folder inside --out: never ../../escape or an absolute path
        from bt_core.runs.merge import check_run_id

        check_run_id(args.run_id)
    if args.evaluate:
        stage.step = "evaluate"
        return _evaluate(args)
    if args.explain:
        stage.step, stage.run_dir = "explain", Path(args.explain)
        result = _explain(Path(args.explain), args.methods, args.models, args.map_size)
        for name, reason in result["skipped"].items():
            print(f"error: no maps for {name}: {reason}", file=sys.stderr)
        print(args.explain)
        return EXIT_MODEL_FAILED if result["skipped"] else EXIT_OK
    if args.merge:
        from bt_core.runs.merge import merge_runs

        stage.step = "merge"
        print(merge_runs(args.merge, args.out, args.run_id, say=_say))
        return EXIT_OK
    run_dir = _train(args, stage)
    if not args.no_explain:
        stage.step = "explain"
        _explain_after_training(run_dir, args.methods)
    failed = {name: entry.error or "" for name, entry in load_manifest(run_dir).models.items()
              if entry.status == STATUS_FAILED}
    for name, error in failed.items():
        print(f"error: {name} failed: {error}", file=sys.stderr)
    print(run_dir)
    return EXIT_MODEL_FAILED if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_models:
        from bt_core.models import list_models

        print("\n".join(list_models()))
        return EXIT_OK
    if args.explain or args.evaluate:
        # tf-keras-vis needs TensorFlow, whatever backend trained the run; keras is not yet imported.
        os.environ["KERAS_BACKEND"] = "tensorflow"
    stage = Stage()
    try:
        return _run(args, stage)
    except KeyboardInterrupt:
        print(f"interrupted; {stage.remedy()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # sorted by _error_status; anything else is a bug and keeps its traceback
        status = _error_status(exc, stage)
        if status is None:
            raise
        return status
