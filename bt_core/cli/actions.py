"""What a command does once its arguments are read, shared by ``train_all.py`` and ``bt-zoo``:
train (or resume), explain, evaluate, merge; each returns the exit status, and errors the
user can fix are one line each, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from bt_core.cli.logs import import_tensorflow_quietly
from bt_core.cli.options import FIND_RUN

EXIT_OK, EXIT_MODEL_FAILED, EXIT_USAGE, EXIT_DISK_FULL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
DEMO_DEFAULTS = {"epochs": 8, "img_size": 64}
TRAINING_DEFAULTS = {"epochs": 30, "img_size": 224}

_log = logging.getLogger(__name__)


def names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()


def build_config(args: argparse.Namespace):
    """The RunConfig of a training command (``--demo`` writes its dataset first)."""
    from bt_core.training.config import DEFAULT_MODELS, DEMO_MODELS, RunConfig

    demo = bool(args.demo)
    defaults = DEMO_DEFAULTS if demo else TRAINING_DEFAULTS
    models = names(args.models)
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
        preprocess=names(args.preprocess),
        augment_mode=augment_mode,
        data_parallel=args.data_parallel,
        workers=args.workers,
        tensorboard=bool(getattr(args, "tensorboard", False)),
        split=getattr(args, "split", "original"),
        data_seed=getattr(args, "data_seed", None),
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

        if self.step == "study":
            return "continue the study: the same command with --resume"
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


def _explain(run_dir: Path, methods: str | None, models: str | None = None, map_size: int | None = None) -> dict:
    """The run's analysis pass (maps, then shortcut measures, one model load each);
    returns analyze_run's result."""
    from bt_core.runs.analyze import DEFAULT_METHODS, analyze_run

    _log.info("explanation maps and shortcut measures of %s ...", run_dir)
    return analyze_run(run_dir, methods=names(methods) or DEFAULT_METHODS, models=names(models) or None,
                       map_size=map_size, progress=_log.info)


def _explain_after_training(run_dir: Path, methods: str | None) -> None:
    import keras

    if keras.backend.backend() != "tensorflow":
        _log.warning("explanation maps need TensorFlow (tf-keras-vis); this run trained under %s. "
                     "Compute them with: python train_all.py --explain %s", keras.backend.backend(), run_dir)
        return
    result = _explain(run_dir, methods)
    for name, reason in result["skipped"].items():
        _log.warning("warning: no maps for %s: %s", name, reason)


def _evaluate(args: argparse.Namespace) -> int:
    """Score a finished run on --data, then analyze the evaluation; the exit status."""
    from bt_core.artifacts import load_manifest
    from bt_core.runs.evaluate import evaluate_run, scoring_failures

    evaluation_dir = evaluate_run(Path(args.evaluate), args.data, args.name, say=_log.info, replace=args.replace,
                                  max_per_class=getattr(args, "max_per_class", None))
    if not args.no_explain:
        _explain_after_training(evaluation_dir, args.methods)
    failed = scoring_failures(load_manifest(evaluation_dir))
    for name, error in failed.items():
        _log.error("error: %s could not be scored: %s", name, error)
    print(evaluation_dir)
    return EXIT_MODEL_FAILED if failed else EXIT_OK


def _failed_file(exc: BaseException) -> str:
    """The file a full-disk error names (NoSpaceLeft's path, else the OSError's filename)."""
    current: BaseException | None = exc
    while current is not None:
        path = getattr(current, "path", None) or getattr(current, "filename", None)
        if path:
            return str(path)
        current = current.__cause__ or current.__context__
    return "a file"


def error_status(exc: Exception, stage: Stage) -> int | None:
    """Log what went wrong and return the exit status; None for an error that is a bug."""
    from bt_core.artifacts import ArtifactError
    from bt_core.artifacts.files import is_disk_full

    if is_disk_full(exc):  # first: Keras and h5py wrap it in other types
        _log.error("error: no space left on device while writing %s: free space and %s",
                   _failed_file(exc), stage.remedy())
        return EXIT_DISK_FULL
    if isinstance(exc, PermissionError):
        _log.error("error: permission denied: %s", exc.filename or exc)
        return EXIT_USAGE
    if isinstance(exc, (ValueError, FileNotFoundError, ArtifactError)):
        _log.error("error: %s", exc)
        return EXIT_USAGE
    return None


def status_or_raise(exc: Exception, stage: Stage) -> int:
    """:func:`error_status` of an error the user can fix; a bug is raised again, traceback kept."""
    status = error_status(exc, stage)
    if status is None:
        raise exc
    return status


def _run(args: argparse.Namespace, stage: Stage) -> int:
    """Everything but the listing of models; the exit status."""
    from bt_core.artifacts import STATUS_FAILED, load_manifest
    from bt_core.cli.study import is_study_command, run_study_command

    if is_study_command(args):
        stage.step = "study"
        return run_study_command(args)
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
            _log.error("error: no maps for %s: %s", name, reason)
        print(args.explain)
        return EXIT_MODEL_FAILED if result["skipped"] else EXIT_OK
    if args.merge:
        from bt_core.runs.merge import merge_runs

        stage.step = "merge"
        print(merge_runs(args.merge, args.out, args.run_id, say=_log.info))
        return EXIT_OK
    run_dir = _train(args, stage)
    if not args.no_explain:
        stage.step = "explain"
        _explain_after_training(run_dir, args.methods)
    failed = {name: entry.error or "" for name, entry in load_manifest(run_dir).models.items()
              if entry.status == STATUS_FAILED}
    for name, error in failed.items():
        _log.error("error: %s failed: %s", name, error)
    print(run_dir)
    return EXIT_MODEL_FAILED if failed else EXIT_OK


def list_models(input_size: int | None = None, models: str | None = None) -> int:
    from bt_core.cli.listing import print_models

    try:
        print_models(input_size, names(models))
    except ValueError as exc:
        _log.error("error: %s", exc)
        return EXIT_USAGE
    return EXIT_OK


def execute(args: argparse.Namespace) -> int:
    """Run a parsed ``train_all.py`` namespace (``bt-zoo`` fills one too); the exit status."""
    if args.explain or args.evaluate:
        # tf-keras-vis needs TensorFlow, whatever backend trained the run; keras is not yet imported.
        os.environ["KERAS_BACKEND"] = "tensorflow"
    if not args.verbose:
        import_tensorflow_quietly()
    if args.list_models:
        return list_models(getattr(args, "img_size", None), getattr(args, "models", None))
    stage = Stage()
    try:
        return _run(args, stage)
    except KeyboardInterrupt:
        _log.error("interrupted; %s", stage.remedy())
        return EXIT_INTERRUPTED
    except Exception as exc:  # sorted by error_status; anything else is a bug and keeps its traceback
        status = error_status(exc, stage)
        if status is None:
            raise
        return status
