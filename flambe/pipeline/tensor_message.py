"""TensorMessage: a dict of equal-length tensors, plus the row-index and conversion helpers Message shares.

Rows are always selected column-wise: a slice is one view per tensor, a list / LongTensor / mask of rows is one
``index_select`` per tensor. Nothing here loops over rows except the conversion of an object column of per-row
arrays into one stacked tensor, which has to look at each row once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

Rows = slice | torch.Tensor
"""A normalised row selection: a slice with a positive step, or a 1-D int64 CPU tensor of row numbers."""


# ----------------------------------------------------------------------------------------------- row indexing
def normalize_rows(key: Any, n: int) -> tuple[Rows, int]:
    """Turn any supported row index into a slice (positive step) or an int64 index tensor, plus the row count.

    Parameters
    ----------
    key : int, slice, sequence of ints or bools, numpy array, pandas Series, or torch.Tensor
        Negative positions count from the end; a boolean sequence of length ``n`` is a mask.
    n : int
        The number of rows being indexed.

    Returns
    -------
    tuple
        ``(rows, count)`` where ``rows`` is a ``slice`` or a 1-D ``torch.int64`` CPU tensor.

    Raises
    ------
    IndexError
        A position is out of range, or a mask has the wrong length.
    TypeError
        The key is not a row index.
    """
    if isinstance(key, (bool, np.bool_)):
        raise TypeError("a single bool is not a row index; use a mask with one bool per row")
    if isinstance(key, torch.Tensor) and key.ndim == 0 and key.dtype != torch.bool and not key.is_floating_point():
        key = int(key)
    if isinstance(key, (int, np.integer)):
        i = int(key)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"row {i} is out of range for {n} rows")
        return slice(j, j + 1, 1), 1
    if isinstance(key, slice):
        r = range(n)[key]
        if r.step > 0:
            return slice(r.start, r.stop, r.step), len(r)
        return torch.arange(r.start, r.stop, r.step, dtype=torch.int64), len(r)
    if isinstance(key, torch.Tensor):
        idx = key.detach().cpu()
    elif isinstance(key, (pd.Series, pd.Index)):
        idx = torch.from_numpy(np.array(key.to_numpy()))
    elif isinstance(key, np.ndarray):
        idx = torch.from_numpy(np.array(key))
    elif isinstance(key, (list, tuple, range)):
        arr = np.asarray(key)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype == object or arr.dtype.kind not in "biu":
            raise TypeError(f"a row index list must hold ints or bools, got {arr.dtype}")
        idx = torch.from_numpy(arr)
    else:
        raise TypeError(f"cannot index rows with {type(key).__name__}")
    if idx.ndim != 1:
        raise IndexError(f"a row index must be 1-D, got shape {tuple(idx.shape)}")
    if idx.dtype == torch.bool:
        if len(idx) != n:
            raise IndexError(f"a mask must have one bool per row: got {len(idx)} for {n} rows")
        idx = idx.nonzero().flatten()
        return idx, len(idx)
    if idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"a row index must hold ints or bools, got {idx.dtype}")
    given = idx.to(torch.int64)
    idx = torch.where(given < 0, given + n, given)
    bad = (idx < 0) | (idx >= n)
    if bool(bad.any()):
        raise IndexError(f"row {int(given[bad][0])} is out of range for {n} rows")
    return idx, len(idx)


def take_tensor(t: torch.Tensor, rows: Rows) -> torch.Tensor:
    """Rows of ``t`` along dim 0: a view for a slice, one ``index_select`` for an index tensor."""
    if isinstance(rows, slice):
        return t[rows]
    return t.index_select(0, rows.to(t.device))


def take_frame(df: pd.DataFrame, rows: Rows) -> pd.DataFrame:
    """Rows of ``df`` in one ``iloc``/``take``, with the index reset to ``0..n-1``."""
    part = df.iloc[rows] if isinstance(rows, slice) else df.take(rows.numpy())
    return part.reset_index(drop=True)


# ------------------------------------------------------------------------------------------------- conversion
def column_length(name: str, value: Any) -> int:
    """Length of one column (dim 0 of a tensor), with a clear error for scalars."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            raise ValueError(f"column {name!r} is a 0-d tensor; a column needs one entry per row")
        return int(value.shape[0])
    return len(value)


