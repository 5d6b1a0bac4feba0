"""The dashboard in a real browser: `streamlit run` on a fabricated zoo run, driven by
Playwright in Debian's chromium (never a browser downloaded by ``playwright install``).

Every page is opened and must finish without an exception box or error alert; on the
confusion page a click on a matrix cell must bring up that cell's thumbnails. Each page
must fit a laptop (1280 x 720) and a full-HD screen (1920 x 1080), in normal and in
presentation mode: no table or value clipped, no plot axis printing the same tick label
twice in a row (:func:`layout_problems` says what counts). A screenshot of each page and
screen lands in pytest's tmp_path and, when ``BT_SCREENSHOTS`` is set, in that folder too.
Skipped when chromium or the playwright package is missing.

The helpers (server start, render wait, problem detection) are also used by
benchmarks/bench_pages.py, so "rendered" means the same thing in both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bt_core.runs.study_summary import write_study_tables
from fabricate import fabricate_data_profile, fabricate_zoo_run
from fabricate_study import fabricate_study

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"
CHROMIUM_ENV = "BT_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_ENV = "BT_SCREENSHOTS"
# Quiet, offline chromium: no sandbox (CI containers run as root), no GPU, no update or
# sync traffic that would stall on a machine without network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
# The screens a dashboard is shown on: a laptop (or projector) and a full-HD monitor.
SCREENS = {"1280x720": {"width": 1280, "height": 720}, "1920x1080": {"width": 1920, "height": 1080}}
SERVER_START_TIMEOUT_S = 60
# The first page of a fresh server imports pandas, plotly and sklearn: allow for it.
RENDER_TIMEOUT_MS = 60_000
MAX_SCREENSHOT_HEIGHT = 8000

# True once the app has finished a script run (Streamlit's own e2e tests wait on these
# attributes of the app root) and the browser has drawn what it sent; stale elements are
# left over from the previous run.
RENDERED_JS = """
(title) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.dataset.testConnectionState !== 'CONNECTED') return false;
    if (app.dataset.testScriptState !== 'notRunning') return false;
    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
    if (document.querySelector('[data-stale="true"]')) return false;
    // Lazily loaded elements (plotly charts, tables, widgets) show a skeleton until loaded.
    if (document.querySelector('[data-testid="stSkeleton"]')) return false;
    const heading = document.querySelector('h1');
    if (!heading || (title !== null && heading.innerText !== title)) return false;
    // A chart is drawn when plotly has an SVG group for each of its visible traces.
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    return charts.every(chart => {
        const plot = chart.querySelector('.js-plotly-plot');
        if (!plot || !plot._fullData) return false;
        const visible = plot._fullData.filter(trace => trace.visible === true).length;
        const drawn = plot.querySelectorAll('.main-svg g.trace, .main-svg g.hm').length;
        return drawn > 0 && drawn >= visible;
    });
}
"""
# Exception boxes, and error alerts outside them (an exception box holds an error alert).
PROBLEMS_JS = """
() => {
    const found = [];
    for (const box of document.querySelectorAll('[data-testid="stException"]')) {
        found.push('exception: ' + box.innerText);
    }
    for (const alert of document.querySelectorAll('[data-testid="stAlertContentError"]')) {
        if (!alert.closest('[data-testid="stException"]')) found.push('error: ' + alert.innerText);
    }
    return found;
}
"""

# What is clipped: an element of the main block whose content is wider than its box while
# it hides or scrolls the rest (overflow-x not visible): a grid with columns out of view
# (its scroller is wider than the grid), a static table wider than the page, a value cut
# with an ellipsis (st.metric). Content spilling visibly (overflow: visible) is not cut, and
# the main block scrolling sideways is reported as the page. Left out: visually hidden
# elements (at most 2 px wide: radio inputs, slider labels) and code blocks, which keep a
# command's lines whole on purpose.
CLIPPED_JS = """
() => {
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main) return [];
    const describe = element => {
        const owner = element.closest('[data-testid]');
        const text = (element.innerText || '').replace(/\\s+/g, ' ').trim().slice(0, 60);
        return `${owner ? owner.dataset.testid : element.tagName} ${element.scrollWidth} px in `
            + `${element.clientWidth} px` + (text ? ` ("${text}")` : '');
    };
    const found = main.scrollWidth > main.clientWidth + 1 ? ['page ' + describe(main)] : [];
    for (const element of main.querySelectorAll('*')) {
        if (!(element instanceof HTMLElement) || element.clientWidth <= 2) continue;
        if (element.closest('[data-testid="stCode"]')) continue;
        if (getComputedStyle(element).overflowX === 'visible') continue;
        if (element.scrollWidth > element.clientWidth + 1) found.push(describe(element));
    }
    return found;
}
"""
# Plotly axes whose drawn tick labels repeat a neighbour ("0.98 0.98 0.99 0.99").
REPEATED_TICKS_JS = """
() => {
    const found = [];
    document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot').forEach((plot, index) => {
        for (const layer of plot.querySelectorAll('g.xaxislayer-above, g.yaxislayer-above')) {
            const labels = [...layer.querySelectorAll('g.xtick text, g.ytick text')].map(text => text.textContent);
            if (labels.some((label, at) => at > 0 && label === labels[at - 1])) {
                const title = plot.querySelector('.gtitle')?.textContent || '';
                found.push(`chart ${index + 1} ${title}: ${labels.join(' ')}`.replace(/ +/g, ' '));
            }
        }
    });
    return found;
}
"""

# Font sizes (px) of static tables' cells and of plotly tick labels: presentation mode's
# type (bt_dashboard.presentation) is at least this large, the normal one is 12-14 px.
PRESENTED_FONT_SIZES_JS = """
() => ({
    tables: [...document.querySelectorAll('[data-testid="stTable"] td')]
        .map(cell => parseFloat(getComputedStyle(cell).fontSize)),
    ticks: [...document.querySelectorAll(
        '[data-testid="stPlotlyChart"] g.xtick text, [data-testid="stPlotlyChart"] g.ytick text'
    )].map(text => parseFloat(getComputedStyle(text).fontSize)),
})
"""
PRESENTED_MIN_FONT_PX = 18


@dataclass(frozen=True)
class PageSpec:
    url_path: str  # "" is the default page
    title: str
    charts: int  # plotly charts it draws on the fabricated zoo run
    screenshot: str


PAGES = [
    PageSpec("", "Models", 1, "models"),
    # The zoo run's data profile (fabricate_data_profile): class counts, sizes, three histogram tabs.
    PageSpec("data", "Data", 5, "data"),
    PageSpec("curves", "ROC & PR curves", 3, "curves"),
    PageSpec("confusion", "Confusion matrices", 6, "confusion"),
    PageSpec("training", "Training", 2, "training"),
    PageSpec("calibration", "Calibration", 1, "calibration"),
    PageSpec("significance", "Significance", 1, "significance"),
    # The zoo run's shortcut measures (fabricate_zoo_run(shortcuts=True)): the first screen's
    # pictures, then the first tab's probes and deletion / insertion curves.
    PageSpec("shortcuts", "Shortcuts", 4, "shortcuts"),
    # The fabricated study beside the zoo run (picked first): the seeds' strip and the forest plot.
    PageSpec("study", "Study", 2, "study"),
    # The zoo run (A) against the study's first cell (B): leaderboard deltas, confusion difference.
    PageSpec("compare_runs", "Compare runs", 2, "compare_runs"),
    PageSpec("run_details", "Run", 0, "run_details"),
]


# --------------------------------------------------------------------------- helpers


def chromium_path() -> Path | None:
    path = Path(os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def browser_skip_reason() -> str | None:
    """Why the browser checks cannot run here, or None when they can."""
    if chromium_path() is None:
        return (
            f"no chromium at {os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM} "
            f"(apt-get install chromium, or point {CHROMIUM_ENV} at one)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not importable ({exc}); pip install -r requirements-dev.txt"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _log_tail(log_path: Path, chars: int = 3000) -> str:
    return log_path.read_text(encoding="utf-8", errors="replace")[-chars:]


def _wait_for_health(base_url: str, server: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout_s} s:\n{_log_tail(log_path)}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(
    script: Path,
    log_path: Path,
    script_args: Sequence[str] = (),
    options: Sequence[str] = (),
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:
    """`streamlit run script [options]` on a free localhost port; yields its base URL and
    stops the server on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        *options,
    ]
    if script_args:
        command += ["--", *script_args]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_health(base_url, server, log_path, timeout_s)
        yield base_url
    finally:
        stop_process(server)


