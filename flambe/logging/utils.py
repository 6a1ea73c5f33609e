"""``log`` and friends: send metrics through :mod:`logging` to the console, log files and TensorBoard.

Where the data goes:

- inside a :class:`~flambe.logging.TrialLogging` (every trial of an experiment runs in one), or in a
  process whose environment has ``FLAMBE_TRIAL_DIR`` (a Script's subprocess): TensorBoard events in
  ``<trial_dir>/tensorboard/`` and a line such as ``train/loss = 0.532 (step 10)`` in ``<trial_dir>/log.txt``;
- after :func:`set_log_dir`: the same, in that directory;
- otherwise (a plain Python script): an INFO record on the ``flambe.metrics`` logger only, shown
  wherever the script's logging configuration sends it. No event file is written, nothing appears
  in the working directory.

The record is logged on ``flambe.metrics`` (level INFO, so it is created whatever the root level) or on
the ``logger`` given; a logger that drops INFO records also drops the TensorBoard data.
"""

import logging
import numbers
import os
import struct
from typing import Any, Dict, Iterator, List, Optional

from flambe.logging import context
from flambe.logging.datatypes import HistogramT, ImageT, PRCurveT, ScalarsT, ScalarT, TextT
from flambe.logging.handler import TENSORBOARD_DIR, route

METRICS_LOGGER = "flambe.metrics"
_metrics = logging.getLogger(METRICS_LOGGER)
_metrics.setLevel(logging.INFO)

get_trial_dir = context.get_trial_dir


def set_log_dir(path: Optional[str] = "flambe-logs") -> Optional[str]:
    """Send metrics logged outside trials to ``path``: events in ``<path>/tensorboard``, lines in ``<path>/log.txt``.

    Parameters
    ----------
    path : str, optional
        The directory (created if missing); default ``./flambe-logs``. None stops writing there
        (the open event file is closed).

    Returns
    -------
    Optional[str]
        The absolute directory now used outside trials (``$FLAMBE_TRIAL_DIR`` after ``None``, if set).
    """
    context.set_ambient_dir(path)
    route()
    return context.ambient_dir()


def _emit(message: Any, logger: Optional[logging.Logger]) -> None:
    route()
    (logger or _metrics).info(message)


def _array(values: Any) -> Any:
    """A numpy array of ``values`` (a torch tensor is detached and copied to the CPU first)."""
    import numpy as np
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu()
        try:
            return values.numpy()
        except TypeError:  # bfloat16 and other dtypes numpy lacks
            return values.float().numpy()
    return np.asarray(values)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, numbers.Real):
        return True
    return callable(getattr(value, "item", None)) and getattr(value, "ndim", None) == 0


def _scalar(value: Any, tag: str) -> float:
    if isinstance(value, numbers.Real):
        return float(value)
    if callable(getattr(value, "item", None)):
        size = value.numel() if callable(getattr(value, "numel", None)) else getattr(value, "size", None)
        if size == 1:
            return float(value.item())
    raise TypeError(f"{tag!r}: expected a number or a one-element tensor, got {type(value).__name__}")


def log_scalar(tag: str, scalar_value: Any, global_step: Optional[int] = None, walltime: Optional[float] = None,
               logger: Optional[logging.Logger] = None) -> None:
    """Log a scalar (a number or a one-element tensor).

    Parameters
    ----------
    tag : str
        TensorBoard tag (``train/loss``).
    scalar_value : float or Tensor
        The value.
    global_step : int, optional
        Iteration the value belongs to.
    walltime : float, optional
        Time of the value (``time.time()`` when None).
    logger : logging.Logger, optional
        Logger to log the record on (default ``flambe.metrics``).
    """
    _emit(ScalarT(tag, _scalar(scalar_value, tag), global_step, walltime), logger)