def common_length(columns: Mapping[str, Any], length: int | None = None) -> int:
    """The shared length of ``columns``; ValueError naming every column when they disagree."""
    lengths = {name: column_length(name, value) for name, value in columns.items()}
    if length is not None:
        length = int(length)
    found = set(lengths.values())
    if len(found) > 1:
        listing = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"all columns must have the same length, got {listing}")
    if found:
        (n,) = found
        if length is not None and length != n:
            raise ValueError(f"length={length} was given but the columns have {n} rows")
        return n
    return length or 0


def to_tensor(name: str, values: Any) -> torch.Tensor:
    """Convert one column to a tensor, keeping its dtype (int64, float32 and bool stay as they are).

    Numeric and bool columns go through numpy; an object column of equal-shape per-row arrays (or tensors)
    is stacked into one N-D tensor. Strings, datetimes and ragged rows raise a TypeError / ValueError that
    names the column.
    """
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or isinstance(values, Mapping):
        raise TypeError(f"column {name!r} must be array-like, got {type(values).__name__}")
    if isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        dtype = values.dtype
        if pd.api.types.is_string_dtype(dtype) and not (isinstance(dtype, np.dtype) and dtype.kind == "O"):
            raise TypeError(f"column {name!r} holds strings ({dtype}); strings cannot be tensors")
        if isinstance(dtype, np.dtype):
            arr = values.to_numpy(copy=True)
        elif hasattr(dtype, "numpy_dtype"):  # nullable Int64 / Float32 / boolean
            try:
                arr = values.to_numpy(dtype=dtype.numpy_dtype)
            except (ValueError, TypeError) as err:
                raise ValueError(f"column {name!r} has missing values and cannot be a tensor: {err}") from None
        else:
            arr = np.asarray(values, dtype=object)
    elif isinstance(values, np.ndarray):
        arr = values
    else:
        values = list(values)
        if values and all(isinstance(v, torch.Tensor) for v in values):
            return _stack(name, values)
        arr = np.asarray(values, dtype=object if _ragged(values) else None)
    if arr.dtype == object:
        return _object_to_tensor(name, arr)
    return _numpy_to_tensor(name, arr)


def _ragged(values: list) -> bool:
    """True when a list's rows have different lengths (numpy would refuse to build an array from it)."""
    sized = [len(v) for v in values if hasattr(v, "__len__") and not isinstance(v, (str, bytes))]
    return len(set(sized)) > 1


def _numpy_to_tensor(name: str, arr: np.ndarray) -> torch.Tensor:
    if arr.dtype.kind in "US":
        raise TypeError(f"column {name!r} holds strings ({arr.dtype}); strings cannot be tensors")
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"column {name!r} has dtype {arr.dtype}, which has no tensor equivalent")
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # pandas copy-on-write hands out read-only views
        arr = arr.copy()
    try:
        return torch.from_numpy(arr)
    except TypeError as err:
        raise TypeError(f"column {name!r} cannot be a tensor: {err}") from None


def _object_to_tensor(name: str, arr: np.ndarray) -> torch.Tensor:
    if len(arr) == 0:
        return torch.empty(0)
    rows = list(arr)
    if any(isinstance(v, (str, bytes)) for v in rows):
        raise TypeError(f"column {name!r} holds strings; strings cannot be tensors")
    if all(isinstance(v, torch.Tensor) for v in rows):
        return _stack(name, rows)
    try:
        stacked = np.stack([np.asarray(v) for v in rows])
    except ValueError as err:
        raise ValueError(f"column {name!r} has rows of different shapes; pad them first ({err})") from None
    if stacked.dtype == object:
        raise TypeError(f"column {name!r} holds Python objects that have no tensor equivalent")
    return _numpy_to_tensor(name, stacked)


def _stack(name: str, rows: list[torch.Tensor]) -> torch.Tensor:
    try:
        return torch.stack(rows)
    except RuntimeError as err:
        raise ValueError(f"column {name!r} has rows of different shapes; pad them first ({err})") from None


