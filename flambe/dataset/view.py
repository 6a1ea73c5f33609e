"""DataView: one split of a TabularDataset, processed by the dataset's fields on access."""

from __future__ import annotations

from itertools import chain
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from flambe.field import Field

#: (field, the column indices it reads)
Hook = Tuple[Field, List[int]]


def to_tensor(value: Any) -> Any:
    """A raw cell as a tensor when it is numeric (bools, ints as int64, floats as float32); else as is."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (bool, np.bool_)):
        return torch.tensor(bool(value))
    if isinstance(value, (int, np.integer)):
        return torch.tensor(int(value), dtype=torch.long)
    if isinstance(value, (float, np.floating)):
        return torch.tensor(float(value), dtype=torch.float)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.from_numpy(value.astype(np.float32) if value.dtype.kind == "f" else value.astype(np.int64))
    return value


def _flat(parts: Sequence[Any]) -> Tuple[Any, ...]:
    """One example: each field's output (a tensor, or a tuple of them) flattened into one tuple."""
    return tuple(chain.from_iterable(p if isinstance(p, tuple) else (p,) for p in parts))


class DataView:
    """A lazy view of one split (train, val or test) of a :class:`TabularDataset`.

    Item ``i`` is the tuple of the fields' outputs for row ``i`` (fields in transform order, a field
    returning a tuple contributes each of its tensors); without fields it is the raw row, numeric cells
    as tensors. With ``cache``, the whole split is processed once, column by column, on first access.

    Parameters
    ----------
    data : np.ndarray
        The rows, a 2-D object array.
    transform_hooks : List[Tuple[Field, Union[int, List[int]]]]
        Each field and the column(s) it processes.
    cache : bool
        Keep the processed examples.
    """

    def __init__(self, data: np.ndarray, transform_hooks: Sequence[Tuple[Field, Any]], cache: bool) -> None:
        self.data = data
        self.transform_hooks: List[Hook] = [
            (field, [cols] if isinstance(cols, (int, np.integer)) else list(cols)) for field, cols in transform_hooks]
        self.cache = cache
        self._cached: Optional[List[Tuple[Any, ...]]] = None

    @property
    def raw(self) -> np.ndarray:
        """The unprocessed rows (a 2-D object array)."""
        return self.data

    def cols(self) -> int:
        """The number of columns of the raw data."""
        return self.data.shape[1]

    def is_empty(self) -> bool:
        """Whether the split has no examples."""
        return len(self.data) == 0

    def __len__(self) -> int:
        return len(self.data)

    def clear_cache(self) -> None:
        """Forget the processed examples (they are recomputed on the next access)."""
        self._cached = None

    def _process_row(self, row: np.ndarray) -> Tuple[Any, ...]:
        if not self.transform_hooks:
            return tuple(to_tensor(v) for v in row)
        return _flat([field.process(*(row[c] for c in cols)) for field, cols in self.transform_hooks])

    def _process_all(self) -> List[Tuple[Any, ...]]:
        data = self.data
        if not len(data):
            return []
        if not self.transform_hooks:
            return [tuple(to_tensor(v) for v in row) for row in data.tolist()]
        outputs = []
        for field, cols in self.transform_hooks:
            columns = [data[:, c].tolist() for c in cols]
            process = field.process
            outputs.append([process(v) for v in columns[0]] if len(columns) == 1
                           else [process(*values) for values in zip(*columns)])
        return [_flat(parts) for parts in zip(*outputs)]

    def _examples(self) -> List[Tuple[Any, ...]]:
        if self._cached is None:
            self._cached = self._process_all()
        return self._cached

    def __getitem__(self, index: Any) -> Any:
        """The processed example at ``index`` (a list of them for a slice)."""
        if self.cache:
            return self._examples()[index]
        if isinstance(index, slice):
            return [self._process_row(self.data[i]) for i in range(*index.indices(len(self.data)))]
        return self._process_row(self.data[index])

    def __iter__(self) -> Iterator[Tuple[Any, ...]]:
        if self.cache:
            return iter(self._examples())
        return (self._process_row(row) for row in self.data)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Raise: a view is immutable."""
        raise TypeError("DataView is immutable: items cannot be assigned")

    def __delitem__(self, key: Any) -> None:
        """Raise: a view is immutable."""
        raise TypeError("DataView is immutable: items cannot be deleted")

    def __repr__(self) -> str:
        return f"DataView({len(self)} examples, {self.cols()} columns, {len(self.transform_hooks)} fields)"
