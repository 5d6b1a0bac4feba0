"""The study commands of ``train_all.py`` and ``bt-zoo study`` (docs/studies.md):

    python train_all.py --study study.toml [--out artifacts] [--resume] [--scheduler ray --ray-address ADDR]
    python train_all.py --data D --models a,b --seeds 0,1 --variants "none;crop_head" --epochs 2 --img-size 32
    python train_all.py --resume artifacts/STUDY_ID          # continue a study from its own study.json

Exit status: 0 every cell done, 1 one or more failed (study.json says why), 2 bad arguments
or spec, 130 interrupted (``--resume`` continues it).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from bt_core.artifacts.study import CELL_FAILED, is_study_folder, load_study

STUDY_FLAGS = ("study", "seeds", "variants", "study_id")


def is_study_command(args: argparse.Namespace) -> bool:
    """A study: --study, --seeds, --variants or --study-id given, or --resume naming a study folder."""
    if any(getattr(args, name, None) for name in STUDY_FLAGS):
        return True
    resume = getattr(args, "resume", None)
    return bool(resume) and is_study_folder(Path(resume))


def default_study_id() -> str:
    return "study-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def _flag_settings(args: argparse.Namespace) -> tuple[dict, object]:
    """The RunConfig settings the training flags give (those that differ from RunConfig's
    defaults, so the spec names only what was chosen) and the config itself."""
    from dataclasses import fields

    from bt_core.cli.actions import build_config
    from bt_core.runs.study_spec import setting_names
    from bt_core.training.config import RunConfig

    config = build_config(args)
    defaults = {f.name: f.default for f in fields(RunConfig)}
    chosen = {name: getattr(config, name) for name in setting_names()}
    return {name: value for name, value in chosen.items() if value != defaults.get(name)}, config


def spec_from_args(args: argparse.Namespace):
    """The StudySpec a command declares and the --out it goes to: the TOML of --study, the
    stored spec of --resume STUDY_DIR, or the flags."""
    from dataclasses import replace

    from bt_core.runs.study import find_study
    from bt_core.runs.study_spec import StudySpec, check_spec, load_spec, spec_from_flags

    resume = getattr(args, "resume", None)
    out = Path(args.out)
    if resume and is_study_folder(Path(resume)):
        out = Path(resume).resolve().parent
        if not args.study:
            return StudySpec.from_dict(load_study(Path(resume)).spec), out
    if args.study:
        spec = load_spec(args.study)
        if args.study_id:
            spec = check_spec(replace(spec, study_id=args.study_id), "--study-id")
        return spec, out
    if not (args.data or args.demo):
        raise ValueError("a study by flags needs --data PATH (or --demo), --models and --seeds / --variants")
    settings, config = _flag_settings(args)
    spec = spec_from_flags(config.data, config.models, args.seeds, args.variants, settings,
                           args.study_id or default_study_id(), explain=not args.no_explain)
    if resume is not None and not args.study_id:  # the same flags again: the newest study they started
        spec = replace(spec, study_id=find_study(spec, out).name)
    return spec, out


def run_study_command(args: argparse.Namespace) -> int:
    """Run (or continue) the study; exit status 0 all cells done, 1 any failed."""
    from bt_core.cli.actions import EXIT_MODEL_FAILED, EXIT_OK
    from bt_core.runs.study import run_study

    spec, out = spec_from_args(args)
    study_dir = run_study(spec, out, scheduler=args.scheduler, ray_address=args.ray_address,
                          resume=getattr(args, "resume", None) is not None, say=print)
    return EXIT_MODEL_FAILED if load_study(study_dir).count(CELL_FAILED) else EXIT_OK