def tensor_to_series(t: torch.Tensor) -> pd.Series:
    """A tensor as a frame column: 1-D keeps its dtype, N-D becomes an object column of per-row numpy arrays."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    arr = t.numpy().copy()
    if arr.ndim == 1:
        return pd.Series(arr)
    return pd.Series(list(arr), dtype=object)


def check_name(name: Any) -> str:
    """Column names are strings; ints and other keys index rows."""
    if not isinstance(name, str):
        raise TypeError(f"column names must be strings, got {name!r}")
    return name


# ---------------------------------------------------------------------------------------------- TensorMessage
class TensorMessage:
    """A dict of equal-length tensors, indexed by column name or by rows.

    Parameters
    ----------
    data : Mapping[str, Any] or TensorMessage, optional
        Columns; non-tensor values (lists, numpy arrays, pandas Series) are converted with their dtype kept.
    length : int, optional
        The row count when there are no columns (default 0); checked against the columns otherwise.

    Examples
    --------
    >>> tm = TensorMessage({'x': torch.tensor([1, 2, 3])})
    >>> tm[-1]['x'].tolist()
    [3]
    """

    def __init__(self, data: Mapping[str, Any] | TensorMessage | None = None, length: int | None = None) -> None:
        if data is None:
            data = {}
        elif isinstance(data, TensorMessage):
            data = data._data
        elif not isinstance(data, Mapping):
            raise TypeError(f"TensorMessage takes a dict of tensors, got {type(data).__name__}")
        tensors = {check_name(k): to_tensor(k, v) for k, v in data.items()}
        self._length = common_length(tensors, length)
        self._data: dict[str, torch.Tensor] = tensors

    @classmethod
    def _build(cls, data: dict[str, torch.Tensor], length: int) -> TensorMessage:
        """Wrap already-checked columns without validating them again."""
        tm = cls.__new__(cls)
        tm._data = data
        tm._length = length
        return tm

    # -------------------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        """Iterate over column names, like a dict."""
        return iter(list(self._data))

    @property
    def columns(self) -> list[str]:
        """Column names in insertion order."""
        return list(self._data)

    def keys(self) -> list[str]:
        """Column names in insertion order (same as :attr:`columns`)."""
        return list(self._data)

    def items(self) -> list[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` pairs in insertion order."""
        return list(self._data.items())

    def __getitem__(self, key: Any) -> Any:
        """``tm['col']`` is the tensor; any row index returns a TensorMessage of those rows."""
        if isinstance(key, str):
            if key not in self._data:
                raise KeyError(f"no column {key!r}; columns are {list(self._data)}")
            return self._data[key]
        if isinstance(key, (list, tuple)) and key and all(isinstance(k, str) for k in key):
            return type(self)._build({k: self[k] for k in key}, self._length)
        rows, n = normalize_rows(key, self._length)
        return type(self)._build({k: take_tensor(t, rows) for k, t in self._data.items()}, n)

    def __setitem__(self, name: str, values: Any) -> None:
        """Set or replace a column; its length must match unless there are no columns yet."""
        t = to_tensor(check_name(name), values)
        n = column_length(name, t)
        others = [k for k in self._data if k != name]
        if others and n != self._length:
            raise ValueError(f"column {name!r} has {n} rows, the message has {self._length}")
        self._data[name] = t
        self._length = n

    def __delitem__(self, name: str) -> None:
        if name not in self._data:
            raise KeyError(f"no column {name!r}; columns are {list(self._data)}")
        del self._data[name]

    # ---------------------------------------------------------------------------------------- operations
    def append(self, other: TensorMessage | Mapping[str, Any]) -> TensorMessage:
        """A new TensorMessage with ``other``'s rows after these (same keys; one ``torch.cat`` per column)."""
        return cat_tensor_messages([self, other])

    def merge(self, other: TensorMessage | Mapping[str, Any]) -> TensorMessage:
        """A new TensorMessage with the columns of both (distinct keys, same length)."""
        return merge_tensor_messages([self, other])

    def permute(self, index: Any) -> TensorMessage:
        """The rows in the order given by ``index`` (any row index)."""
        if isinstance(index, str):
            raise TypeError("permute takes a row index, not a column name")
        return self[index]

    def map(self, mapping: Callable[[torch.Tensor], Any] | Mapping[str, Callable[[torch.Tensor], Any]]
            ) -> TensorMessage:
        """Apply one function to every column, or ``{column: function}`` to some, leaving the others."""
        if callable(mapping):
            return TensorMessage({k: mapping(t) for k, t in self._data.items()})
        missing = [k for k in mapping if k not in self._data]
        if missing:
            raise KeyError(f"map names columns that do not exist: {missing}; columns are {list(self._data)}")
        return TensorMessage({k: mapping[k](t) if k in mapping else t for k, t in self._data.items()})

    def _moved(self, device: torch.device | str, keys: Iterable[str] | None) -> TensorMessage:
        names = list(self._data) if keys is None else [keys] if isinstance(keys, str) else list(keys)
        missing = [k for k in names if k not in self._data]
        if missing:
            raise KeyError(f"no tensor columns {missing}; tensor columns are {list(self._data)}")
        data = dict(self._data)
        for k in names:
            data[k] = data[k].to(device)
        return type(self)._build(data, self._length)

    def to(self, device: torch.device | str | int, keys: Iterable[str] | None = None) -> TensorMessage:
        """A TensorMessage with the ``keys`` columns (default all) moved to ``device``."""
        return self._moved(_device(device), keys)

    def cpu(self, keys: Iterable[str] | None = None) -> TensorMessage:
        """A TensorMessage with the ``keys`` columns (default all) in system memory."""
        return self._moved("cpu", keys)

    def cuda(self, device: int | str | torch.device = 0, keys: Iterable[str] | None = None) -> TensorMessage:
        """A TensorMessage with the ``keys`` columns (default all) on CUDA device ``device`` (default 0)."""
        return self._moved(_cuda_device(device), keys)

    def copy(self) -> TensorMessage:
        """A deep copy: every tensor is cloned."""
        return type(self)._build({k: t.clone() for k, t in self._data.items()}, self._length)

    def __eq__(self, other: object) -> bool:
        """Same columns, same length, and every column equal (same dtype and shape, ``torch.equal``)."""
        if isinstance(other, Mapping) and not isinstance(other, TensorMessage):
            other = TensorMessage(other)
        if not isinstance(other, TensorMessage):
            return NotImplemented
        if len(self) != len(other) or set(self._data) != set(other._data):
            return False
        return all(tensors_equal(t, other._data[k]) for k, t in self._data.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}: {describe_tensor(t)}" for k, t in self._data.items())
        return f"TensorMessage({self._length} rows; {cols})"


