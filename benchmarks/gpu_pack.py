"""Step 3 of benchmarks/gpu_run.sh, on the device: put a run folder into the few files a GPU
run may send back (at most 8 files, 16 MiB each, 64 MiB in all).

    python benchmarks/gpu_pack.py --run WORK/artifacts/RUN_ID --out $OUT --bench WORK/bench.json \
        --step bench:0:140:150 --step train:124:300:300

Writes into ``--out``:
- ``run-small.tar.gz``: the run folder without test_images.npz (gpu_unpack.py decodes the
  test images again from the dataset and split.csv), model.keras files and temporary files;
- ``bench.json``: bench_train.py's results, when it wrote any;
- ``<model>.w16.partNN``: float16 weights (gpu_weights.py) of the finished models that fit,
  in ``--order`` (resnet50 first), within what the small files leave;
- ``gpu_run.json``: the steps (exit status, seconds, budget), the weights index
  (``weights``: model -> shapes and parts; ``weights_left_out``: model -> reason) and the
  device as nvidia-smi names it. gpu_run.sh adds ``log.txt`` last (the space is kept for it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from gpu_weights import choose_models, float16_bytes, write_parts

RETURN_BYTES = 64 * 2**20
RETURN_FILES = 8
LOG_BYTES = 512 * 2**10  # gpu_run.sh keeps the last this many bytes of the log
INDEX_BYTES = 256 * 2**10  # room for gpu_run.json
WEIGHTS_ORDER = "resnet50,custom_cnn,vgg16,densenet121,mobilenetv2,simple_cnn"
LEFT_OUT_OF_TAR = ("test_images.npz", "model.keras")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the run folder train_all.py wrote")
    parser.add_argument("--out", required=True, help="the folder that goes back ($OUT)")
    parser.add_argument("--bench", help="bench_train.py --json output")
    parser.add_argument("--step", action="append", default=[], metavar="NAME:RC:SECONDS:BUDGET")
    parser.add_argument("--order", default=WEIGHTS_ORDER, help="which weights go back first")
    parser.add_argument("--return-bytes", type=int, default=RETURN_BYTES)
    parser.add_argument("--return-files", type=int, default=RETURN_FILES)
    return parser.parse_args(argv)


def _keep_in_tar(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = Path(info.name).name
    if name in LEFT_OUT_OF_TAR or name.startswith("."):
        return None
    return info


def write_small_tar(run_dir: Path, target: Path) -> None:
    with tarfile.open(target, "w:gz") as archive:
        archive.add(run_dir, arcname=run_dir.name, filter=_keep_in_tar)


def parse_step(text: str) -> dict:
    name, rc, seconds, budget = text.split(":")
    return {"name": name, "rc": int(rc), "seconds": int(seconds), "budget_s": int(budget),
            "timed_out": int(rc) in (124, 137)}


def nvidia_smi() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def finished_models(run_dir: Path) -> dict[str, int]:
    """Model name -> parameter count, for models whose training finished and saved a file."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: int(entry["params_total"]) for name, entry in manifest.get("models", {}).items()
            if entry.get("status") == "done" and "params_total" in entry
            and (run_dir / "models" / name / "model.keras").is_file()}


def pack_weights(run_dir: Path, out: Path, order: list[str], byte_budget: int, file_budget: int) -> tuple[dict, dict]:
    """Write the weights that fit; returns (index, {model: reason left out})."""
    import keras

    params = finished_models(run_dir)
    chosen = choose_models(params, order, byte_budget, file_budget)
    index, left_out = {}, {}
    for name in params:
        if name not in chosen:
            left_out[name] = (f"float16 weights ({float16_bytes(params[name]) / 2**20:.1f} MiB) did not fit in "
                              "what the GPU run may send back")
    for name in chosen:
        try:
            model = keras.saving.load_model(run_dir / "models" / name / "model.keras", compile=False)
            index[name] = write_parts(name, model.get_weights(), out)
        except (OSError, ValueError, TypeError) as exc:
            left_out[name] = f"could not be packed: {type(exc).__name__}: {exc}"
        print(f"weights of {name}: {'packed' if name in index else left_out[name]}", file=sys.stderr, flush=True)
    return index, left_out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"steps": [parse_step(s) for s in args.step], "device": nvidia_smi(), "run_id": None,
              "weights": {}, "weights_left_out": {}}
    if args.bench and Path(args.bench).is_file():
        shutil.copyfile(args.bench, out / "bench.json")
    if (run_dir / "manifest.json").is_file():
        record["run_id"] = run_dir.name
        write_small_tar(run_dir, out / "run-small.tar.gz")
        small = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        files = sum(1 for p in out.iterdir() if p.is_file()) + 2  # gpu_run.json and log.txt to come
        record["weights"], record["weights_left_out"] = pack_weights(
            run_dir, out, [m.strip() for m in args.order.split(",") if m.strip()],
            args.return_bytes - small - LOG_BYTES - INDEX_BYTES, args.return_files - files)
    (out / "gpu_run.json").write_text(json.dumps(record, indent=1))
    print(f"packed into {out}: " + ", ".join(sorted(p.name for p in out.iterdir())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
