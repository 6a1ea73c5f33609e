"""Handlers: TensorBoard event files per trial directory, metric lines outside trials, secret redaction.

tensorboardX (and through it torch and numpy) is imported only when the first event is written.
"""

import atexit
import itertools
import logging
import os
import struct
import sys
import zlib
from typing import Any, Dict, Optional, Tuple

from flambe.logging import context
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

LOG_FILE = "log.txt"
TENSORBOARD_DIR = "tensorboard"
FLUSH_SECS = 5
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "****"

_writers: Dict[str, Any] = {}
_writers_pid = os.getpid()
_suffixes = itertools.count()
_atexit_registered = False
_secrets: Tuple[str, ...] = ()  # longest first; replaced as a whole, so readers need no lock
_router: Optional["TensorboardXHandler"] = None
_ambient: Optional[logging.FileHandler] = None
_fallback: Optional[logging.Handler] = None


# ----------------------------------------------------------------------------- writers, one per trial dir
def get_writer(trial_dir: str) -> Any:
    """The ``SummaryWriter`` of ``trial_dir`` (events in ``<trial_dir>/tensorboard``), created on first use."""
    global _writers_pid, _atexit_registered
    with context.LOCK:
        if _writers_pid != os.getpid():  # a forked child: the parent's writer threads do not run here
            _writers.clear()
            _writers_pid = os.getpid()
        writer = _writers.get(trial_dir)
        if writer is None:
            from tensorboardX import SummaryWriter
            # The pid and a counter keep two writers of one directory (a Script's subprocess, a trial run
            # twice within a second) from opening the same file name, which tensorboardX would truncate.
            writer = SummaryWriter(logdir=os.path.join(trial_dir, TENSORBOARD_DIR), flush_secs=FLUSH_SECS,
                                   filename_suffix=f".{os.getpid()}.{next(_suffixes)}")
            _writers[trial_dir] = writer
            if not _atexit_registered:
                # Registered after tensorboardX set up its multiprocessing queue, so it runs before
                # multiprocessing's own exit hook closes that queue.
                atexit.register(close_all_writers)
                _atexit_registered = True
        return writer


def close_writer(trial_dir: str) -> None:
    """Write out and close the writer of ``trial_dir``, if one is open."""
    with context.LOCK:
        writer = _writers.pop(trial_dir, None) if _writers_pid == os.getpid() else None
    if writer is not None:
        writer.close()


def close_all_writers() -> None:
    """Write out and close every open writer (at exit)."""
    with context.LOCK:
        dirs = list(_writers) if _writers_pid == os.getpid() else []
    for trial_dir in dirs:
        close_writer(trial_dir)


def encode_png(pixels: Any) -> bytes:
    """Encode an ``[H x W x C]`` uint8 array (C = 1, 2, 3 or 4) as PNG bytes."""
    height, width, channels = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _add_image(writer: Any, message: ImageT) -> None:
    # Encoded here rather than by tensorboardX, whose image summary needs Pillow.
    import numpy as np
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.utils import convert_to_HWC
    from tensorboardX.x2num import make_np

    pixels = convert_to_HWC(make_np(message.img_tensor), message.dataformats)
    if pixels.dtype != np.uint8:
        pixels = np.rint(pixels.astype(np.float64) * 255.0).clip(0, 255).astype(np.uint8)
    height, width, channels = pixels.shape
    image = Summary.Image(height=height, width=width, colorspace=channels,
                          encoded_image_string=encode_png(np.ascontiguousarray(pixels)))
    summary = Summary(value=[Summary.Value(tag=message.tag, image=image)])
    writer._get_file_writer().add_summary(summary, message.global_step, message.walltime)


def write_message(writer: Any, message: Any) -> None:
    """Write one typed message with a tensorboardX ``SummaryWriter``."""
    if isinstance(message, ScalarT):
        writer.add_scalar(message.tag, float(message.scalar_value), message.global_step, message.walltime)
    elif isinstance(message, ScalarsT):
        values = {key: float(value) for key, value in message.tag_scalar_dict.items()}
        writer.add_scalars(message.main_tag, values, message.global_step, message.walltime)
    elif isinstance(message, TextT):
        writer.add_text(message.tag, message.text_string, message.global_step, message.walltime)
    elif isinstance(message, HistogramT):
        writer.add_histogram(message.tag, message.values, message.global_step, bins=message.bins,
                             walltime=message.walltime)
    elif isinstance(message, ImageT):
        _add_image(writer, message)
    elif isinstance(message, PRCurveT):
        writer.add_pr_curve(message.tag, message.labels, message.predictions, message.global_step,
                            message.num_thresholds, message.weights, message.walltime)
    else:
        raise TypeError(f"not a flambe.logging data type: {type(message).__name__}")