@contextlib.contextmanager
def chromium_browser() -> Iterator:
    """Headless Debian chromium through Playwright; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path()), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def wait_until_rendered(page, title: str | None = None, timeout_ms: int = RENDER_TIMEOUT_MS) -> None:
    """Wait until the script run is over and every plotly chart on the page is drawn;
    with ``title``, until the page showing is the one with that title (after a page switch
    the previous page stays up until the new run replaces it)."""
    page.wait_for_function(RENDERED_JS, arg=title, timeout=timeout_ms, polling=50)


def page_problems(page) -> list[str]:
    """Texts of the exception boxes and error alerts the page shows."""
    return page.evaluate(PROBLEMS_JS)


def layout_problems(page) -> list[str]:
    """What does not fit the page's current viewport: clipped tables and values
    (``CLIPPED_JS``) and plot axes with repeated tick labels (``REPEATED_TICKS_JS``)."""
    return [f"clipped: {item}" for item in page.evaluate(CLIPPED_JS)] + [
        f"repeated ticks: {item}" for item in page.evaluate(REPEATED_TICKS_JS)
    ]


def goto_rendered(page, url: str, title: str | None = None):
    """Open ``url`` in ``page`` and wait until it is fully rendered."""
    page.goto(url)
    wait_until_rendered(page, title)
    return page


def save_screenshot(page, folder: Path, name: str) -> Path:
    """A screenshot of the whole page at the viewport's width: Streamlit scrolls inside its
    main block, so the viewport is stretched to the content's height first."""
    viewport = page.viewport_size or VIEWPORT
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], body')]"
        ".map(element => element.scrollHeight))"
    )
    page.set_viewport_size({"width": viewport["width"], "height": min(max(height, viewport["height"]),
                                                                       MAX_SCREENSHOT_HEIGHT)})
    wait_until_rendered(page)  # plotly redraws at the new size
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)
    copy_to = os.environ.get(SCREENSHOTS_ENV)
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(copy_to) / path.name)
    return path


