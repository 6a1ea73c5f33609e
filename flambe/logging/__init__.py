"""Logging for flambe: the standard :mod:`logging` module, plus metrics routed to TensorBoard.

>>> from flambe.logging import log
>>> log("train/loss", 0.532, 10)

Inside a trial (:class:`TrialLogging`, which the experiment runner enters around every trial) the value
goes to ``<trial_dir>/tensorboard`` and ``<trial_dir>/log.txt``; in a plain script it is only an INFO
record on the ``flambe.metrics`` logger unless :func:`set_log_dir` was called (see :mod:`.utils`).

Importing this package imports neither torch nor tensorboardX; they are loaded when data is written.
"""

from flambe.logging.context import TRIAL_DIR_ENV, get_trial_dir
from flambe.logging.datatypes import (
    DATA_TYPES,
    DataLoggingFilter,
    HistogramT,
    ImageT,
    PRCurveT,
    ScalarsT,
    ScalarT,
    TextT,
)
from flambe.logging.handler import SecretFilter, TensorboardXHandler, register_secret
from flambe.logging.trial import MB, TrialLogging, flambe_home, setup_global_logging, teardown_global_logging
from flambe.logging.utils import (
    METRICS_LOGGER,
    log,
    log_histogram,
    log_image,
    log_pr_curve,
    log_pr_curves,
    log_scalar,
    log_scalars,
    log_text,
    read_scalars,
    set_log_dir,
)

__all__ = [
    "log", "log_scalar", "log_scalars", "log_text", "log_image", "log_histogram", "log_pr_curve", "log_pr_curves",
    "get_trial_dir", "set_log_dir", "read_scalars", "TrialLogging", "setup_global_logging", "teardown_global_logging",
    "register_secret", "SecretFilter", "TensorboardXHandler", "DataLoggingFilter", "ScalarT", "ScalarsT",
    "HistogramT", "ImageT", "TextT", "PRCurveT", "DATA_TYPES", "MB", "TRIAL_DIR_ENV", "METRICS_LOGGER",
    "flambe_home",
]