def log_scalars(main_tag: str, tag_scalar_dict: Dict[str, Any], global_step: Optional[int] = None,
                walltime: Optional[float] = None, logger: Optional[logging.Logger] = None) -> None:
    """Log several scalars drawn in one TensorBoard chart (``{"train": 0.3, "val": 0.4}``).

    Parameters are those of :func:`log_scalar`, with ``tag_scalar_dict`` mapping child tags to values.
    """
    if not isinstance(tag_scalar_dict, dict):
        raise TypeError(f"{main_tag!r}: expected a dict of scalars, got {type(tag_scalar_dict).__name__}")
    values = {str(key): _scalar(value, f"{main_tag}/{key}") for key, value in tag_scalar_dict.items()}
    _emit(ScalarsT(main_tag, values, global_step, walltime), logger)


def log_text(tag: str, text_string: str, global_step: Optional[int] = None, walltime: Optional[float] = None,
             logger: Optional[logging.Logger] = None) -> None:
    """Log text (TensorBoard renders it as markdown). Parameters as :func:`log_scalar`."""
    if not isinstance(text_string, str):
        raise TypeError(f"{tag!r}: expected a string, got {type(text_string).__name__}")
    _emit(TextT(tag, text_string, global_step, walltime), logger)


def log_image(tag: str, img_tensor: Any, global_step: Optional[int] = None, walltime: Optional[float] = None,
              logger: Optional[logging.Logger] = None, dataformats: str = "CHW") -> None:
    """Log an image: floats in [0, 1] or uint8 values, laid out as ``dataformats`` says.

    ``dataformats`` is ``'CHW'`` (default; C = 1, 3 or 4), ``'HWC'``, ``'HW'`` (grey) or ``'NCHW'``
    (a batch, drawn as a grid). Other parameters as :func:`log_scalar`.
    """
    array = _array(img_tensor)
    if array.ndim != len(dataformats) or len(set(dataformats.upper())) != len(dataformats):
        raise ValueError(f"{tag!r}: an image of shape {tuple(array.shape)} does not match dataformats "
                         f"{dataformats!r}")
    _emit(ImageT(tag, array, global_step, walltime, dataformats.upper()), logger)


