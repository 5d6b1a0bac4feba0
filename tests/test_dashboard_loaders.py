"""bt_dashboard.loaders.cached_by_mtime: a loader is read again exactly when a file it is keyed by changes."""

import os
from pathlib import Path

import pytest

from bt_dashboard.loaders import cached_by_mtime


def touch_later(path: Path) -> None:
    """Move a file's mtime one second on (a rewrite within the clock's resolution would not show)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def counted(tmp_path):
    """A loader keyed by ``<folder>/data.txt`` that counts its reads."""
    calls = []

    @cached_by_mtime(lambda folder, *_: [Path(folder) / "data.txt"], show_spinner=False)
    def read_data(folder, suffix=""):
        calls.append(folder)
        path = Path(folder) / "data.txt"
        return (path.read_text() if path.exists() else None, suffix)

    yield read_data, calls
    read_data.clear()


def test_an_unchanged_file_comes_from_the_cache_and_a_changed_one_is_read_again(counted, tmp_path):
    read_data, calls = counted
    (tmp_path / "data.txt").write_text("one")
    assert read_data(tmp_path) == ("one", "")
    assert read_data(tmp_path) == ("one", "")
    assert len(calls) == 1

    (tmp_path / "data.txt").write_text("two")
    touch_later(tmp_path / "data.txt")
    assert read_data(tmp_path) == ("two", "")
    assert len(calls) == 2


def test_a_path_and_its_text_share_one_entry_and_other_arguments_do_not(counted, tmp_path):
    read_data, calls = counted
    (tmp_path / "data.txt").write_text("one")
    read_data(tmp_path)
    read_data(str(tmp_path))
    assert calls == [str(tmp_path)]  # the loader receives text
    assert read_data(tmp_path, "x") == ("one", "x")
    assert len(calls) == 2


def test_a_missing_file_is_cached_until_it_appears(counted, tmp_path):
    read_data, calls = counted
    assert read_data(tmp_path) == (None, "")
    assert read_data(tmp_path) == (None, "")
    assert len(calls) == 1
    (tmp_path / "data.txt").write_text("new")
    assert read_data(tmp_path) == ("new", "")
    assert len(calls) == 2


def test_two_loaders_with_the_same_body_keep_separate_caches(tmp_path):
    (tmp_path / "data.txt").write_text("x")

    @cached_by_mtime(lambda folder: [Path(folder) / "data.txt"], show_spinner=False)
    def first(folder):
        return "first"

    @cached_by_mtime(lambda folder: [Path(folder) / "data.txt"], show_spinner=False)
    def second(folder):
        return "second"

    assert (first(tmp_path), second(tmp_path)) == ("first", "second")
    first.clear()
    second.clear()


def test_a_resource_loader_returns_the_same_object_until_its_file_changes(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("x")

    @cached_by_mtime(lambda folder: [Path(folder) / "data.txt"], resource=True, show_spinner=False)
    def load(folder):
        return [Path(folder, "data.txt").read_text()]

    first = load(tmp_path)
    assert load(tmp_path) is first
    touch_later(path)
    assert load(tmp_path) is not first
    load.clear()

