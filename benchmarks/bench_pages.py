"""Time the dashboard's comparison pages on a large fabricated run; prints a Markdown table.

    .venv/bin/python benchmarks/bench_pages.py [--models 10] [--test-images 1300] [--repeats 3]
                                               [--skip-browser] [--profile confusion] [--clicks]

The run (written with tests/fabricate.py's RunWriter-based fabricator) has ``--models``
comparable models, a failed and a corrupt one, ``--test-images`` test images of 64 px
and 18-30 epoch histories, two-phase for some models.

Cold means Streamlit's caches (st.cache_data, st.cache_resource) are empty, as on a fresh
server or right after a run changed: the page reads the run's tables and computes
everything it shows. Warm is a later render of the same page.

Server side, with ``streamlit.testing.v1.AppTest`` in this process (modules imported by a
warm-up run first): a fresh AppTest renders the Run page, the caches are cleared, then the
page is rendered twice (cold, warm). Medians of ``--repeats`` AppTests.

In the browser: one `streamlit run` server (developer toolbar, whose "c" shortcut clears
the caches) and Playwright driving Debian's chromium, with the render wait of
tests/test_browser.py (script run over, no skeleton left, every plotly chart drawn).
"Sidebar click" is the time from a click on the page's sidebar link (from the Run page, or
from Training for the Run page; plotly.js already loaded in the tab) until the page is
rendered; "new tab" opens the
page's URL in a new tab, which also boots Streamlit's frontend and loads plotly.js (a new
Streamlit session: the whole script runs). Medians of ``--repeats``, caches cleared before
each cold render.

``--profile confusion`` prints a cProfile of one cold AppTest render of that page.

``--clicks`` times, in the browser, one change of a control that only redraws part of a page
(the Confusion page's cell picker, Inspect's colour map over precomputed Grad-CAM maps of four
models): from the choice until the rerun it starts is drawn; medians of ``--repeats`` (x2).
AppTest always reruns the whole script, so it cannot tell a fragment's rerun from the page's.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import importlib.util
import io
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
APP = REPO / "dashboard" / "app.py"
RUN_PAGE = "app_pages/run_details.py"
TARGET_S = 2.0

# Model -> (skill, temperature), as in tests/fabricate.py's ZOO_MODELS, for ten models.
MODELS = {
    "simple_cnn": (1.2, 0.7),
    "custom_cnn": (2.0, 1.0),
    "mobilenet_v2": (2.8, 0.8),
    "efficientnet_b0": (3.6, 1.0),
    "resnet18": (2.4, 1.4),
    "densenet121": (3.2, 0.9),
    "vgg16": (2.2, 1.2),
    "inception_v3": (3.0, 0.85),
    "xception": (3.3, 1.1),
    "convnext_tiny": (3.8, 0.75),
}
# Fine-tuned models: head epochs, then fine-tuning epochs.
TWO_PHASE = {"efficientnet_b0": (8, 16), "densenet121": (10, 20), "convnext_tiny": (6, 18), "xception": (8, 14)}
TRAIN_PER_CLASS, VAL_PER_CLASS = 1400, 160


@dataclass(frozen=True)
class Page:
    name: str
    script: str  # for AppTest.switch_page
    url_path: str  # for the browser
    title: str  # its st.title: tells the browser which page is showing


PAGES = [
    Page("Models (leaderboard)", "app_pages/models.py", "", "Models"),
    Page("ROC & PR curves", "app_pages/curves.py", "curves", "ROC & PR curves"),
    Page("Confusion", "app_pages/confusion.py", "confusion", "Confusion matrices"),
    Page("Training", "app_pages/training.py", "training", "Training"),
    Page("Calibration", "app_pages/calibration.py", "calibration", "Calibration"),
    Page("Significance", "app_pages/significance.py", "significance", "Significance"),
    Page("Run (reference, no comparison)", RUN_PAGE, "run_details", "Run"),
]


def page_at(url_path: str) -> Page:
    return next(page for page in PAGES if page.url_path == url_path)


def load_test_module(name: str) -> ModuleType:
    """Import tests/<name>.py (tests/ is no package); registered in sys.modules so that
    test_browser's own ``from fabricate import ...`` finds fabricate."""
    if name != "fabricate":
        load_test_module("fabricate")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the run


