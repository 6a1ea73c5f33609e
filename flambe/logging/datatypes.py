"""Typed log messages: what ``log_*`` sends through :mod:`logging` for TensorBoard to pick up.

A record whose ``msg`` is one of these tuples is written to TensorBoard by
:class:`~flambe.logging.handler.TensorboardXHandler`; every other handler renders it with ``str()``, a
one-line human-readable summary such as ``train/loss = 0.532 (step 10)``.

Arrays (``values``, ``img_tensor``, ``labels``, ``predictions``) are numpy arrays by the time ``log_*``
builds a message (tensors are detached and copied to the CPU first); a message built by hand may hold a
torch tensor as well.
"""

import logging
from typing import Any, Dict, NamedTuple, Optional, Tuple


def _step(global_step: Optional[int]) -> str:
    return "" if global_step is None else f" (step {global_step})"


def _number(value: float) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".6g")


def _size(values: Any) -> int:
    size = getattr(values, "size", None)
    if callable(size):  # a torch tensor: .size() is its shape
        return int(values.numel())
    if isinstance(size, int):
        return size
    return len(values)


def _shape(values: Any) -> Tuple[int, ...]:
    return tuple(int(dim) for dim in getattr(values, "shape", (len(values),)))


class ScalarT(NamedTuple):
    """A single scalar value.

    Parameters
    ----------
    tag : str
        Data identifier (the TensorBoard tag).
    scalar_value : float
        The value.
    global_step : int, optional
        Iteration associated with the value.
    walltime : float, optional
        Wall clock time of the value (``time.time()`` when None).
    """

    tag: str
    scalar_value: float
    global_step: Optional[int] = None
    walltime: Optional[float] = None

    def __str__(self) -> str:
        return f"{self.tag} = {_number(self.scalar_value)}{_step(self.global_step)}"


class ScalarsT(NamedTuple):
    """Several scalars drawn in one TensorBoard chart.

    Parameters
    ----------
    main_tag : str
        Parent name of all the children tags.
    tag_scalar_dict : Dict[str, float]
        Child tag to value.
    global_step : int, optional
        Iteration associated with the values.
    walltime : float, optional
        Wall clock time of the values.
    """

    main_tag: str
    tag_scalar_dict: Dict[str, float]
    global_step: Optional[int] = None
    walltime: Optional[float] = None

    def __str__(self) -> str:
        values = ", ".join(f"{key} = {_number(value)}" for key, value in self.tag_scalar_dict.items())
        return f"{self.main_tag}: {values}{_step(self.global_step)}"


class HistogramT(NamedTuple):
    """A histogram of an array of values.

    Parameters
    ----------
    tag : str
        Data identifier.
    values : numpy.ndarray or torch.Tensor
        The values to bin.
    global_step : int, optional
        Iteration associated with the values.
    bins : str
        How bins are made (any ``numpy.histogram`` ``bins`` string, default ``'auto'``).
    walltime : float, optional
        Wall clock time of the values.
    """

    tag: str
    values: Any
    global_step: Optional[int] = None
    bins: str = "auto"
    walltime: Optional[float] = None

    def __str__(self) -> str:
        return f"{self.tag}: histogram of {_size(self.values)} values{_step(self.global_step)}"


class ImageT(NamedTuple):
    """An image.

    Parameters
    ----------
    tag : str
        Data identifier.
    img_tensor : numpy.ndarray or torch.Tensor
        The image: floats in [0, 1] or uint8 in [0, 255], laid out as ``dataformats`` says.
    global_step : int, optional
        Iteration associated with the image.
    walltime : float, optional
        Wall clock time of the image.
    dataformats : str
        Layout of ``img_tensor``: ``'CHW'`` (default), ``'HWC'``, ``'HW'`` or ``'NCHW'`` (a grid).
    """

    tag: str
    img_tensor: Any
    global_step: Optional[int] = None
    walltime: Optional[float] = None
    dataformats: str = "CHW"

    def __str__(self) -> str:
        return f"{self.tag}: image of shape {_shape(self.img_tensor)} ({self.dataformats}){_step(self.global_step)}"


class TextT(NamedTuple):
    """A text message (rendered as markdown by TensorBoard).

    Parameters
    ----------
    tag : str
        Data identifier.
    text_string : str
        The text.
    global_step : int, optional
        Iteration associated with the text.
    walltime : float, optional
        Wall clock time of the text.
    """

    tag: str
    text_string: str
    global_step: Optional[int] = None
    walltime: Optional[float] = None

    def __str__(self) -> str:
        return f"{self.tag}: {self.text_string}{_step(self.global_step)}"


class PRCurveT(NamedTuple):
    """A precision-recall curve.

    Parameters
    ----------
    tag : str
        Data identifier.
    labels : numpy.ndarray or torch.Tensor
        Ground truth, 0 or 1 per element.
    predictions : numpy.ndarray or torch.Tensor
        Probability that each element is positive, in [0, 1]; same size as ``labels``.
    global_step : int, optional
        Iteration associated with the curve.
    num_thresholds : int
        Number of thresholds the curve is evaluated at (2 to 127).
    weights : numpy.ndarray, optional
        Weight of each element (all 1 when None).
    walltime : float, optional
        Wall clock time of the curve.
    """

    tag: str
    labels: Any
    predictions: Any
    global_step: Optional[int] = None
    num_thresholds: int = 127
    weights: Any = None
    walltime: Optional[float] = None

    def __str__(self) -> str:
        return f"{self.tag}: PR curve over {_size(self.predictions)} predictions{_step(self.global_step)}"


DATA_TYPES = (ScalarT, ScalarsT, HistogramT, ImageT, TextT, PRCurveT)


class DataLoggingFilter(logging.Filter):
    """Filters records on whether their message is one of ``DATA_TYPES``.

    Parameters
    ----------
    default : bool
        Returned for records whose message is not one of ``DATA_TYPES``.
    level : int
        Minimum level of accepted ``DATA_TYPES`` records.
    dont_include : Tuple[type, ...], optional
        ``DATA_TYPES`` that are never accepted.
    **kwargs : Any
        Passed to :class:`logging.Filter` (``name``).
    """

    def __init__(self, default: bool = True, level: int = logging.NOTSET,
                 dont_include: Optional[Tuple[type, ...]] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default = default
        self.level = level
        self.dont_include = tuple(dont_include or ())

    def filter(self, record: logging.LogRecord) -> bool:
        """True iff the record should be accepted."""
        if not isinstance(record.msg, DATA_TYPES):
            return self.default
        return not isinstance(record.msg, self.dont_include) and record.levelno >= self.level
