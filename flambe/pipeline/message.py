"""Message: the one data type every pipe passes: a dict of tensors beside a pandas DataFrame, indexed by rows.

Columns are reached only through ``m['name']``, never as attributes, so a column may be called ``batch``,
``index`` or ``columns`` like any other. Every row operation works column-wise (one view, ``index_select``,
``take`` or concatenation per column), and :func:`cat` concatenates each column once over all its parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from flambe.pipeline.tensor_message import (
    TensorMessage,
    cat_tensor_messages,
    check_name,
    column_length,
    common_length,
    describe_tensor,
    merge_tensor_messages,
    normalize_rows,
    take_frame,
    take_tensor,
    tensor_to_series,
    tensors_equal,
    to_tensor,
)

__all__ = ["Message", "TensorMessage", "cat", "merge"]


def to_series(name: str, value: Any) -> pd.Series:
    """One non-tensor column as a pandas Series indexed ``0..n-1`` (N-D arrays become per-row arrays)."""
    if isinstance(value, pd.Series):
        return value.reset_index(drop=True)
    if isinstance(value, (str, bytes, Mapping, Message, TensorMessage)) or not hasattr(value, "__len__"):
        raise TypeError(f"column {name!r} must be array-like (list, array, Series, tensor), got {type(value).__name__}")
    ndim = getattr(value, "ndim", 1)
    if ndim == 0:
        raise TypeError(f"column {name!r} is a 0-d array; a column needs one entry per row")
    if ndim > 1:
        return pd.Series(list(value), dtype=object)
    if isinstance(value, (pd.Index, pd.api.extensions.ExtensionArray)) or hasattr(value, "dtype"):
        return pd.Series(value)
    return pd.Series(value if isinstance(value, list) else list(value))


def _frame(columns: dict[str, pd.Series], length: int) -> pd.DataFrame:
    return pd.DataFrame(columns) if columns else pd.DataFrame(index=pd.RangeIndex(length))


def _series_equal(a: pd.Series, b: pd.Series) -> bool:
    if a.dtype != b.dtype:
        return False
    try:
        return bool(a.equals(b))
    except (ValueError, TypeError, RuntimeError):  # object columns of tensors
        return all(_value_equal(x, y) for x, y in zip(a.tolist(), b.tolist()))


def _value_equal(x: Any, y: Any) -> bool:
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and tensors_equal(x, y)
    try:
        return bool(x == y)
    except (ValueError, TypeError):
        return bool(np.array_equal(x, y))


class Message:
    """Rows of named columns: tensors in a dict (the tensor part), everything else in a pandas DataFrame.

    Parameters
    ----------
    data : Mapping, pandas.DataFrame, Message or TensorMessage, optional
        Columns. ``torch.Tensor`` values go to the tensor part; lists, numpy arrays and pandas Series go to
        the DataFrame (an N-D array becomes an object column of per-row arrays).
    metadata : Mapping, optional
        Free-form information about the message as a whole; kept by row selection, ``copy``, ``cat``
        and ``merge`` (later messages win on clashing keys). It plays no part in equality.
    length : int, optional
        The row count of a message with no columns (default 0); checked against the columns otherwise.
    **columns
        More columns by keyword, e.g. ``Message(a=[1, 2], b=torch.tensor([1, 2]))``. Columns called
        ``data``, ``metadata`` or ``length`` must go in the ``data`` dict.

    Notes
    -----
    ``m['col']`` is a column, anything else in brackets selects rows (an int, a slice, a list / array /
    LongTensor of positions, a bool mask) and returns a new Message indexed ``0..n-1``. Selections by slice
    share memory with ``m`` (tensor views), like numpy and torch. Iterating a Message yields its column names,
    as for a dict.

    Examples
    --------
    >>> m = Message({'x': torch.tensor([1, 2, 3]), 'name': ['a', 'b', 'c']})
    >>> m[-1]['name'].tolist(), m[::2]['x'].tolist()
    (['c'], [1, 3])
    """

    def __init__(self, data: Mapping[str, Any] | pd.DataFrame | Message | TensorMessage | None = None,
                 metadata: Mapping[str, Any] | None = None, length: int | None = None, **columns: Any) -> None:
        if data is None:
            pairs: list[tuple[str, Any]] = []
        elif isinstance(data, Message):
            pairs = data.items()
            metadata = dict(data.metadata) if metadata is None else metadata
        elif isinstance(data, TensorMessage):
            pairs = data.items()
        elif isinstance(data, pd.DataFrame):
            if data.columns.has_duplicates:
                raise ValueError(f"DataFrame has duplicate column names: {list(data.columns)}")
            pairs = list(data.reset_index(drop=True).items())
        elif isinstance(data, Mapping):
            pairs = list(data.items())
        else:
            raise TypeError(f"Message takes a dict, DataFrame or Message, got {type(data).__name__}")
        names = [name for name, _ in pairs]
        clash = sorted(set(names) & set(columns))
        if clash:
            raise ValueError(f"columns given both in data and as keywords: {clash}")
        pairs = pairs + list(columns.items())
        tensors: dict[str, torch.Tensor] = {}
        frame: dict[str, pd.Series] = {}
        for name, value in pairs:
            check_name(name)
            if isinstance(value, torch.Tensor):
                column_length(name, value)
                tensors[name] = value
            else:
                frame[name] = to_series(name, value)
        n = common_length({name: tensors[name] if name in tensors else frame[name] for name, _ in pairs}, length)
        self._t: dict[str, torch.Tensor] = tensors
        self._df: pd.DataFrame = _frame(frame, n)
        self._order: list[str] = [name for name, _ in pairs]
        self._length: int = n
        self.metadata: dict[str, Any] = dict(metadata or {})

    @classmethod
    def _build(cls, tensors: dict[str, torch.Tensor], df: pd.DataFrame, order: list[str], length: int,
               metadata: Mapping[str, Any]) -> Message:
        """Wrap already-checked parts (``df`` indexed ``0..length-1``) without validating them again."""
        m = cls.__new__(cls)
        m._t, m._df, m._order, m._length, m.metadata = tensors, df, order, length, dict(metadata)
        return m

    def _like(self, tensors: dict[str, torch.Tensor], df: pd.DataFrame, length: int) -> Message:
        return type(self)._build(tensors, df, list(self._order), length, self.metadata)

    # ------------------------------------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: object) -> bool:
        return name in self._t or (isinstance(name, str) and name in self._df.columns)

    def __iter__(self) -> Iterator[str]:
        """Iterate over column names, like a dict."""
        return iter(list(self._order))

    @property
    def columns(self) -> list[str]:
        """All column names, in insertion order."""
        return list(self._order)

    def keys(self) -> list[str]:
        """All column names, in insertion order (same as :attr:`columns`)."""
        return list(self._order)

    def items(self) -> list[tuple[str, Any]]:
        """``(name, column)`` pairs in insertion order: Tensors for tensor columns, Series for the others."""
        return [(k, self[k]) for k in self._order]

    @property
    def tensor_columns(self) -> list[str]:
        """Names of the tensor columns, in insertion order."""
        return [k for k in self._order if k in self._t]

    @property
    def frame_columns(self) -> list[str]:
        """Names of the DataFrame columns, in insertion order."""
        return [k for k in self._order if k not in self._t]

    def __getitem__(self, key: Any) -> Any:
        """``m['col']`` is a column (Tensor or Series); a list of names is a Message of those columns;
        any row index (int, slice, positions, mask) is a Message of those rows."""
        if isinstance(key, str):
            if key in self._t:
                return self._t[key]
            if key in self._df.columns:
                return self._df[key]
            raise KeyError(f"no column {key!r}; columns are {self._order}")
        if isinstance(key, (list, tuple)) and key and all(isinstance(k, str) for k in key):
            return self._select(list(key))
        rows, n = normalize_rows(key, self._length)
        return self._like({k: take_tensor(t, rows) for k, t in self._t.items()}, take_frame(self._df, rows), n)

    def _select(self, keys: list[str]) -> Message:
        missing = [k for k in keys if k not in self]
        if missing:
            raise KeyError(f"no columns {missing}; columns are {self._order}")
        frame_keys = [k for k in keys if k not in self._t]
        df = self._df[frame_keys] if frame_keys else _frame({}, self._length)
        return type(self)._build({k: self._t[k] for k in keys if k in self._t}, df, keys, self._length,
                                 self.metadata)

    def __setitem__(self, name: str, values: Any) -> None:
        """Set or replace a column; its length must match unless the message has no columns yet."""
        check_name(name)
        is_tensor = isinstance(values, torch.Tensor)
        new = values if is_tensor else to_series(name, values)
        n = column_length(name, new)
        if any(k != name for k in self._order):
            if n != self._length:
                raise ValueError(f"column {name!r} has {n} rows, the message has {self._length}")
        elif n != self._length or len(self._df) != n:
            self._t, self._df, self._length = {}, _frame({}, n), n
        if name in self._t:
            del self._t[name]
        if name in self._df.columns:
            self._df = self._df.drop(columns=[name])
        if is_tensor:
            self._t[name] = new
        else:
            self._df[name] = new.set_axis(self._df.index)
        if name not in self._order:
            self._order.append(name)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(f"no column {name!r}; columns are {self._order}")
        if name in self._t:
            del self._t[name]
        else:
            self._df = self._df.drop(columns=[name])
        self._order.remove(name)

    # ----------------------------------------------------------------------------------------- conversions
    def _names(self, keys: Iterable[str] | str | None, default: list[str]) -> list[str]:
        names = default if keys is None else [keys] if isinstance(keys, str) else list(keys)
        missing = [k for k in names if k not in self]
        if missing:
            raise KeyError(f"no columns {missing}; columns are {self._order}")
        return names

    def tensors(self, keys: Iterable[str] | str | None = None) -> TensorMessage:
        """The tensor columns as a TensorMessage; with ``keys``, those columns, converting frame ones."""
        names = self._names(keys, self.tensor_columns)
        data = {k: self._t[k] if k in self._t else to_tensor(k, self._df[k]) for k in names}
        return TensorMessage._build(data, self._length)

    def dataframe(self, keys: Iterable[str] | str | None = None) -> pd.DataFrame:
        """The frame columns as a DataFrame; with ``keys``, those columns, converting tensor ones.

        A 1-D tensor becomes a plain column of its dtype; an N-D tensor an object column of per-row arrays.
        """
        if keys is None:
            return self._df[self.frame_columns].copy(deep=False)
        names = self._names(keys, [])
        return _frame({k: tensor_to_series(self._t[k]) if k in self._t else self._df[k] for k in names},
                      self._length)

    def to_tensors(self, keys: Iterable[str] | str | None = None) -> Message:
        """A Message with the ``keys`` columns (default all) as tensors, dtypes kept; strings raise TypeError."""
        names = [k for k in self._names(keys, self.frame_columns) if k not in self._t]
        tensors = dict(self._t)
        tensors.update({k: to_tensor(k, self._df[k]) for k in names})
        return self._like(tensors, self._df.drop(columns=names), self._length)

    def to_dataframe(self, keys: Iterable[str] | str | None = None) -> Message:
        """A Message with the ``keys`` columns (default all tensor ones) moved to the DataFrame, dtypes kept."""
        names = [k for k in self._names(keys, self.tensor_columns) if k in self._t]
        df = self._df.copy(deep=False)
        for k in names:
            df[k] = tensor_to_series(self._t[k])
        return self._like({k: t for k, t in self._t.items() if k not in names}, df, self._length)

    # ------------------------------------------------------------------------------------------ operations
    def append(self, other: Message | Mapping[str, Any]) -> Message:
        """A new Message with ``other``'s rows after these (same keys); see :func:`cat`."""
        return cat([self, other])

    def merge(self, other: Message | Mapping[str, Any]) -> Message:
        """A new Message with the columns of both side by side (same length, distinct keys)."""
        return merge([self, other])

    def map(self, mapping: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]]) -> Message:
        """Apply a function to every column, or ``{column: function}`` to some, leaving the others as they are.

        Each function takes the column (Tensor or Series) and returns the new column; a tensor result goes
        to the tensor part, anything else to the DataFrame.
        """
        if callable(mapping):
            return type(self)({k: mapping(self[k]) for k in self._order}, metadata=self.metadata)
        missing = [k for k in mapping if k not in self]
        if missing:
            raise KeyError(f"map names columns that do not exist: {missing}; columns are {self._order}")
        return type(self)({k: mapping[k](self[k]) if k in mapping else self[k] for k in self._order},
                          metadata=self.metadata)

    def permute(self, index: Any) -> Message:
        """The rows in the order given by ``index`` (any row index), e.g. ``m.permute([2, 1, 0])``."""
        if isinstance(index, str):
            raise TypeError("permute takes a row index, not a column name")
        return self[index]

    def to(self, device: torch.device | str | int, keys: Iterable[str] | str | None = None) -> Message:
        """A Message with the ``keys`` tensor columns (default all) moved to ``device``."""
        names = self._names(keys, self.tensor_columns)
        not_tensors = [k for k in names if k not in self._t]
        if not_tensors:
            raise ValueError(f"columns {not_tensors} are not tensors; convert them with to_tensors() first")
        moved = TensorMessage._build(dict(self._t), self._length).to(device, names)._data
        return self._like(moved, self._df.copy(deep=False), self._length)

    def cpu(self, keys: Iterable[str] | str | None = None) -> Message:
        """A Message with the ``keys`` tensor columns (default all) in system memory."""
        return self.to("cpu", keys)

    def cuda(self, device: int | str | torch.device = 0, keys: Iterable[str] | str | None = None) -> Message:
        """A Message with the ``keys`` tensor columns (default all) on CUDA device ``device`` (default 0)."""
        return self.to(torch.device("cuda", device) if isinstance(device, int) else device, keys)

    def copy(self) -> Message:
        """A deep copy: tensors cloned, DataFrame copied, metadata dict copied."""
        return self._like({k: t.clone() for k, t in self._t.items()}, self._df.copy(deep=True), self._length)

    def __eq__(self, other: object) -> bool:
        """Same columns (each a tensor in both or a frame column in both), same length, equal values.

        Tensors must match in dtype, shape and values (``torch.equal``); frame columns in dtype and values.
        Column order and metadata do not matter.
        """
        if isinstance(other, (Mapping, pd.DataFrame, TensorMessage)):
            other = Message(other)
        if not isinstance(other, Message):
            return NotImplemented
        if len(self) != len(other) or set(self._order) != set(other._order) or set(self._t) != set(other._t):
            return False
        if not all(tensors_equal(t, other._t[k]) for k, t in self._t.items()):
            return False
        return all(_series_equal(self._df[k], other._df[k]) for k in self.frame_columns)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}: {describe_tensor(self._t[k])}" if k in self._t else f"{k}: {self._df[k].dtype}"
                         for k in self._order)
        return f"{type(self).__name__}({self._length} rows; {cols})"


