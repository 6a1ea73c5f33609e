"""Pipes that transform the Messages passing through: functions, labels, tensors and normalization."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from flambe.pipeline.message import Message
from flambe.pipeline.pipe import HookedPassThroughPipe, Pipe


class FunctionPipe(HookedPassThroughPipe):
    """Applies ``function`` (Message -> Message) to every block and every indexed result.

    ``function`` must be picklable (a module-level function) for the pipe to be.
    """

    def __init__(self, input: Any = None, function: Callable[[Message], Message] | None = None) -> None:
        super().__init__(input)
        if not callable(function):
            raise TypeError(f"FunctionPipe needs a callable function, got {type(function).__name__}")
        self.function = function

    def _next_hook(self, message: Message) -> Message:
        return self.function(message)

    def _getitem_hook(self, message: Message) -> Message:
        return self.function(message)


class Title2LabelPipe(HookedPassThroughPipe):
    """Adds a column ``labels_column`` holding ``title`` to every Message that passes through."""

    def __init__(self, input: Any = None, title: Any = None, labels_column: str = "labels") -> None:
        super().__init__(input)
        self.title = title
        self.labels_column = labels_column

    def insert_labels(self, message: Message) -> Message:
        """A new Message: ``message``'s columns plus the labels column."""
        out = Message(message)
        out[self.labels_column] = [self.title] * len(message)
        return out

    def _next_hook(self, message: Message) -> Message:
        return self.insert_labels(message)

    def _getitem_hook(self, message: Message) -> Message:
        return self.insert_labels(message)


class LabelerPipe(Pipe):
    """Passes Messages through and implements ``to_tensor``: labels in a column become a LongTensor.

    Parameters
    ----------
    input : Pipe, Message or list of Messages
    labels : sequence or mapping
        Label names (label ``labels[i]`` -> ``i``) or a mapping name -> index.
    labels_column : str
        The column holding the labels.
    """

    def __init__(self, input: Any = None, labels: Sequence[Any] | Mapping[Any, int] = (),
                 labels_column: str = "labels") -> None:
        super().__init__(input)
        pairs = list(labels.items()) if isinstance(labels, Mapping) else [(name, i) for i, name in enumerate(labels)]
        if not pairs:
            raise ValueError("LabelerPipe needs at least one label")
        self.labels = dict(pairs)
        self.labels_column = labels_column

    def to_tensor(self, batch: Message, labels_column: str | None = None) -> Message:
        """A new Message with the labels column as a LongTensor of label indices.

        Raises
        ------
        KeyError
            A label is not in ``labels``.
        """
        column = labels_column or self.labels_column
        values = batch[column]
        if isinstance(values, torch.Tensor):
            return batch
        index = pd.Index(list(self.labels))
        pos = index.get_indexer(values)
        if (pos < 0).any():
            unknown = sorted({str(v) for v in pd.Series(values)[pos < 0].unique()})[:10]
            raise KeyError(f"labels {unknown} in column {column!r} are not among {list(self.labels)[:20]}")
        codes = np.asarray(list(self.labels.values()), dtype=np.int64)[pos]
        out = Message(batch)
        out[column] = torch.from_numpy(codes)
        return out


class TensorPipe(HookedPassThroughPipe):
    """Converts passing Messages to tensors and moves them to ``device``.

    Each Message goes through the nearest upstream ``to_tensor`` (e.g. a :class:`LabelerPipe`'s) when there
    is one, then ``Message.to_tensors(columns)`` and ``Message.to(device)``.

    Parameters
    ----------
    input : Pipe, Message or list of Messages
    columns : list of str, optional
        Frame columns to convert (default all; text columns cannot be converted, so list the others).
    device : str or torch.device
    """

    def __init__(self, input: Any = None, columns: Sequence[str] | None = None, device: Any = "cpu") -> None:
        super().__init__(input)
        self.columns = list(columns) if columns is not None else None
        self.device = str(device) if isinstance(device, torch.device) else device

    def convert(self, message: Message) -> Message:
        """``message`` with tensor columns on ``device``."""
        upstream = self._provider("to_tensor")
        if upstream is not None:
            message = upstream.to_tensor(message)
        return message.to_tensors(self.columns).to(self.device)

    def _next_hook(self, message: Message) -> Message:
        return self.convert(message)

    def _getitem_hook(self, message: Message) -> Message:
        return self.convert(message)


def _values(column: Any) -> np.ndarray:
    if isinstance(column, torch.Tensor):
        return column.detach().cpu().to(torch.float64).numpy()
    arr = column.to_numpy() if hasattr(column, "to_numpy") else np.asarray(column)
    if arr.dtype == object:
        arr = np.stack(list(arr))
    return arr.astype(np.float64, copy=False)


def _numeric(message: Message, name: str) -> bool:
    column = message[name]
    if isinstance(column, torch.Tensor):
        return column.is_floating_point() or (column.dtype != torch.bool and not column.is_complex())
    return column.dtype.kind in "iuf"