# ----------------------------------------------------------------------------- secrets
def register_secret(value: str) -> None:
    """Never let ``value`` reach a log: handlers set up by flambe replace it with ``****``.

    Register the values of secrets (tokens, passwords, keys read from the environment or a secrets
    file) as soon as they are read. Empty strings are ignored.
    """
    if not isinstance(value, str):
        raise TypeError(f"register_secret expects a string, got {type(value).__name__}")
    global _secrets
    if value.strip():
        with context.LOCK:
            _secrets = tuple(sorted(set(_secrets) | {value}, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``****``."""
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """Redacts registered secrets from a record's message, typed message fields and traceback."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.msg
        if isinstance(message, DATA_TYPES):
            fields = {name: redact(getattr(message, name)) for name in ("tag", "main_tag", "text_string")
                      if isinstance(getattr(message, name, None), str)}
            record.msg = message._replace(**fields)
        else:
            try:
                text = record.getMessage()
            except Exception:  # a bad format string: the handler reports it
                return True
            clean = redact(text)
            if clean != text:
                record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# ----------------------------------------------------------------------------- the TensorBoard handler
class TensorboardXHandler(logging.Handler):
    """Writes records whose message is a typed message (``ScalarT``, ...) to TensorBoard via tensorboardX.

    Other records are ignored.

    Parameters
    ----------
    writer : tensorboardX.SummaryWriter, optional
        Write every message with this writer. When None (what flambe installs), each message goes to the
        writer of the active trial directory (``<trial_dir>/tensorboard``), and is dropped when there is none.
    *args, **kwargs : Any
        Passed to :class:`logging.Handler` (``level``).

    Attributes
    ----------
    writer : tensorboardX.SummaryWriter or None
        The fixed writer, if one was given.
    """

    def __init__(self, writer: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer = writer
        self.addFilter(SecretFilter())

    def emit(self, record: logging.LogRecord) -> None:
        message = record.msg
        if not isinstance(message, DATA_TYPES):
            return
        try:
            writer = self.writer
            if writer is None:
                trial_dir = context.get_trial_dir()
                if trial_dir is None:
                    return
                writer = get_writer(trial_dir)
            write_message(writer, message)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            return
        with context.LOCK:
            writers = list(_writers.values()) if _writers_pid == os.getpid() else []
        for writer in writers:
            writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:
            close_all_writers()
        super().close()


def install_router() -> None:
    """Attach the routing TensorboardXHandler to the root logger (once)."""
    global _router
    with context.LOCK:
        if _router is None:
            _router = TensorboardXHandler()
        root = logging.getLogger()
        if _router not in root.handlers:
            root.addHandler(_router)


def release_router() -> None:
    """Detach the routing handler when no trial and no log dir needs it any more."""
    with context.LOCK:
        if _router is not None and not context.trial_active() and _ambient is None:
            logging.getLogger().removeHandler(_router)


class _LastResort(logging.Handler):
    """What Python does for a logger tree without handlers: WARNING and above to the current stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _drop_ambient() -> None:
    global _ambient, _fallback
    root = logging.getLogger()
    for handler in (_ambient, _fallback):
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
    if _ambient is not None:
        close_writer(_ambient.trial_dir)  # type: ignore[attr-defined]
    _ambient = _fallback = None


def route() -> None:
    """Outside trials, set up the handlers of the log dir (``set_log_dir`` or ``$FLAMBE_TRIAL_DIR``), if any.

    Metric records then go to ``<dir>/tensorboard`` and their lines to ``<dir>/log.txt``. Called by every
    ``log_*`` function; a no-op while a TrialLogging is active (it set up its own handlers).
    """
    global _ambient, _fallback
    if context.trial_active():
        return
    directory = context.ambient_dir()
    with context.LOCK:
        if _ambient is not None and _ambient.trial_dir == directory:  # type: ignore[attr-defined]
            return
        _drop_ambient()
        if directory is None:
            release_router()
            return
        os.makedirs(directory, exist_ok=True)
        root = logging.getLogger()
        if not root.handlers:  # adding handlers would silence Python's last-resort output of warnings
            _fallback = _LastResort()
            root.addHandler(_fallback)
        handler = logging.FileHandler(os.path.join(directory, LOG_FILE), mode="a", encoding="utf-8", delay=True)
        handler.trial_dir = directory  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handler.addFilter(DataLoggingFilter(default=False))  # only metric lines: the rest is the user's
        handler.addFilter(lambda record: not context.trial_active())  # a trial writes its own log.txt
        handler.addFilter(SecretFilter())
        _ambient = handler
        root.addHandler(handler)
        install_router()