def _as_message(value: Any) -> Message:
    return value if isinstance(value, Message) else Message(value)


def _merged_metadata(parts: list[Message]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for p in parts:
        if p.metadata:
            metadata.update(p.metadata)
    return metadata


def cat(messages: Iterable[Message | TensorMessage | Mapping[str, Any]]) -> Message | TensorMessage:
    """Concatenate messages row-wise: one ``torch.cat`` per tensor column and one ``pd.concat`` for the frame.

    Linear in the total size, however many parts there are. Parts with no columns and no rows (``Message()``)
    are skipped; all other parts must have the same columns, each a tensor in all of them or in none.
    A list of TensorMessages gives a TensorMessage.

    Raises
    ------
    ValueError
        Parts have different columns, or a column's shapes do not line up.
    TypeError
        A column is a tensor in one part and a frame column in another.
    """
    parts = list(messages)
    if parts and all(isinstance(p, TensorMessage) for p in parts):
        return cat_tensor_messages(parts)
    parts = [_as_message(p) for p in parts]
    metadata = _merged_metadata(parts)
    full = [p for p in parts if p._order]
    blank_rows = sum(len(p) for p in parts if not p._order)
    if not full:
        return Message(metadata=metadata, length=blank_rows)
    if blank_rows:
        raise ValueError("cannot concatenate messages with columns and messages that have rows but no columns")
    first = full[0]
    keys, tensor_keys = set(first._order), set(first._t)
    for p in full[1:]:
        if set(p._order) != keys:
            raise ValueError(f"cannot concatenate messages with different columns: {first._order} and {p._order}")
        if set(p._t) != tensor_keys:
            mixed = sorted(set(p._t) ^ tensor_keys)
            raise TypeError(f"columns {mixed} are tensors in some messages and frame columns in others")
    live = [p for p in full if len(p)] or full[:1]
    tensors = cat_tensor_messages([TensorMessage._build(p._t, len(p)) for p in live])._data if tensor_keys else {}
    total = sum(len(p) for p in live)
    frame_keys = first.frame_columns
    if frame_keys:
        df = pd.concat([p._df for p in live], ignore_index=True) if len(live) > 1 else live[0]._df.copy()
        if list(df.columns) != frame_keys:
            df = df[frame_keys]
    else:
        df = _frame({}, total)
    return type(first)._build(tensors, df, list(first._order), total, metadata)


def merge(messages: Iterable[Message | TensorMessage | Mapping[str, Any]]) -> Message | TensorMessage:
    """Put messages' columns side by side. All must have the same length and distinct column names.

    A message with no columns and no rows merges with anything. A list of TensorMessages gives a
    TensorMessage.
    """
    parts = list(messages)
    if parts and all(isinstance(p, TensorMessage) for p in parts):
        return merge_tensor_messages(parts)
    parts = [_as_message(p) for p in parts]
    order = [k for p in parts for k in p._order]
    dupes = sorted({k for k in order if order.count(k) > 1}) if len(set(order)) != len(order) else []
    if dupes:
        raise ValueError(f"cannot merge messages that share columns: {dupes}")
    lengths = {len(p) for p in parts if p._order or len(p)}
    if len(lengths) > 1:
        raise ValueError(f"cannot merge messages of different lengths: {[len(p) for p in parts]}")
    n = lengths.pop() if lengths else 0
    tensors = {k: t for p in parts for k, t in p._t.items()}
    frames = [p._df for p in parts if len(p._df.columns)]
    df = pd.concat(frames, axis=1) if frames else _frame({}, n)
    cls = type(parts[0]) if parts else Message
    return cls._build(tensors, df, order, n, _merged_metadata(parts))