def log_histogram(tag: str, values: Any, global_step: Optional[int] = None, bins: str = "auto",
                  walltime: Optional[float] = None, logger: Optional[logging.Logger] = None) -> None:
    """Log the distribution of ``values`` (any shape; finite numbers).

    ``bins`` is a ``numpy.histogram`` bins rule (``'auto'``, ``'fd'``, ``'sturges'``, ...) or
    ``'tensorflow'``. Other parameters as :func:`log_scalar`.
    """
    import numpy as np
    array = _array(values).astype(np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{tag!r}: cannot make a histogram of no values")
    if not np.isfinite(array).all():
        raise ValueError(f"{tag!r}: histogram values must be finite (found NaN or inf)")
    _emit(HistogramT(tag, array, global_step, bins, walltime), logger)


def log_pr_curve(tag: str, labels: Any, predictions: Any, global_step: Optional[int] = None,
                 num_thresholds: int = 127, weights: Any = None, walltime: Optional[float] = None,
                 logger: Optional[logging.Logger] = None) -> None:
    """Log a precision-recall curve.

    Parameters
    ----------
    tag : str
        TensorBoard tag.
    labels : Tensor or array
        Ground truth, 0 or 1 per element.
    predictions : Tensor or array
        Probability of the positive class per element, in [0, 1]; as many as ``labels``.
    global_step : int, optional
        Iteration the curve belongs to.
    num_thresholds : int
        Number of thresholds the curve is evaluated at, 2 to 127.
    weights : Tensor or array, optional
        Weight of each element.
    walltime : float, optional
        Time of the curve.
    logger : logging.Logger, optional
        Logger to log the record on.
    """
    import numpy as np
    label_array, prediction_array = _array(labels).ravel(), _array(predictions).astype(np.float64).ravel()
    if label_array.size != prediction_array.size or label_array.size == 0:
        raise ValueError(f"{tag!r}: labels ({label_array.size}) and predictions ({prediction_array.size}) "
                         "must have the same, non-zero size")
    if not ((prediction_array >= 0) & (prediction_array <= 1)).all():
        raise ValueError(f"{tag!r}: predictions must lie in [0, 1]")
    if not 2 <= int(num_thresholds) <= 127:
        raise ValueError(f"{tag!r}: num_thresholds must be between 2 and 127, got {num_thresholds}")
    weight_array = None if weights is None else _array(weights).astype(np.float64).ravel()
    _emit(PRCurveT(tag, label_array, prediction_array, global_step, int(num_thresholds), weight_array, walltime),
          logger)


log_pr_curves = log_pr_curve


def log(tag: str, data: Any, global_step: Optional[int] = None, walltime: Optional[float] = None) -> None:
    """Log ``data`` under ``tag``, choosing the kind from its type.

    A number or a 0-d tensor is a scalar, a dict of numbers is a group of scalars
    (:func:`log_scalars`), a string is text. Use :func:`log_histogram`, :func:`log_image` and
    :func:`log_pr_curve` for arrays.

    Parameters
    ----------
    tag : str
        TensorBoard tag (``train/loss``).
    data : float, Tensor, Dict[str, float] or str
        What to log.
    global_step : int, optional
        Iteration the data belongs to.
    walltime : float, optional
        Time of the data (``time.time()`` when None).

    Examples
    --------
    >>> from flambe.logging import log
    >>> log("train/loss", 0.532, 10)
    """
    if _is_scalar(data):
        log_scalar(tag, data, global_step, walltime)
    elif isinstance(data, dict):
        log_scalars(tag, data, global_step, walltime)
    elif isinstance(data, str):
        log_text(tag, data, global_step, walltime)
    else:
        raise TypeError(f"log({tag!r}, ...): cannot log a {type(data).__name__}; log takes a number, a 0-d tensor, "
                        "a dict of numbers or a string (use log_histogram, log_image or log_pr_curve for arrays)")


def _records(path: str) -> Iterator[bytes]:
    """The TFRecords of an event file ([u64 length][u32 crc][data][u32 crc]); stops at a truncated tail."""
    from tensorboardX.record_writer import masked_crc32c
    with open(path, "rb") as handle:
        data = handle.read()
    pos = 0
    while pos + 12 <= len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != masked_crc32c(header) or pos + 16 + length > len(data):
            return  # a record still being written (or a damaged file): what came before is kept
        yield data[pos + 12:pos + 12 + length]
        pos += 16 + length


def read_scalars(trial_dir: str) -> List[Dict[str, Any]]:
    """Every scalar written to ``<trial_dir>/tensorboard`` (by any process), oldest first.

    Parameters
    ----------
    trial_dir : str
        A trial directory (what :func:`get_trial_dir` returned while it ran).

    Returns
    -------
    List[Dict[str, Any]]
        ``{"tag", "value", "step", "wall_time"}`` per value, sorted by wall time. A value of
        :func:`log_scalars` has the tag ``main_tag/child``. Empty when nothing was written.
    """
    root = os.path.join(trial_dir, TENSORBOARD_DIR)
    if not os.path.isdir(root):
        return []
    from tensorboardX.proto import event_pb2
    found: List[Dict[str, Any]] = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        run = os.path.relpath(folder, root).replace(os.sep, "/")
        for name in sorted(files):
            if not name.startswith("events.out.tfevents."):
                continue
            for record in _records(os.path.join(folder, name)):
                event = event_pb2.Event.FromString(record)
                for value in event.summary.value:
                    if value.WhichOneof("value") == "simple_value":
                        found.append({"tag": value.tag if run == "." else run, "value": value.simple_value,
                                      "step": event.step, "wall_time": event.wall_time})
    found.sort(key=lambda item: item["wall_time"])
    return found