class Normalizer(HookedPassThroughPipe):
    """Standardizes columns: ``(x - mean) / sqrt(var + eps)`` with statistics fitted over the input's blocks.

    Statistics are merged block by block with Chan et al.'s parallel form of Welford's algorithm (each block's
    mean and sum of squared deviations in float64, then combined), which stays accurate for large offsets such
    as ``1e9 + noise``. The variance is the population variance. Statistics are part of the state.

    If it was not fitted, the first Message through the pipe makes it :meth:`fit` its input first.

    Parameters
    ----------
    input : Pipe, Message or list of Messages, optional
        Without an input, use :meth:`update` and :meth:`transform` directly.
    columns : list of str, optional
        Columns to normalize (default: every numeric column of the first Message seen). Tensor columns keep
        their floating dtype (integers become the default float dtype); frame columns become float64.
    eps : float
    """

    def __init__(self, input: Any = None, columns: Sequence[str] | None = None, eps: float = 1e-8) -> None:
        super().__init__(input)
        self.columns = list(columns) if columns is not None else None
        self.eps = float(eps)
        self._stats: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    @property
    def fitted(self) -> bool:
        """Whether statistics have been collected."""
        return bool(self._stats)

    def _names(self, message: Message) -> list[str]:
        if self.columns is not None:
            return self.columns
        if self._stats:
            return list(self._stats)
        return [k for k in message.columns if _numeric(message, k)]

    def update(self, message: Message) -> Normalizer:
        """Merge the statistics of one block into the running ones."""
        n_b = len(message)
        if n_b == 0:
            return self
        for name in self._names(message):
            x = _values(message[name])
            mean_b = x.mean(axis=0)
            m2_b = np.square(x - mean_b).sum(axis=0)
            if name not in self._stats:
                self._stats[name] = (n_b, mean_b, m2_b)
                continue
            n_a, mean_a, m2_a = self._stats[name]
            n = n_a + n_b
            delta = mean_b - mean_a
            self._stats[name] = (n, mean_a + delta * (n_b / n), m2_a + m2_b + np.square(delta) * (n_a * n_b / n))
        return self

    def fit(self) -> Normalizer:
        """Collect the statistics over one full pass of the input (then rewind the input)."""
        if self.input is None:
            raise RuntimeError("Normalizer.fit needs an input; use update() without one")
        self._stats = {}
        Pipe.reset(self)
        while True:
            try:
                self.update(self._next_from_input())
            except StopIteration:
                break
        Pipe.reset(self)
        return self

    @property
    def count(self) -> dict[str, int]:
        """Rows seen, per column."""
        return {k: v[0] for k, v in self._stats.items()}

    @property
    def mean(self) -> dict[str, np.ndarray]:
        """Mean per column (float64)."""
        return {k: v[1] for k, v in self._stats.items()}

    @property
    def variance(self) -> dict[str, np.ndarray]:
        """Population variance per column (float64)."""
        return {k: v[2] / v[0] for k, v in self._stats.items()}

    def transform(self, message: Message) -> Message:
        """A new Message with the fitted columns standardized.

        Raises
        ------
        RuntimeError
            Nothing has been fitted.
        """
        if not self._stats:
            raise RuntimeError("Normalizer has no statistics: call fit() or update() first")
        out = Message(message)
        for name, (count, mean, m2) in self._stats.items():
            if name not in message:
                continue
            scale = np.sqrt(m2 / count + self.eps)
            column = message[name]
            if isinstance(column, torch.Tensor):
                dtype = column.dtype if column.is_floating_point() else torch.get_default_dtype()
                m = torch.as_tensor(mean, device=column.device)
                s = torch.as_tensor(scale, device=column.device)
                out[name] = ((column.to(torch.float64) - m) / s).to(dtype)
            else:
                values = (_values(column) - mean) / scale
                out[name] = list(values) if np.ndim(mean) else values
        return out

    def __next__(self) -> Message:
        if not self._stats and self.input is not None:
            self.fit()
        return self._next_hook(self._next_from_input())

    def __getitem__(self, index: Any) -> Message:
        if not self._stats and self.input is not None:
            self.fit()
        return super().__getitem__(index)

    def _next_hook(self, message: Message) -> Message:
        return self.transform(message)

    def _getitem_hook(self, message: Message) -> Message:
        return self.transform(message)

    def _pipe_state(self) -> dict[str, Any]:
        stats = {k: {"count": int(n), "mean": torch.from_numpy(np.array(mean, dtype=np.float64)),
                     "m2": torch.from_numpy(np.array(m2, dtype=np.float64))}
                 for k, (n, mean, m2) in self._stats.items()}
        return {"position": self._position, "stats": stats}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        super()._set_pipe_state(state)
        self._stats = {k: (int(v["count"]), torch.as_tensor(v["mean"]).numpy().astype(np.float64),
                           torch.as_tensor(v["m2"]).numpy().astype(np.float64)) for k, v in state["stats"].items()}