def tensors_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, same shape, same values (compared on one device)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.device != b.device:
        a, b = a.cpu(), b.cpu()
    return bool(torch.equal(a, b))


def describe_tensor(t: torch.Tensor) -> str:
    dtype = str(t.dtype).removeprefix("torch.")
    where = "" if t.device.type == "cpu" else f" {t.device}"
    return f"Tensor[{dtype}, {tuple(t.shape)}{where}]"


def _device(device: torch.device | str | int) -> torch.device:
    return _cuda_device(device) if isinstance(device, int) else torch.device(device)


def _cuda_device(device: int | str | torch.device) -> torch.device:
    return torch.device("cuda", device) if isinstance(device, int) else torch.device(device)


def as_tensor_message(value: Any) -> TensorMessage:
    return value if isinstance(value, TensorMessage) else TensorMessage(value)


def cat_tensor_messages(parts: Iterable[TensorMessage | Mapping[str, Any]]) -> TensorMessage:
    """Rows of all parts, one ``torch.cat`` per column; parts with no columns and no rows are skipped."""
    parts = [as_tensor_message(p) for p in parts]
    full = [p for p in parts if p._data]
    blank_rows = sum(len(p) for p in parts if not p._data)
    if not full:
        return TensorMessage(length=blank_rows)
    if blank_rows:
        raise ValueError("cannot concatenate messages with columns and messages that have rows but no columns")
    keys = list(full[0]._data)
    for p in full[1:]:
        if set(p._data) != set(keys):
            raise ValueError(f"cannot concatenate messages with different columns: {keys} and {list(p._data)}")
    live = [p for p in full if len(p)] or full[:1]
    data = {}
    for k in keys:
        try:
            data[k] = torch.cat([p._data[k] for p in live])
        except RuntimeError as err:
            raise ValueError(f"cannot concatenate column {k!r}: {err}") from None
    return TensorMessage._build(data, sum(len(p) for p in live))


def merge_tensor_messages(parts: Iterable[TensorMessage | Mapping[str, Any]]) -> TensorMessage:
    """Columns of all parts side by side (distinct keys, same length)."""
    parts = [as_tensor_message(p) for p in parts]
    data: dict[str, torch.Tensor] = {}
    dupes = []
    for p in parts:
        for k, t in p._data.items():
            if k in data:
                dupes.append(k)
            data[k] = t
    if dupes:
        raise ValueError(f"cannot merge messages that share columns: {sorted(set(dupes))}")
    lengths = {len(p) for p in parts if p._data or len(p)}
    if len(lengths) > 1:
        raise ValueError(f"cannot merge messages of different lengths: {[len(p) for p in parts]}")
    return TensorMessage._build(data, lengths.pop() if lengths else 0)