# --------------------------------------------------------------------------- fixtures

SKIP_REASON = browser_skip_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    zoo = fabricate_zoo_run(tmp_path_factory.mktemp("browser_zoo") / "artifacts", shortcuts=True)
    fabricate_data_profile(zoo.run_dir, tmp_path_factory.mktemp("browser_profile_data"))
    study = fabricate_study(zoo.run_dir.parent, test_per_class=6, evaluation_images=16)
    write_study_tables(study.study_dir, n_resamples=200)
    return zoo


@pytest.fixture(scope="module")
def dashboard_url(zoo, tmp_path_factory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("browser_logs") / "dashboard.log"
    with streamlit_server(APP, log_path, ["--artifacts", str(zoo.run_dir.parent)]) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def tab(browser):
    """A fresh tab (a new Streamlit session), closed after the test."""
    page = browser.new_page(viewport=VIEWPORT)
    yield page
    page.close()


@pytest.fixture
def js_errors(tab) -> list[str]:
    """Uncaught JavaScript errors of ``tab`` (plotly or Streamlit's frontend failing)."""
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    return errors


# --------------------------------------------------------------------------- tests


def test_problem_detection_finds_an_exception_box_an_error_alert_and_what_does_not_fit(browser, tmp_path):
    """The checks below can fail: a script that shows an error and raises is caught, and so
    are a grid too wide for the screen, a cut value and an axis that repeats its ticks."""
    script = tmp_path / "failing_app.py"
    script.write_text(
        "import pandas as pd\n"
        "import plotly.graph_objects as go\n"
        "import streamlit as st\n"
        "st.title('Failing on purpose')\n"
        "st.columns(3)[0].metric('Started', '2026-12-01T08:55:11+00:00 and then some')\n"
        "st.dataframe(pd.DataFrame({f'a rather long column name {i}': [i] for i in range(12)}))\n"
        "figure = go.Figure(go.Bar(x=[0.975, 0.993], y=['a', 'b'], orientation='h'))\n"
        "st.plotly_chart(figure.update_xaxes(tickformat='.2f', range=[0.974, 0.994]))\n"
        "st.error('deliberate error alert')\n"
        "raise RuntimeError('deliberate failure')\n",
        encoding="utf-8",
    )
    page = browser.new_page(viewport=SCREENS["1280x720"])
    try:
        with streamlit_server(script, tmp_path / "failing.log") as base_url:
            goto_rendered(page, base_url, "Failing on purpose")
            problems, layout = page_problems(page), layout_problems(page)
    finally:
        page.close()
    assert len(problems) == 2, problems
    # .streamlit/config.toml shows viewers the error's type only (showErrorDetails = "type"):
    # the exception box is still found, and its message never reaches the browser.
    assert problems[0].startswith("exception: RuntimeError") and "deliberate failure" not in problems[0]
    assert problems[1] == "error: deliberate error alert"
    assert any(item.startswith("clipped: ") and "2026-12-01T08:55:11" in item for item in layout), layout  # the metric
    assert any(item.startswith("clipped: stDataFrameResizable") for item in layout), layout
    ticks = [item for item in layout if item.startswith("repeated ticks")]
    assert len(ticks) == 1 and ticks[0].startswith("repeated ticks: chart 1 : 0.9") and "0.98 0.98" in ticks[0], layout


def screen_name(page_name: str, screen: str, presenting: bool = False) -> str:
    return f"{page_name}_{screen}" + ("_present" if presenting else "")


def visit_on_first_screen(tab, url: str, title: str | None = None) -> None:
    """Open ``url`` at the first (smallest) of SCREENS, as :func:`check_both_screens` expects."""
    tab.set_viewport_size(next(iter(SCREENS.values())))
    goto_rendered(tab, url, title)


def check_both_screens(tab, screenshots: Path, page_name: str, presenting: bool = False) -> list[str]:
    """The open page's layout problems at each of SCREENS (the viewport grows, the page is
    not reloaded), each with a screenshot; returns them labelled with page and screen.
    Open the page with :func:`visit_on_first_screen`."""
    problems = []
    # Smallest screen first: a grid or plot keeps its wider size for a moment after the
    # window shrinks (it re-measures on its resize observer), which would read as clipped.
    for screen, viewport in SCREENS.items():
        tab.set_viewport_size(viewport)
        wait_until_rendered(tab)
        name = screen_name(page_name, screen, presenting)
        problems += [f"{name}: {item}" for item in layout_problems(tab)]
        save_screenshot(tab, screenshots, name)
    return problems


@pytest.mark.parametrize("spec", PAGES, ids=[spec.screenshot for spec in PAGES])
def test_every_page_renders_without_errors_and_fits_both_screens(tab, js_errors, dashboard_url, screenshots, spec):
    visit_on_first_screen(tab, f"{dashboard_url}/{spec.url_path}", spec.title)
    assert tab.locator("h1").first.inner_text() == spec.title
    assert page_problems(tab) == []
    assert tab.locator('[data-testid="stPlotlyChart"]').count() == spec.charts
    layout = check_both_screens(tab, screenshots, spec.screenshot)
    assert all((screenshots / f"{screen_name(spec.screenshot, screen)}.png").stat().st_size > 10_000
               for screen in SCREENS)
    assert js_errors == []
    assert layout == []


def sidebar_pages(tab) -> list[str]:
    """The links of the open page's sidebar page list."""
    return tab.locator('[data-testid="stSidebarNav"] a').evaluate_all("links => links.map(link => link.href)")


def link_name(link: str) -> str:
    """A page's name from its link: its URL path, "models" for the default page."""
    return urllib.parse.urlparse(link).path.strip("/") or "models"


def test_pages_beyond_the_checked_ones_render_without_errors(tab, js_errors, dashboard_url, screenshots):
    """Every page of the sidebar is opened: one added to app.py without an entry in PAGES
    still has to render without an exception or error, and fit both screens."""
    goto_rendered(tab, f"{dashboard_url}/run_details", "Run")
    links = sidebar_pages(tab)
    checked = {f"{dashboard_url}/{spec.url_path}" for spec in PAGES}
    assert checked <= set(links), "a checked page is missing from the sidebar"
    layout = []
    for link in [link for link in links if link not in checked]:
        visit_on_first_screen(tab, link)
        assert page_problems(tab) == [], link
        layout += check_both_screens(tab, screenshots, "other_" + link_name(link))
    assert js_errors == []
    assert layout == []


def test_presentation_mode_fits_both_screens(tab, js_errors, dashboard_url, screenshots):
    """``?present=1`` on every page of the sidebar: larger type must still fit."""
    first = f"{dashboard_url}/run_details"
    visit_on_first_screen(tab, f"{first}?present=1", "Run")
    links = sidebar_pages(tab)  # the collapsed sidebar still holds them
    assert first in links
    layout = []
    for link in [first, *[link for link in links if link != first]]:
        if link != first:
            visit_on_first_screen(tab, f"{link}?present=1")
        assert page_problems(tab) == [], link
        # Static tables and figures' tick labels are drawn in the larger type.
        sizes = tab.evaluate(PRESENTED_FONT_SIZES_JS)
        assert all(size >= PRESENTED_MIN_FONT_PX for size in sizes["tables"] + sizes["ticks"]), (link, sizes)
        layout += check_both_screens(tab, screenshots, link_name(link), presenting=True)
    assert js_errors == []
    assert layout == []


def test_a_missing_chromium_gives_a_skip_reason_naming_it(monkeypatch, tmp_path):
    missing = tmp_path / "no-chromium"
    monkeypatch.setenv(CHROMIUM_ENV, str(missing))
    reason = browser_skip_reason()
    assert reason is not None and str(missing) in reason and "apt-get install chromium" in reason


def cell_centre(box: dict, row: int, column: int, n_classes: int) -> tuple[float, float]:
    """Page coordinates of a matrix cell's centre inside the heatmap's plot area."""
    return (
        box["x"] + (column + 0.5) * box["width"] / n_classes,
        box["y"] + (row + 0.5) * box["height"] / n_classes,
    )


def test_clicking_a_confusion_cell_shows_its_thumbnails(tab, js_errors, dashboard_url, screenshots, zoo):
    model, true_class, predicted_class = "custom_cnn", "glioma", "meningioma"
    class_names = zoo.manifest["class_names"]
    predictions = zoo.predictions[model]
    expected_ids = predictions[(predictions["label"] == true_class) & (predictions["pred"] == predicted_class)]["id"]
    assert len(expected_ids) > 1

    goto_rendered(tab, f"{dashboard_url}/confusion", "Confusion matrices")
    model_input = tab.locator(".st-key-confusion_cell_model input")
    cell_input = tab.locator(".st-key-confusion_cell input")
    # Before the click the explorer shows another model's cell.
    assert model_input.input_value() == zoo.good_models[0] != model
    before_cell = cell_input.input_value()

    # The chart's element container carries its key (confusion.chart_key) as a class.
    plot_area = tab.locator(f".st-key-confusion_chart_{model} rect.nsewdrag").bounding_box()
    assert plot_area is not None
    x, y = cell_centre(plot_area, class_names.index(true_class), class_names.index(predicted_class),
                       len(class_names))
    tab.mouse.click(x, y)
    tab.wait_for_function(
        "([selector, value]) => document.querySelector(selector)?.value === value",
        arg=[".st-key-confusion_cell_model input", model],
        timeout=RENDER_TIMEOUT_MS,
    )
    wait_until_rendered(tab)

    cell_text = cell_input.input_value()
    assert cell_text != before_cell
    assert cell_text == f"✗ true {true_class} → predicted {predicted_class} ({len(expected_ids)} images)"
    captions = tab.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert len(captions) == len(expected_ids)
    assert all(text.startswith(f"true {true_class} ") and f"pred {predicted_class} " in text for text in captions)
    # The thumbnails are real images the browser decoded, not broken links.
    tab.wait_for_function(
        """count => [...document.querySelectorAll('[data-testid="stImageContainer"] img')]
            .filter(image => image.complete && image.naturalWidth > 0).length === count""",
        arg=len(expected_ids),
        timeout=RENDER_TIMEOUT_MS,
    )
    assert page_problems(tab) == [] and js_errors == []
    save_screenshot(tab, screenshots, "confusion_cell_clicked")
