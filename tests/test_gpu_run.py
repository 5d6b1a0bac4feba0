"""The GPU session's script, rehearsed on the CPU: gpu_run.sh --smoke, then gpu_unpack.py, then
the run folder as the dashboard opens it; and the float16 weight files on known answers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _gpu_weights():
    # benchmarks/ is a folder of scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("gpu_weights", BENCHMARKS / "gpu_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weights_round_trip_through_float16_parts(tmp_path):
    gpu_weights = _gpu_weights()
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((5, 7)).astype(np.float32), np.array([1.0, 70000.0], np.float32),
               rng.standard_normal((300,)).astype(np.float32)]
    entry = gpu_weights.write_parts("m", weights, tmp_path, part_bytes=256)
    # 337 values x 2 bytes in parts of 256 bytes.
    assert [p["bytes"] for p in entry["parts"]] == [256, 256, 162]
    assert entry["overflow"] == 1  # 70000 is beyond float16
    back = gpu_weights.read_parts(json.loads(json.dumps(entry)), tmp_path)
    assert [b.shape for b in back] == [w.shape for w in weights]
    assert all(b.dtype == np.float32 for b in back)
    np.testing.assert_allclose(back[0], weights[0], rtol=1e-3)
    assert back[1][1] == np.inf
    (tmp_path / "m.w16.part01").write_bytes(b"\0" * 256)
    with pytest.raises(ValueError, match="damaged"):
        gpu_weights.read_parts(entry, tmp_path)


def test_choose_models_takes_the_order_and_passes_over_what_does_not_fit():
    gpu_weights = _gpu_weights()
    mib = 2**20
    params = {"resnet50": 24_711_684, "densenet121": 7_633_092, "mobilenetv2": 2_985_668, "vgg16": 15_046_084}
    order = ["resnet50", "vgg16", "densenet121", "mobilenetv2"]
    # resnet50 (47.1 MiB, 3 parts), vgg16 (28.7) does not fit after it, densenet121 (14.6) does.
    assert gpu_weights.choose_models(params, order, 62 * mib, 5) == ["resnet50", "densenet121"]
    assert gpu_weights.choose_models(params, order, 62 * mib, 3) == ["resnet50"]  # no file left
    assert gpu_weights.choose_models(params, ["absent", "mobilenetv2"], 6 * mib, 1) == ["mobilenetv2"]


@pytest.mark.slow
def test_smoke_run_unpacks_into_a_run_the_dashboard_opens(tmp_path):
    from bt_core.artifacts import load_model, load_run, load_test_images
    from bt_core.data.preprocess import preprocess_batch

    out, work, artifacts_dir = tmp_path / "out", tmp_path / "work", tmp_path / "artifacts"
    env = {**os.environ, "OUT": str(out), "GPU_WORK": str(work), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "benchmarks/gpu_run.sh", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    returned = sorted(p.name for p in out.iterdir())
    assert {"run-small.tar.gz", "bench.json", "gpu_run.json", "log.txt"} <= set(returned)
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir()) and len(returned) <= 8
    bench = json.loads((out / "bench.json").read_text())
    assert bench["results"][0]["model"] == "simple_cnn" and bench["results"][0]["pipeline_device_ips"] > 0
    record = json.loads((out / "gpu_run.json").read_text())
    assert [s["name"] for s in record["steps"]] == ["bench", "train"]
    assert all(s["rc"] == 0 for s in record["steps"]), record["steps"]
    # The smoke's return limit has room for simple_cnn's weights but not custom_cnn's.
    assert sorted(record["weights"]) == ["simple_cnn"]
    assert "custom_cnn" in record["weights_left_out"]

    unpacked = subprocess.run([sys.executable, "benchmarks/gpu_unpack.py", str(out), "--data",
                               str(work / "data" / "demo"), "--artifacts", str(artifacts_dir), "--check", "8"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert unpacked.returncode == 0, unpacked.stderr[-3000:]
    run_dir = Path(unpacked.stdout.strip().splitlines()[-1])
    run = load_run(run_dir)
    assert sorted(m.name for m in run.usable_models()) == ["custom_cnn", "simple_cnn"]
    entries = run.manifest["models"]
    assert "weights_missing" in entries["custom_cnn"] and not run.models["custom_cnn"].model_path.exists()
    assert entries["simple_cnn"]["gpu_weights_check"]["same_class"] == 1.0
    assert run.manifest["dataset"]["root"] == str((work / "data" / "demo").resolve())

    images, ids = load_test_images(run_dir)
    # The unpacked test images are the ones the run decoded on the "device", byte for byte.
    device_run = work / "artifacts" / run_dir.name
    with np.load(device_run / "test_images.npz") as device_images:
        np.testing.assert_array_equal(images, device_images["images"])
    model = load_model(run_dir, "simple_cnn")
    stored = run.models["simple_cnn"].predictions.set_index("id").loc[list(ids[:6])]
    proba = model.predict(preprocess_batch(images[:6], entries["simple_cnn"]["preprocessing"]), verbose=0)
    gpu = stored[[f"p_{c}" for c in run.class_names]].to_numpy()
    np.testing.assert_allclose(proba, gpu, atol=0.02)
    assert list(np.array(run.class_names)[proba.argmax(1)]) == list(stored["pred"])
