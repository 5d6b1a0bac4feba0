"""The Ray scheduler on a local Ray cluster (2 CPUs): a 2 models x 2 seeds study of tiny models
runs with every cell done, a worker killed during a cell is retried and resumes the cell's run,
and its seed-0 cells score exactly as under the sequential scheduler. About 70 s on 2 busy cores
(load ~6): ray.init ~9 s, the study on Ray ~44 s, the sequential cells ~10 s."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'brain-tumor-zoo[ray]')")

from bt_core.artifacts import ArtifactError, load_manifest, load_run  # noqa: E402
from bt_core.artifacts.study import cell_run_dir, load_study  # noqa: E402
from bt_core.runs.study import CellOutcome, run_study  # noqa: E402
from bt_core.runs.study_ray import PID_DIR_ENV, attempts_dir, count_attempts, run_on_ray, task_options  # noqa: E402
from bt_core.runs.study_spec import spec_from_flags  # noqa: E402
from imagefolders import make_pool  # noqa: E402

pytestmark = pytest.mark.slow
MODELS = ("simple_cnn", "cnn_bn")
KILL_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def ray_cluster():
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False)
    print(f"ray.init: {time.perf_counter() - started:.1f}s")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    return make_pool(tmp_path_factory.mktemp("pool"), per_class=16, size=32)


def _spec(pool: Path, study_id: str, seeds: str):
    settings = {"epochs": 1, "img_size": 32, "batch_size": 16, "augment_mode": "none"}
    return spec_from_flags(str(pool), MODELS, seeds, None, settings, study_id, explain=False)


def _kill_when_training(study_dir: Path, cell_id: str, pid_dir: Path, killed: dict) -> None:
    """SIGKILL the worker of ``cell_id`` once its model is training (its run folder exists)."""
    model = cell_id.split("__")[0]
    pid_file = pid_dir / f"{cell_id}.pid"
    deadline = time.monotonic() + KILL_TIMEOUT
    while time.monotonic() < deadline:
        if pid_file.exists():
            try:
                status = load_manifest(cell_run_dir(study_dir, cell_id)).models[model].status
            except (ArtifactError, KeyError, OSError):
                status = None
            if status == "running":
                killed["pid"] = int(pid_file.read_text())
                os.kill(killed["pid"], signal.SIGKILL)
                return
        time.sleep(0.01)


@pytest.fixture(scope="module")
def ray_study(ray_cluster, pool, tmp_path_factory) -> dict:
    """The study run on Ray, the worker of its first cell killed while that cell trains."""
    out, pid_dir = tmp_path_factory.mktemp("ray_out"), tmp_path_factory.mktemp("pids")
    spec = _spec(pool, "on-ray", seeds="0,1")
    study_dir, victim, killed = out / spec.study_id, spec.cells()[0].cell_id, {}
    killer = threading.Thread(target=_kill_when_training, args=(study_dir, victim, pid_dir, killed), daemon=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PID_DIR_ENV, str(pid_dir))  # read by run_on_ray in this (the driver's) process
        killer.start()
        started = time.perf_counter()
        run_study(spec, out, scheduler="ray", say=lambda line: None)
        print(f"study on Ray: {time.perf_counter() - started:.1f}s")
    killer.join(timeout=1)
    return {"dir": study_dir, "victim": victim, "killed_pid": killed.get("pid")}


@pytest.fixture(scope="module")
def sequential_study(pool, tmp_path_factory) -> Path:
    """Seed 0 of the same study, sequentially in this process (seed 1 too would add ~20 s)."""
    started = time.perf_counter()
    study_dir = run_study(_spec(pool, "sequential", seeds="0"), tmp_path_factory.mktemp("sequential_out"),
                          scheduler="sequential", say=lambda line: None)
    print(f"study sequentially: {time.perf_counter() - started:.1f}s")
    return study_dir


def test_every_cell_of_a_two_by_two_study_is_done_on_ray(ray_study):
    manifest = load_study(ray_study["dir"])
    assert manifest.scheduler == "ray"
    assert sorted(cell.cell_id for cell in manifest.cells) == sorted(
        f"{model}__none__s{seed}" for model in MODELS for seed in (0, 1))
    assert [(cell.status, cell.reason) for cell in manifest.cells] == [("done", None)] * 4
    for cell in manifest.cells:
        run = load_run(ray_study["dir"] / cell.run)
        assert list(run.models) == [cell.model]


def test_a_killed_worker_is_retried_and_resumes_its_cell(ray_study):
    study_dir, victim = ray_study["dir"], ray_study["victim"]
    assert ray_study["killed_pid"] is not None, "the victim cell never trained"
    attempts = {cell.cell_id: count_attempts(study_dir, cell.cell_id) for cell in load_study(study_dir).cells}
    assert attempts == {cell_id: 2 if cell_id == victim else 1 for cell_id in attempts}
    assert {cell.cell_id: cell.attempts for cell in load_study(study_dir).cells} == attempts  # study.json agrees
    markers = [json.loads((attempts_dir(study_dir, victim) / name).read_text()) for name in ("1", "2")]
    assert markers[0]["pid"] == ray_study["killed_pid"] != markers[1]["pid"]
    # Resumed, not restarted: the run folder the first attempt made gained a second session.
    assert len(load_manifest(cell_run_dir(study_dir, victim)).sessions) == 2


def _scores(study_dir: Path) -> dict:
    scores = {}
    for cell in load_study(study_dir).cells:
        model_dir = study_dir / cell.run / "models" / cell.model
        metrics = json.loads((model_dir / "metrics.json").read_text())
        predictions = pd.read_csv(model_dir / "predictions.csv").sort_values("id", ignore_index=True)
        scores[cell.cell_id] = (metrics["accuracy"], metrics["macro_f1"], predictions)
    return scores


def test_ray_and_sequential_schedulers_give_the_same_metrics(ray_study, sequential_study):
    # Each process seeds itself (seed_everything), so a cell is the same wherever it runs,
    # even the one resumed after its worker was killed.
    on_ray, in_turn = _scores(ray_study["dir"]), _scores(sequential_study)
    assert set(in_turn) == {f"{model}__none__s0" for model in MODELS} and ray_study["victim"] in in_turn
    for cell_id, (accuracy, macro_f1, predictions) in in_turn.items():
        expected = on_ray[cell_id]
        assert (accuracy, macro_f1) == pytest.approx(expected[:2], abs=1e-6), cell_id
        pd.testing.assert_frame_equal(predictions, expected[2], check_exact=False, atol=1e-6, rtol=0)


def _stand_in_cell():
    # Nested, so Ray pickles it by value (workers cannot import this test module).
    def cell(study_dir: str, cell_id: str):
        if cell_id == "raises":
            raise ValueError("no such image\nsecond line")
        if cell_id == "dies":
            os._exit(3)
        return CellOutcome(cell_id, "done", None, 0.0)

    return cell


def test_a_python_error_is_not_retried_and_a_dead_worker_fails_after_its_retries(ray_cluster, tmp_path):
    outcomes = {}
    run_on_ray(tmp_path, ["raises", "dies", "fine"], {"max_retries": 1},
               lambda outcome: outcomes.setdefault(outcome.cell_id, outcome), cell_function=_stand_in_cell())
    assert {cell_id: outcome.status for cell_id, outcome in outcomes.items()} == {
        "raises": "failed", "dies": "failed", "fine": "done"}
    assert outcomes["raises"].reason == "ValueError: no such image"
    assert outcomes["dies"].reason.startswith(
        "the Ray worker died on all 2 attempts (max_retries=1): WorkerCrashedError: The worker died unexpectedly")
    assert [count_attempts(tmp_path, cell_id) for cell_id in ("raises", "dies", "fine")] == [1, 2, 1]
    assert ray.is_initialized()  # the caller's Ray session is left running


def test_a_cell_no_node_can_run_is_refused(ray_cluster, tmp_path):
    with pytest.raises(ValueError, match=r"no node of the Ray cluster has num_cpus=1 and num_gpus=1 "
                                         r"for one cell \(its nodes: 2 CPUs / 0 GPUs\)"):
        run_on_ray(tmp_path, ["a"], {"num_gpus": 1}, print)


def test_resources_are_checked_before_ray_starts():
    assert task_options({}) == {"num_cpus": 1, "num_gpus": 0, "max_retries": 3, "retry_exceptions": False}
    assert task_options({"num_gpus": 1, "num_cpus_total": 4})["num_gpus"] == 1
    with pytest.raises(ValueError, match=r"unknown \[resources\] key 'gpus'; valid: num_cpus, num_gpus, "
                                         r"max_retries, num_cpus_total"):
        task_options({"gpus": 1})
    with pytest.raises(ValueError, match=r"\[resources\] max_retries must be a whole number >= 0, got 1.5"):
        task_options({"max_retries": 1.5})
    with pytest.raises(ValueError, match=r"\[resources\] num_cpus must be a number >= 0, got -1"):
        task_options({"num_cpus": -1})
