"""The options shared by ``train_all.py`` and ``bt-zoo``: one definition (and help text) each."""

from __future__ import annotations

import argparse

DEMO_DATA_DIR = "data/demo"
# --resume without a folder: find the run from --run-id, or by its settings, in --out.
FIND_RUN = ""
DEFAULT_OUT = "artifacts"


class Unset(str):
    """A default argparse keeps as it is, so a command can tell it from the same value typed in
    (``--predict`` writes elsewhere unless ``--out`` is given)."""
RUN_DIR_HELP = "a run folder (artifacts/RUN_ID)"


def add_source_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="dataset folder: ROOT/Training|Testing/<class>/* or ROOT/<class>/*")
    source.add_argument("--demo", action="store_true", help="generate the synthetic demo dataset and train the demo zoo")
    parser.add_argument("--demo-data", default=DEMO_DATA_DIR, help=f"where --demo writes its dataset ({DEMO_DATA_DIR})")


def add_models_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--models", help=help_text)


def add_out_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=Unset(DEFAULT_OUT),
                        help=f"folder that receives the run folder ({DEFAULT_OUT}); with --predict: the folder "
                             "for predictions.csv and the overlays (default ./<run_id>_predictions)")
    parser.add_argument("--run-id", help="name of the run folder (default: time stamp and dataset name)")


def add_methods_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", default=None,
                        help="explanation methods to compute, comma-separated (default: gradcam,faster_scorecam)")


def add_no_explain_option(parser: argparse.ArgumentParser, after: str) -> None:
    parser.add_argument("--no-explain", action="store_true",
                        help=f"do not compute explanation maps and shortcut measures after {after}")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Every setting of a training run, after --data / --demo and --models."""
    parser.add_argument("--epochs", type=int, help="maximum epochs per phase (early stopping may stop sooner)")
    parser.add_argument("--img-size", type=int, help="square input size in pixels")
    parser.add_argument("--batch-size", type=int, help="batch size for every model (default: each model's recipe)")
    add_out_options(parser)
    parser.add_argument("--seed", type=int, default=42,
                        help="seed of the split, weight initialisation, augmentation and batch order (42)")
    parser.add_argument("--weights", default="none", help="none (from scratch), imagenet, or a local weights file")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="share of the training images held out for validation, stratified (0.15)")
    parser.add_argument("--test-fraction", type=float, default=0.15,
                        help="share of the images held out for testing, pool layout only (0.15)")
    parser.add_argument("--max-per-class", type=int, help="use at most N images per class and source split")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"],
                        help="float32 (default), or mixed precision on GPUs (the softmax stays float32)")
    parser.add_argument("--preprocess", default="",
                        help="image operations applied in order when decoding, comma-separated: "
                             "clahe, sharpen, histeq, crop_head, mask_background, mask_border (default: none)")
    parser.add_argument("--split", choices=["original", "grouped", "regroup"], default="original",
                        help="original (default); grouped: exact/near-duplicate groups never straddle "
                             "train/val/test (kaggle: Training copies of Testing images dropped); "
                             "regroup: kaggle Training+Testing pooled, then grouped")
    parser.add_argument("--data-seed", type=int,
                        help="seed of the --max-per-class sample and the split when they must not follow --seed "
                             "(a study fixes it: every seed on the same images; default: --seed)")
    parser.add_argument("--augment", choices=["device", "numpy", "none"], default="device",
                        help="device: one random affine warp per image inside the compiled train step (default); "
                             "numpy: flips, shifts, brightness on the host; none")
    parser.add_argument("--no-augment", action="store_true", help="same as --augment none")
    parser.add_argument("--data-parallel", action="store_true",
                        help="split each batch over all local devices (JAX DataParallel / tf MirroredStrategy)")
    parser.add_argument("--workers", type=int, default=1,
                        help="threads preparing batches ahead of the model (1: none; try 4-8 on a fast GPU)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write Keras TensorBoard logs per model under the run folder "
                             "(needs the tensorboard extra: pip install 'brain-tumor-zoo[tensorboard]')")
    parser.add_argument("--resume", nargs="?", const=FIND_RUN, metavar="RUN_DIR",
                        help="continue an interrupted run: RUN_DIR alone (its stored settings), or added to "
                             "the original command (the run named by --run-id, else the newest run in --out "
                             "with the same settings). Finished models are kept; the others train again")


def add_study_options(parser: argparse.ArgumentParser, *, study_file: bool = True) -> None:
    """A study (docs/studies.md): a grid of runs, models x variants x seeds; ``study_file``:
    add --study (bt-zoo study takes the file as its argument instead)."""
    if study_file:
        parser.add_argument("--study", metavar="STUDY_TOML",
                            help="run the study a TOML file declares (docs/studies.md) into --out/<study id>; "
                                 "with --resume: continue it")
    parser.add_argument("--seeds", help="a study by flags: its seeds, comma-separated (e.g. 0,1,2)")
    parser.add_argument("--variants",
                        help='a study by flags: its variants, ";"-separated, each "none", image ops joined by "+" '
                             '(preprocess) and key=value settings, ","-separated (e.g. "none;crop_head;'
                             'mask_border"); default "none"')
    parser.add_argument("--study-id", help="name of the study folder (default: study-<UTC time stamp>; "
                                           "with --study: the file's [study] id, else its name)")
    parser.add_argument("--scheduler", choices=["sequential", "ray"], default="sequential",
                        help="how a study's cells run: one after another here (default), or as Ray tasks "
                             "(needs: pip install 'brain-tumor-zoo[ray]')")
    parser.add_argument("--ray-address", help="--scheduler ray: the cluster to join (default: a local one)")


def add_list_models_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list-models", action="store_true",
                        help="print every model's family, input size (--img-size, else its own), parameter "
                             "count, preprocessing and description, and exit (builds each model: ~25 s for all on 2 "
                             "cores; with --models only those)")


def add_map_size_option(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument("--map-size", type=int, default=None,
                        help=f"{prefix}side of the stored maps in pixels (default: min(64, image size))")


def add_evaluation_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument("--name", help=f"name of the evaluation ({prefix}default: the --data folder's name)")
    parser.add_argument("--replace", action="store_true", help="redo an existing evaluation of the same --name")


def add_logging_options(parser: argparse.ArgumentParser, *, keep_unset: bool = False) -> None:
    """--quiet / --verbose; ``keep_unset``: a sub-command's copy that leaves the main
    parser's value alone unless given (argparse would otherwise overwrite it with False)."""
    default = argparse.SUPPRESS if keep_unset else False
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", default=default,
                          help="print warnings and errors only (no per-epoch progress)")
    loudness.add_argument("-v", "--verbose", action="store_true", default=default,
                          help="print debugging detail and TensorFlow's own start-up and device logs")


def add_version_option(parser: argparse.ArgumentParser) -> None:
    from bt_core.cli.logs import package_version

    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the installed version and exit")
