"""Logging for the command line: the ``bt_core`` logger hierarchy, configured once per command.

Default: INFO, one plain line per message on stderr (the one-line-per-epoch look);
``--quiet``: warnings and errors only; ``--verbose``: DEBUG with levels and logger names, plus
TensorFlow's own logs. TensorFlow's start-up lines (oneDNN, CUDA) are hidden unless
``--verbose``: its C++ log level is read from the environment when it is imported, so
:func:`configure_logging` runs before anything imports it, and the lines TensorFlow 2.21
writes before its logging starts (which ignore that level) are filtered out of stderr while
:func:`import_tensorflow_quietly` imports it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

DISTRIBUTION = "brain-tumor-zoo"
ROOT_LOGGER = "bt_core"
PLAIN_FORMAT = "%(message)s"
VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# TensorFlow's C++ logs: 0 all, 2 errors only (hides the oneDNN / CUDA start-up lines).
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
TF_QUIET, TF_VERBOSE = "2", "0"
# Python loggers of TensorFlow and absl: only their errors by default.
NOISY_LOGGERS = ("tensorflow", "absl", "h5py")
# What TensorFlow prints while it loads, before absl logging is initialised (lower case).
STARTUP_NOISE = (b"absl::initializelog", b"onednn custom operations", b"tf_enable_onednn_opts",
                 b"cpu_feature_guard", b"rebuild tensorflow with the appropriate compiler flags",
                 b"cuda", b"cudnn", b"cufft", b"cublas", b"tensorrt")


def package_version() -> str:
    """The installed distribution's version, from its metadata (``pip install`` wrote it)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message, so a redirected
    stderr (pytest's capture, a caller's contextlib.redirect_stderr) receives the lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def log_level(quiet: bool = False, verbose: bool = False) -> int:
    if quiet and verbose:
        raise ValueError("--quiet and --verbose exclude each other")
    return logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO


def quiet_tensorflow(verbose: bool = False) -> None:
    """Set TensorFlow's C++ log level before it is imported; a value the user set wins."""
    os.environ.setdefault(TF_LOG_LEVEL_ENV, TF_VERBOSE if verbose else TF_QUIET)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)


def configure_logging(quiet: bool = False, verbose: bool = False) -> logging.Logger:
    """Route the ``bt_core`` loggers to stderr at the chosen level; calling it again replaces
    the earlier set-up (one handler, never two)."""
    level = log_level(quiet, verbose)
    quiet_tensorflow(verbose)
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _CurrentStderr)]:
        logger.removeHandler(handler)
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter(VERBOSE_FORMAT if verbose else PLAIN_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def is_startup_noise(line: bytes) -> bool:
    lowered = line.lower()
    return any(pattern in lowered for pattern in STARTUP_NOISE)


@contextmanager
def startup_noise_filtered() -> Iterator[None]:
    """Inside: whatever reaches file descriptor 2 (C++ code included) goes through a pipe to
    the real stderr, line by line as it comes, less TensorFlow's start-up lines; a crash
    message on the way still gets through."""
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not is_startup_noise(line):
                    os.write(real_stderr, line)

    forwarder = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # closes the pipe's last write end: the forwarder reads to EOF
        forwarder.join(timeout=10)
        os.close(real_stderr)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow now, without its start-up lines, if this command will use it (the
    Keras backend is TensorFlow) and it is installed and not yet imported."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    with startup_noise_filtered():
        import tensorflow  # noqa: F401
