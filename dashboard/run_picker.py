"""The sidebar run picker, and how pages find the run it chose.

The picker lives in the entry script (app.py), so its selection survives page switches;
pages read the chosen folder from ``st.session_state["run_dir"]``. A run with external
evaluations (``RUN_DIR/evaluations/<NAME>/``, run-like folders) gets a second picker, the
test set: the run's own test split or one of its evaluations; ``run_dir`` then holds the
evaluation's folder, so every page shows that test set.

Both follow the URL (``?run=<run id>&test_set=<evaluation>``, ``bt_dashboard.query_state``):
a link opens its run and test set, and the pickers write their choice back into the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from bt_core.artifacts import ArtifactError, Run, evaluation_dir
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard import loaders, query_state, settings
from bt_dashboard.views import deep_links as links
from bt_dashboard.views import run_picker as view
from bt_dashboard.views.deep_links import Ignored

RUN_DIR_KEY = "run_dir"
PICKER_KEY = "run_picker"
TEST_SET_KEY = "test_set_picker"
OWN_TEST_SPLIT = "own test split"


def render_run_picker(artifacts_dir: Path, study_runs: Mapping[str, str] | None = None) -> str | None:
    """Show the run selectbox in the sidebar; store and return the chosen run folder.
    ``study_runs`` (folder -> label: the picked study's cells) follow the artifacts folder's runs."""
    runs = loaders.list_runs(artifacts_dir)
    st.sidebar.caption(f"Artifacts: `{artifacts_dir}`")
    labels = {**{str(run.directory): view.run_label(run) for run in runs}, **(study_runs or {})}
    if not labels:
        st.sidebar.caption("No runs yet.")
        st.session_state[RUN_DIR_KEY] = None
        return None
    ignored = adopt_linked_run(list(labels), artifacts_dir)
    # Keyed: the choice is kept while runs come and go; a vanished choice falls back
    # to the newest run.
    chosen = st.sidebar.selectbox(
        "Run", options=list(labels), format_func=labels.__getitem__, key=PICKER_KEY
    )
    query_state.write(links.RUN, Path(chosen).name)
    ignored += adopt_linked_test_set(chosen)
    shown = render_test_set_picker(chosen)
    query_state.write(links.TEST_SET, None if shown == chosen else Path(shown).name)
    st.session_state[RUN_DIR_KEY] = shown
    query_state.warn_ignored(ignored + query_state.adopt_page_choices(shown))
    return shown


def adopt_linked_run(run_dirs: list[str], artifacts_dir: Path) -> list[Ignored]:
    """A link's run (``?run=<run id>``) becomes the picker's choice; returns it if unknown."""
    wanted = query_state.requested(links.RUN)
    if wanted is None:
        return []
    by_id = {Path(run_dir).name: run_dir for run_dir in run_dirs}
    problem = links.check_choice(links.RUN, wanted, list(by_id), f"no such run in `{artifacts_dir}`")
    if problem is None:
        st.session_state[PICKER_KEY] = by_id[wanted]
    return [] if problem is None else [problem]


def adopt_linked_test_set(run_dir: str) -> list[Ignored]:
    """A link's test set (``?test_set=<evaluation>``) becomes the run's test set choice."""
    wanted = query_state.requested(links.TEST_SET)
    if wanted is None:
        return []
    names = loaders.list_evaluations(run_dir)
    problem = links.check_choice(links.TEST_SET, wanted, names, f"not an evaluation of run {Path(run_dir).name}")
    if problem is None:
        st.session_state[test_set_key(run_dir)] = str(evaluation_dir(Path(run_dir), wanted))
    return [] if problem is None else [problem]


def test_set_key(run_dir: str) -> str:
    """One key per run: each run keeps its own choice of test set."""
    return f"{TEST_SET_KEY}:{run_dir}"


def test_set_caption(run_dir: str, shown: str) -> str:
    """Which test set the pages show: the run's own split or an external evaluation."""
    if shown == run_dir:
        return "Test set: the run's own test split."
    try:
        evaluation = loaders.load_manifest(shown).evaluation
    except ArtifactError:
        evaluation = None
    mode = " (tumor vs no tumor)" if evaluation is not None and evaluation.mode == "tumor" else ""
    data = f" on `{evaluation.data}`" if evaluation is not None and evaluation.data else ""
    return f"Test set: external evaluation **{Path(shown).name}**{mode}{data}."


def render_test_set_picker(run_dir: str) -> str:
    """Under the run picker, when the run has external evaluations: a choice between its
    own test split and each evaluation. Returns the folder whose test set the pages show
    (the run's, or an evaluation's)."""
    names = loaders.list_evaluations(run_dir)
    problems = loaders.evaluation_problems(run_dir)
    shown = run_dir
    if names:
        labels = {run_dir: OWN_TEST_SPLIT,
                  **{str(evaluation_dir(Path(run_dir), name)): evaluation_label(name, problems) for name in names}}
        shown = st.sidebar.selectbox(
            "Test set", options=list(labels), format_func=labels.__getitem__, key=test_set_key(run_dir),
            help="The run's own test split, or an external dataset its models were scored on "
                 "(python train_all.py --evaluate RUN_DIR --data PATH --name NAME).",
        )
    st.sidebar.caption(test_set_caption(run_dir, shown))
    unlisted = {name: reason for name, reason in problems.items() if name not in names}
    if unlisted:
        st.sidebar.caption("Evaluations that cannot be opened: "
                           + "; ".join(f"**{name}** ({reason})" for name, reason in unlisted.items()))
    return shown


def evaluation_label(name: str, problems: dict[str, str]) -> str:
    """An evaluation's line in the test set picker; one that cannot be opened says why."""
    return f"⚠ {name} — cannot open: {problems[name]}" if name in problems else name


def selected_run_dir() -> str | None:
    """The run folder chosen in the sidebar, or None when there is no run."""
    return st.session_state.get(RUN_DIR_KEY)


def show_no_runs() -> None:
    """What a page shows when the artifacts folder holds no run: how to make one."""
    artifacts_dir = settings.artifacts_dir()
    st.info(f"No runs in `{artifacts_dir}` yet. Train the demo zoo to create one:")
    st.code(view.demo_command(artifacts_dir), language="bash")


def open_selected_run() -> Run | None:
    """The chosen run's tables, or None after telling the user why there are none."""
    run_dir = selected_run_dir()
    if run_dir is None:
        show_no_runs()
        return None
    try:
        return loaders.load_run_tables(run_dir)
    except ArtifactError as exc:
        st.error(f"Run `{run_dir}` cannot be opened: {exc}")
        return None


def open_model_data(run: Run, minimum: int = 1) -> dict[str, ModelData] | None:
    """The run's comparable models (at least ``minimum``), noting the ones left out."""
    model_data, excluded = loaders.load_model_data(run.directory)
    if excluded:
        st.caption("Left out: " + "; ".join(f"**{name}** ({reason})" for name, reason in excluded.items()))
    if len(model_data) < minimum:
        needed = "a model" if minimum == 1 else f"{minimum} models"
        st.info(f"This view needs {needed} with test predictions; the run has {len(model_data)}.")
        return None
    return model_data


def open_run_models(minimum: int = 1) -> tuple[Run, dict[str, ModelData]] | None:
    """The chosen run and its comparable models, or None after telling the user why not."""
    run = open_selected_run()
    if run is None:
        return None
    model_data = open_model_data(run, minimum)
    return None if model_data is None else (run, model_data)
