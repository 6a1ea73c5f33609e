"""The active trial directory: where TensorBoard events and metric lines go.

Precedence, first match wins:

1. the innermost :class:`~flambe.logging.TrialLogging` entered in this thread (or asyncio task);
2. the most recently entered TrialLogging still active in the process (so threads a trial starts log
   into it too);
3. the directory given to :func:`~flambe.logging.set_log_dir`;
4. the environment variable ``FLAMBE_TRIAL_DIR`` (a subprocess started during a trial inherits it,
   because TrialLogging exports it while active);
5. none: metrics are logged as ordinary records only, no event file is written.
"""

import contextvars
import itertools
import os
import threading
from typing import List, Optional, Tuple

TRIAL_DIR_ENV = "FLAMBE_TRIAL_DIR"

#: Guards every piece of module state of the package (stack, writers, installed handlers).
LOCK = threading.RLock()

_ids = itertools.count(1)
_stack: List[Tuple[int, str]] = []  # (entry id, absolute trial dir), innermost last
_current: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar("flambe_trial_entry", default=None)
_log_dir: Optional[str] = None


def push_trial_dir(path: str) -> Tuple[int, contextvars.Token]:
    """Make ``path`` the active trial directory; returns the handle :func:`pop_trial_dir` needs."""
    with LOCK:
        entry = next(_ids)
        _stack.append((entry, os.path.abspath(path)))
        return entry, _current.set(entry)


def pop_trial_dir(handle: Tuple[int, contextvars.Token]) -> None:
    """Deactivate the entry made by :func:`push_trial_dir` (whatever was entered since)."""
    entry, token = handle
    with LOCK:
        _stack[:] = [item for item in _stack if item[0] != entry]
    try:
        _current.reset(token)
    except ValueError:  # exited in another context: the stale id is ignored by get_trial_dir
        pass


def trial_active() -> bool:
    """Whether a TrialLogging is active anywhere in this process."""
    return bool(_stack)


def active_trial_dirs() -> List[str]:
    """The directories of the active TrialLogging entries, innermost last."""
    with LOCK:
        return [path for _, path in _stack]


def ambient_dir() -> Optional[str]:
    """The directory used when no TrialLogging is active: :func:`set_log_dir`'s, else ``$FLAMBE_TRIAL_DIR``."""
    if _log_dir is not None:
        return _log_dir
    env = os.environ.get(TRIAL_DIR_ENV)
    return os.path.abspath(env) if env else None


def set_ambient_dir(path: Optional[str]) -> None:
    global _log_dir
    _log_dir = os.path.abspath(path) if path is not None else None


def get_trial_dir() -> Optional[str]:
    """Get the output directory of the currently active trial.

    Returns
    -------
    Optional[str]
        The absolute path of the active trial directory, or None outside any trial (and without
        :func:`~flambe.logging.set_log_dir` or ``$FLAMBE_TRIAL_DIR``).
    """
    with LOCK:
        if _stack:
            mine = _current.get()
            for entry, path in reversed(_stack):
                if entry == mine:
                    return path
            return _stack[-1][1]
    return ambient_dir()