def realistic_history(rng: np.random.Generator, skill: float, phases: tuple[int, ...]) -> pd.DataFrame:
    """Noisy, saturating train curves; validation loss that bottoms out and creeps up."""
    frames, epoch = [], 1
    for number, epochs in enumerate(phases):
        progress = np.arange(epoch, epoch + epochs, dtype=float)
        total = epoch + epochs - 1
        ceiling = min(0.99, 0.55 + 0.12 * skill)
        accuracy = ceiling - (ceiling - 0.35) * np.exp(-progress / (0.25 * total))
        val_accuracy = accuracy - 0.03 - 0.002 * progress + rng.normal(0, 0.012, epochs)
        loss = 1.4 * np.exp(-progress / (0.3 * total)) + 0.05 + rng.normal(0, 0.01, epochs)
        val_loss = loss + 0.1 + 0.004 * np.maximum(progress - 0.6 * total, 0) ** 1.5 + rng.normal(0, 0.02, epochs)
        start_lr = 1e-3 if number == 0 else 1e-5
        frames.append(
            pd.DataFrame(
                {
                    "epoch": progress.astype(int),
                    "phase": "head" if number == 0 else "fine_tune",
                    "loss": loss,
                    "accuracy": np.clip(accuracy + rng.normal(0, 0.01, epochs), 0, 1),
                    "val_loss": val_loss,
                    "val_accuracy": np.clip(val_accuracy, 0, 1),
                    "lr": start_lr * 0.5 ** (np.arange(epochs) // 5),
                }
            )
        )
        epoch += epochs
    return pd.concat(frames, ignore_index=True)


def fabricate_big_run(artifacts_dir: Path, n_models: int, n_test: int, seed: int = 11) -> Path:
    """The zoo run of the benchmark; returns its folder."""
    fabricate = load_test_module("fabricate")
    from bt_core.artifacts import STATUS_DONE, RunWriter

    models = dict(list(MODELS.items())[:n_models])
    if len(models) < n_models:
        raise SystemExit(f"at most {len(MODELS)} models")
    per_class = n_test // len(fabricate.CLASS_NAMES)
    fabricated = fabricate.fabricate_run(
        artifacts_dir,
        "20250101-120000_bench",
        created="2025-01-01T12:00:00",
        dataset_name="bench-zoo",
        good_models={name: skill for name, (skill, _temperature) in models.items()},
        seed=seed,
        split_sizes={"train": TRAIN_PER_CLASS, "val": VAL_PER_CLASS, "test": per_class},
        temperatures={name: temperature for name, (_skill, temperature) in models.items()},
        image_side=64,
        train_gap=0.04,
    )
    # Longer histories than the fabricator's three epochs, two-phase where fine-tuned.
    writer = RunWriter(fabricated.run_dir, fabricated.manifest)
    rng = np.random.default_rng(seed)
    for number, (name, (skill, _temperature)) in enumerate(models.items()):
        phases = TWO_PHASE.get(name, (18 + 3 * (number % 5),))
        history = realistic_history(rng, skill, phases)
        writer.write_history(name, history)
        writer.set_model_status(
            name,
            STATUS_DONE,
            epochs_run=len(history),
            best_epoch=int(history.loc[history["val_loss"].idxmin(), "epoch"]),
            phases=list(dict.fromkeys(history["phase"])),
        )
    return fabricated.run_dir


def add_stored_maps(run_dir: Path, n_models: int = 4, side: int = 16, seed: int = 12) -> None:
    """Grad-CAM maps of the first ``n_models`` models (Inspect's default choice), explaining
    each image's predicted class, as the analysis pass stores them."""
    from bt_core.artifacts import load_run, write_maps

    run = load_run(run_dir)
    rng = np.random.default_rng(seed)
    for model in run.usable_models()[:n_models]:
        predictions = model.predictions
        probabilities = predictions[[f"p_{name}" for name in run.class_names]].to_numpy()
        maps = rng.random((len(predictions), side, side), dtype=np.float32)
        write_maps(run_dir, model.name, "gradcam", maps, predictions["id"].to_numpy(), probabilities.argmax(axis=1))


# --------------------------------------------------------------------------- server side


def _bare_mode_warning(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return "missing ScriptRunContext" in message or "No runtime found" in message


def _quiet_streamlit() -> None:
    """Drop the warnings st.cache_*.clear() logs outside a script run, on every call. A
    filter, not a level: AppTest re-applies Streamlit's logger level on each run."""
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
                 "streamlit.runtime.caching.cache_data_api",
                 "streamlit.runtime.caching.cache_resource_api"):
        logging.getLogger(name).addFilter(lambda record: not _bare_mode_warning(record))


def _clear_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _timed(call: Callable[..., object], *args: Any) -> float:
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def _apptest(artifacts_dir: Path):
    from streamlit.testing.v1 import AppTest

    os.environ["BT_ARTIFACTS"] = str(artifacts_dir)
    return AppTest.from_file(str(APP), default_timeout=600)


def _render(app, script: str) -> None:
    app.switch_page(script).run()
    if app.exception:
        raise RuntimeError(f"{script} raised: {[exception.message for exception in app.exception]}")


def apptest_times(artifacts_dir: Path, page: Page, repeats: int) -> tuple[float, float]:
    """Median cold and warm render seconds of ``page`` with AppTest."""
    cold, warm = [], []
    for _ in range(repeats):
        app = _apptest(artifacts_dir)
        _render(app, RUN_PAGE)  # the session's first run, as a browser tab's
        _clear_caches()
        cold.append(_timed(_render, app, page.script))
        warm.append(_timed(_render, app, page.script))
    return statistics.median(cold), statistics.median(warm)


def profile_page(artifacts_dir: Path, script: str, top: int = 30) -> str:
    """cProfile of one cold AppTest render of ``script`` (the script runs in a thread:
    the profiler is switched on in that thread through threading.setprofile)."""
    import threading

    app = _apptest(artifacts_dir)
    _render(app, RUN_PAGE)
    _clear_caches()
    profiler = cProfile.Profile()

    def start_in_thread(*_args):
        threading.setprofile(None)
        sys.setprofile(None)
        profiler.enable()

    threading.setprofile(start_in_thread)
    try:
        _render(app, script)
    finally:
        threading.setprofile(None)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------------- browser

# Developer toolbar: its "c" shortcut clears the server's st.cache_data and st.cache_resource,
# so one server serves every cold measurement.
DEVELOPER_TOOLBAR = ["--client.toolbarMode", "developer"]
PLOTLY_WARM_UP_PAGE = "training"  # a chart page whose caches no other page shares


@dataclass
class BrowserTimes:
    click_cold: float  # sidebar click to the page, server caches cleared just before
    click_warm: float  # sidebar click to the page again
    tab_cold: float  # new tab on the page's URL, server caches cleared just before
    tab_warm: float  # new tab on the page's URL again
    load: float  # 1-minute load average when done: other work on the machine skews the times


@dataclass
class BrowserSession:
    """One `streamlit run` server, one chromium, and a tab that stays on the dashboard."""

    check: ModuleType  # tests/test_browser.py: render wait and problem detection
    base_url: str
    context: Any
    tab: Any

    def rendered_seconds(self, tab, title: str, start: Callable[[], object]) -> float:
        began = time.perf_counter()
        start()
        self.check.wait_until_rendered(tab, title, timeout_ms=600_000)
        seconds = time.perf_counter() - began
        problems = self.check.page_problems(tab)
        if problems:
            raise RuntimeError(f"{title}: {problems}")
        return seconds

    def click(self, page: Page) -> float:
        link = self.tab.locator(f'[data-testid="stSidebarNav"] a[href="{self.base_url}/{page.url_path}"]')
        return self.rendered_seconds(self.tab, page.title, link.click)

    def new_tab(self, page: Page) -> float:
        tab = self.context.new_page()
        try:
            return self.rendered_seconds(tab, page.title, lambda: tab.goto(f"{self.base_url}/{page.url_path}"))
        finally:
            tab.close()

    def clear_caches(self) -> None:
        self.tab.keyboard.press("c")
        confirm = self.tab.get_by_role("button", name="Clear caches")
        confirm.click()
        confirm.wait_for(state="detached")

    def times(self, page: Page, repeats: int) -> BrowserTimes:
        """Medians of ``repeats`` renders each; the caches are cleared before every cold one."""
        # The click starts on the Run page (the Training page for the Run page itself).
        origin = PAGES[-1] if page is not PAGES[-1] else page_at(PLOTLY_WARM_UP_PAGE)
        click_cold, click_warm, tab_cold, tab_warm = [], [], [], []
        for _ in range(repeats):
            self.click(origin)
            self.clear_caches()
            click_cold.append(self.click(page))
            self.click(origin)
            click_warm.append(self.click(page))
            self.clear_caches()
            tab_cold.append(self.new_tab(page))
            tab_warm.append(self.new_tab(page))
        medians = [statistics.median(times) for times in (click_cold, click_warm, tab_cold, tab_warm)]
        return BrowserTimes(*medians, load=os.getloadavg()[0])


@contextlib.contextmanager
def browser_session(artifacts_dir: Path, log_path: Path) -> Iterator[tuple[BrowserSession, dict[str, float]]]:
    """A warmed-up session and its start-up times: the first load after `streamlit run` is
    up (imports) and the extra cost of the first chart page of a tab (loads plotly.js)."""
    check = load_test_module("test_browser")
    script_args = ["--artifacts", str(artifacts_dir)]
    with check.streamlit_server(APP, log_path, script_args, DEVELOPER_TOOLBAR) as base_url, \
            check.chromium_browser() as browser:
        context = browser.new_context(viewport=check.VIEWPORT)
        try:
            tab = context.new_page()
            session = BrowserSession(check, base_url, context, tab)
            run_page = PAGES[-1]
            warm_up = page_at(PLOTLY_WARM_UP_PAGE)
            first_load = session.rendered_seconds(tab, run_page.title, lambda: tab.goto(f"{base_url}/run_details"))
            first_chart_page = session.click(warm_up)
            session.click(run_page)
            later_visit = session.click(warm_up)
            yield session, {"first_load": first_load, "plotly_js": first_chart_page - later_visit}
        finally:
            context.close()


# Counts the changes of the app root's script state: a run (a fragment's included) makes two.
COUNT_RUNS_JS = """
() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.btRuns = 0;
    // Every change of the state counts: a short run may start and end within one batch of records.
    new MutationObserver(records => { window.btRuns += records.length; })
        .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}
"""
# (page url path, title, widget key, the two options the clicks alternate between)
CLICKS = [
    ("confusion", "Confusion matrices", "confusion_cell",
     ("true glioma → predicted glioma", "true glioma → predicted meningioma")),
    ("inspect", "Inspect", "inspect_colormap", ("turbo", "jet")),
]


def choose_option(session: BrowserSession, title: str, key: str, option: str) -> float:
    """Seconds from choosing ``option`` in the selectbox keyed ``key`` until the rerun it
    started is drawn."""
    tab = session.tab
    tab.evaluate(COUNT_RUNS_JS)
    box = tab.locator(f".st-key-{key} input")
    box.click()
    box.press_sequentially(option)  # opens the list, filtered to the option (a click does not open it)
    choice = tab.locator("[role='option']", has_text=option).first
    choice.wait_for()

    def pick() -> None:
        choice.click()
        tab.wait_for_function("() => window.btRuns > 0", timeout=60_000, polling=10)

    return session.rendered_seconds(tab, title, pick)


def click_times(session: BrowserSession, repeats: int) -> dict[str, float]:
    """Median seconds of a choice on each page of CLICKS (caches warm: the page was open)."""
    medians = {}
    for url_path, title, key, options in CLICKS:
        session.rendered_seconds(session.tab, title, lambda: session.tab.goto(f"{session.base_url}/{url_path}"))
        if options[0] in session.tab.locator(f".st-key-{key} input").input_value():
            options = options[::-1]  # choosing the current value starts no rerun
        times = [choose_option(session, title, key, option) for _ in range(repeats) for option in options]
        medians[f"{title}: {key}"] = statistics.median(times)
        print(f"{title}, {key}: " + " ".join(f"{seconds:.2f}" for seconds in times), file=sys.stderr)
    return medians


# --------------------------------------------------------------------------- report


def versions() -> str:
    from importlib.metadata import version

    names = ["streamlit", "plotly", "pandas", "numpy", "scikit-learn", "playwright"]
    found = []
    for name in names:
        with contextlib.suppress(Exception):
            found.append(f"{name} {version(name)}")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def chromium_version() -> str:
    browser_check = load_test_module("test_browser")
    with browser_check.chromium_browser() as browser:
        return f"chromium {browser.version}"


def seconds_text(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def verdict(seconds: float) -> str:
    return "yes" if seconds <= TARGET_S else "**no**"


def print_report(args: argparse.Namespace, rows: list, startup: dict[str, float]) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    browser_name = "" if args.skip_browser else f", {chromium_version()}"
    print(f"Date: {datetime.date.today().isoformat()}  ")
    print(f"Machine: {machine} (load average at the end: {load})  ")
    print(f"Versions: {versions()}{browser_name}  ")
    print(f"Run: {args.models} comparable models (+ 1 failed, 1 corrupt), {args.test_images} test images "
          f"of 64 px, {TRAIN_PER_CLASS * 4} train / {VAL_PER_CLASS * 4} val rows in split.csv  ")
    print(f"Seconds, medians of {args.repeats}. Cold: Streamlit's caches cleared just before; warm: "
          f"the page rendered again. Target: at most {TARGET_S:g} s. Load: the 1-minute load average "
          f"after the page's browser timings; the benchmark's own server, chromium and driver add 1 to 2, "
          f"more is other work on the machine.\n")
    print("| Page | AppTest cold | AppTest warm | Sidebar click, cold | Sidebar click, warm "
          "| New tab, cold | New tab, warm | ≤ 2 s, click (cold) | ≤ 2 s, new tab (cold) | Load |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for page, cold, warm, browser in rows:
        if browser is None:
            cells = ["—"] * 4 + [verdict(cold) + " (server only)", "—", "—"]
        else:
            cells = [seconds_text(value) for value in
                     (browser.click_cold, browser.click_warm, browser.tab_cold, browser.tab_warm)]
            cells += [verdict(browser.click_cold), verdict(browser.tab_cold), f"{browser.load:.1f}"]
        print(f"| {page.name} | {cold:.2f} | {warm:.2f} | {' | '.join(cells)} |")
    if startup:
        print(f"\nOnce per server and tab: first page (Run) after `streamlit run` is up, imports included: "
              f"{startup['first_load']:.2f} s; first chart page of a tab loads plotly.js: "
              f"+{startup['plotly_js']:.2f} s (not in the click columns, in the new-tab columns).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10, help="comparable models in the run")
    parser.add_argument("--test-images", type=int, default=1300, help="test images (split evenly over 4 classes)")
    parser.add_argument("--repeats", type=int, default=3, help="timed renders per cell (median)")
    parser.add_argument("--skip-browser", action="store_true", help="AppTest timings only")
    parser.add_argument("--profile", metavar="URL_PATH", help="print a cProfile of one cold render of this page")
    parser.add_argument("--clicks", action="store_true",
                        help="only time a choice in the Confusion cell picker and Inspect's colour map (browser)")
    args = parser.parse_args()

    _quiet_streamlit()
    # Our own arguments must not reach the app's --artifacts parser (BT_ARTIFACTS is used).
    sys.argv = [str(APP)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_pages_") as temp:
        temp_dir = Path(temp)
        artifacts_dir = temp_dir / "artifacts"
        started = time.perf_counter()
        run_dir = fabricate_big_run(artifacts_dir, args.models, args.test_images)
        print(f"fabricated {run_dir.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        _render(_apptest(artifacts_dir), RUN_PAGE)  # imports outside the timings

        if args.clicks:
            add_stored_maps(run_dir)
            with browser_session(artifacts_dir, temp_dir / "streamlit.log") as (session, _startup):
                for control, seconds in click_times(session, args.repeats).items():
                    print(f"| {control} | {seconds:.2f} |")
            print(f"(medians of {2 * args.repeats}; load average {os.getloadavg()[0]:.1f})")
            return

        if args.profile is not None:
            page = page_at(args.profile.strip("/"))
            print(profile_page(artifacts_dir, page.script))
            return

        for page in PAGES:
            cold, warm = apptest_times(artifacts_dir, page, args.repeats)
            rows.append([page, cold, warm, None])
            print(f"{page.name}: AppTest {cold:.2f} / {warm:.2f} s", file=sys.stderr)
        startup = {}
        if not args.skip_browser:
            with browser_session(artifacts_dir, temp_dir / "streamlit.log") as (session, startup):
                for row in rows:
                    row[3] = session.times(row[0], args.repeats)
                    print(f"{row[0].name}: {row[3]}", file=sys.stderr)
    print_report(args, rows, startup)


if __name__ == "__main__":
    main()
