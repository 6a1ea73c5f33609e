"""Process-wide logging set-up (console + ``~/.flambe/logs``) and the per-trial context manager."""

import json
import logging
import logging.handlers
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from flambe.logging import context
from flambe.logging.handler import FILE_FORMAT, LOG_FILE, SecretFilter, close_writer, install_router, release_router

MB = 2 ** 20
FLAMBE_HOME_ENV = "FLAMBE_HOME"
GLOBAL_LOG_BYTES = 10 * MB
GLOBAL_LOG_BACKUPS = 5
_OWN_LOGGERS = ("flambe", "__main__")

_global: Optional[Tuple[logging.Handler, logging.Handler, Dict[str, int]]] = None


def flambe_home() -> str:
    """flambe's own folder: ``$FLAMBE_HOME`` if set, else ``~/.flambe``."""
    return os.path.abspath(os.path.expanduser(os.environ.get(FLAMBE_HOME_ENV) or os.path.join("~", ".flambe")))


def _levels(names: Tuple[str, ...]) -> Dict[str, int]:
    return {name: logging.getLogger(name).level for name in names}


def _restore(levels: Dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def setup_global_logging(console_log_level: int = logging.INFO) -> Callable[[], None]:
    """Log to the console and to a rotating file ``$FLAMBE_HOME/logs/log.log`` (default ``~/.flambe``).

    The console shows records at ``console_log_level`` and above; the file (10 MB, 5 backups) keeps
    everything from DEBUG for flambe's and ``__main__``'s loggers and from INFO for the others. Calling
    again only changes the console level: no handler is added twice. Registered secrets are redacted.

    Parameters
    ----------
    console_log_level : int
        Minimum level shown on the console (``logging.DEBUG`` for ``--verbose``).

    Returns
    -------
    Callable[[], None]
        :func:`teardown_global_logging`, which removes the handlers and restores the levels.
    """
    global _global
    with context.LOCK:
        root = logging.getLogger()
        if _global is None:
            folder = os.path.join(flambe_home(), "logs")
            os.makedirs(folder, exist_ok=True)
            saved = _levels(("",) + _OWN_LOGGERS)
            console = logging.StreamHandler(sys.stderr)
            file_handler = logging.handlers.RotatingFileHandler(
                os.path.join(folder, "log.log"), maxBytes=GLOBAL_LOG_BYTES, backupCount=GLOBAL_LOG_BACKUPS,
                encoding="utf-8")
            file_handler.setLevel(logging.DEBUG)
            file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
            for handler in (console, file_handler):
                handler.addFilter(SecretFilter())
                root.addHandler(handler)
            for name in _OWN_LOGGERS:
                logging.getLogger(name).setLevel(logging.DEBUG)
            _global = (console, file_handler, saved)
        console = _global[0]
        console.setLevel(console_log_level)
        verbose = console_log_level < logging.INFO
        console.setFormatter(logging.Formatter(FILE_FORMAT if verbose else "%(message)s"))
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return teardown_global_logging


def teardown_global_logging() -> None:
    """Undo :func:`setup_global_logging` (nothing happens if it was not called)."""
    global _global
    with context.LOCK:
        if _global is None:
            return
        console, file_handler, saved = _global
        _global = None
        for handler in (console, file_handler):
            logging.getLogger().removeHandler(handler)
            handler.close()
        _restore(saved)


def _capturing_warnings() -> bool:
    return getattr(logging, "_warnings_showwarning", None) is not None


@dataclass
class _Entry:
    handle: Tuple[Any, Any]
    handlers: List[logging.Handler]
    levels: Dict[str, int]
    env: Optional[str]
    capturing: bool = False


class TrialLogging:
    """Context manager that makes ``log_dir`` the active trial directory.

    While active: records from every logger (DEBUG and up for flambe's and ``__main__``'s loggers, INFO
    and up for the others unless ``root_log_level`` says otherwise) are appended to ``<log_dir>/log.txt``;
    metrics logged with :func:`~flambe.logging.log` also go to TensorBoard event files in
    ``<log_dir>/tensorboard``; ``$FLAMBE_TRIAL_DIR`` names ``log_dir``, so a subprocess (a Script) logs
    there too. On exit the event file is closed and handlers, levels, the environment and warning capture
    are restored. Entries nest (the innermost wins) and may follow each other in one process (Ray actors
    reused for several trials): each routes to its own directory only.

    Parameters
    ----------
    log_dir : str
        The trial's directory (created if missing).
    verbose : bool
        Also show every record (DEBUG and up) on stderr.
    root_log_level : int, optional
        Level of the root logger during the trial (default: INFO, or the current level if lower).
    capture_warnings : bool
        Route :mod:`warnings` into the log during the trial.
    console_prefix : str, optional
        Prefix of the verbose console lines (the trial's name, say).
    hyper_params : Dict, optional
        The trial's hyper-parameters, written once as text (``hyper_params``) to the log and TensorBoard.
    """

    def __init__(self, log_dir: str, verbose: bool = False, root_log_level: Optional[int] = None,
                 capture_warnings: bool = True, console_prefix: Optional[str] = None,
                 hyper_params: Optional[Dict] = None) -> None:
        self.log_dir = os.path.abspath(log_dir)
        self.verbose = verbose
        self.root_log_level = root_log_level
        self.capture_warnings = capture_warnings
        self.console_prefix = console_prefix
        self.hyper_params = hyper_params
        self._entries: List[_Entry] = []

    def __enter__(self) -> "TrialLogging":
        os.makedirs(self.log_dir, exist_ok=True)
        with context.LOCK:
            root = logging.getLogger()
            file_handler = logging.FileHandler(os.path.join(self.log_dir, LOG_FILE), mode="a", encoding="utf-8")
            file_handler.setLevel(logging.DEBUG)
            file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
            handlers: List[logging.Handler] = [file_handler]
            if self.verbose:
                console = logging.StreamHandler(sys.stderr)
                console.setLevel(logging.DEBUG)
                prefix = f"{self.console_prefix} " if self.console_prefix else ""
                console.setFormatter(logging.Formatter(prefix + FILE_FORMAT))
                handlers.append(console)
            entry = _Entry(handle=context.push_trial_dir(self.log_dir), handlers=handlers,
                           levels=_levels(("",) + _OWN_LOGGERS), env=os.environ.get(context.TRIAL_DIR_ENV),
                           capturing=_capturing_warnings())
            for handler in handlers:
                handler.addFilter(SecretFilter())
                root.addHandler(handler)
            for name in _OWN_LOGGERS:
                logging.getLogger(name).setLevel(logging.DEBUG)
            if self.root_log_level is not None:
                root.setLevel(self.root_log_level)
            elif root.level > logging.INFO:
                root.setLevel(logging.INFO)
            os.environ[context.TRIAL_DIR_ENV] = self.log_dir
            if self.capture_warnings:
                logging.captureWarnings(True)
            install_router()
            self._entries.append(entry)
        if self.hyper_params:
            from flambe.logging.utils import log_text
            log_text("hyper_params", json.dumps(self.hyper_params, sort_keys=True, default=str), 0)
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        """Close the trial's event file and log file and restore the logging configuration."""
        with context.LOCK:
            entry = self._entries.pop()
            context.pop_trial_dir(entry.handle)
            if self.log_dir not in context.active_trial_dirs():
                close_writer(self.log_dir)
            root = logging.getLogger()
            for handler in entry.handlers:
                root.removeHandler(handler)
                handler.close()
            _restore(entry.levels)
            if entry.env is None:
                os.environ.pop(context.TRIAL_DIR_ENV, None)
            else:
                os.environ[context.TRIAL_DIR_ENV] = entry.env
            if self.capture_warnings and not entry.capturing:
                logging.captureWarnings(False)
            release_router()
