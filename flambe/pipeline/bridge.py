"""Bridges from pipes and Messages to the Trainer: :class:`PipeDataset` and :class:`PipeSampler`.

A split of a :class:`PipeDataset` (a :class:`PipeSplit`) wraps a Message or an indexable pipe and looks like a
sequence of examples, each a tuple of tensors in ``columns`` order, so :class:`~flambe.sampler.BaseSampler`
works on it unchanged (and fetches each batch with one row selection through ``__getitems__``).
:class:`PipeSampler` skips the per-example tuples altogether: it selects each batch's rows at once and turns each
column into one batch tensor.

How columns become tensors: tensor columns are used as they are; frame columns go through
:func:`~flambe.pipeline.tensor_message.to_tensor` (dtype kept); a frame column of variable-length rows (lists,
arrays or 1-D tensors) is padded with the pad value to the longest row of the batch. For a Message split the
whole split is converted once (ragged columns padded once, with their row lengths kept), and each batch is then
one ``index_select`` per column, trimmed to the longest row of the batch.

A split whose pipe yields batches (a :class:`~flambe.pipeline.batching.BatchingPipe`, possibly shuffled or
repeated downstream) is *batched*: its examples are whole batches, and PipeSampler yields them as they are, one
per item, in a seeded order of items when shuffling (its own ``batch_size`` and ``drop_last`` do not apply).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import count
from typing import Any

import numpy as np
import pandas as pd
import torch

from flambe.dataset.dataset import Dataset
from flambe.pipeline.batching import BatchingPipe
from flambe.pipeline.message import Message
from flambe.pipeline.pipe import Pipe
from flambe.pipeline.tensor_message import to_tensor
from flambe.sampler.base import pad_column
from flambe.sampler.sampler import Sampler, batches_per_epoch, epoch_permutation, random_seed, stream_start

__all__ = ["PipeDataset", "PipeSampler", "PipeSplit", "column_to_tensor"]

Batch = tuple[torch.Tensor, ...]
Pad = int | float | Sequence[int | float]


# ---------------------------------------------------------------------------------------------- helpers
def column_to_tensor(name: str, values: Any, pad: int | float = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One column (a Tensor or a pandas Series) as one batch-first tensor.

    Returns
    -------
    (tensor, lengths)
        ``lengths`` (a LongTensor of row lengths) when the rows were 1-D of different lengths and were padded
        with ``pad`` to ``[N x longest]``; None otherwise. N-D rows of different shapes are padded along every
        dimension (lengths None).

    Raises
    ------
    TypeError
        The column holds strings or objects that have no tensor form (the message names the column).
    """
    if isinstance(values, torch.Tensor):
        return values, None
    try:
        return to_tensor(name, values), None
    except ValueError:
        if isinstance(values, pd.Series) and values.dtype != object:
            raise
    rows = [v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v)) for v in values]
    padded = pad_column(rows, pad)
    if all(r.dim() == 1 for r in rows):
        return padded, torch.tensor([r.shape[0] for r in rows], dtype=torch.long)
    return padded, None


def _pads(pad: Pad, n: int) -> tuple[int | float, ...]:
    if isinstance(pad, (int, float)):
        return (pad,) * n
    pad = tuple(pad)
    if len(pad) != n:
        raise ValueError(f"pad_index has {len(pad)} values but there are {n} columns")
    return pad


def _is_batched(source: Any) -> bool:
    """Whether the items of ``source`` are batches (a BatchingPipe is in its chain)."""
    return isinstance(source, Pipe) and any(isinstance(node, BatchingPipe) for node in source.chain())


def _check_source(source: Any, name: str) -> Any:
    if source is None or isinstance(source, Message):
        return source
    if isinstance(source, (list, tuple)):
        if not all(isinstance(m, Message) for m in source):
            raise TypeError(f"split {name!r}: a list split must hold Messages (for lists of examples use "
                            f"TabularDataset and BaseSampler)")
        return Pipe(list(source))
    if not (hasattr(source, "__getitem__") and hasattr(source, "__len__")) or not getattr(source, "indexable", True):
        raise TypeError(f"split {name!r} must be a Message or an indexable pipe, got {source!r} (wrap a stream in a "
                        f"LoopingPipe, or cache it)")
    return source


# ---------------------------------------------------------------------------------------------- PipeSplit
class PipeSplit:
    """A Message or an indexable pipe seen as a sequence of examples (tuples of tensors in ``columns`` order).

    Parameters
    ----------
    source : Message, indexable Pipe, Model with an indexable input, list of Messages, or None (empty)
    columns : list of str, optional
        The columns of each example, in order (default: all columns of the source, in its order).
    pad_index : int, float or one per column
        The padding value of variable-length columns (default 0).
    name : str
        For error messages.
    """

    def __init__(self, source: Any, columns: Sequence[str] | None = None, pad_index: Pad = 0,
                 name: str = "split") -> None:
        self.name = name
        self.source = _check_source(source, name)
        self._columns = list(columns) if columns is not None else None
        self.pad_index = pad_index if isinstance(pad_index, (int, float)) else tuple(pad_index)
        self._table: tuple[tuple, list[tuple[torch.Tensor, torch.Tensor | None]]] | None = None
        self._views: dict[tuple[str, ...], PipeSplit] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_table": None, "_views": {}}

    @property
    def batched(self) -> bool:
        """Whether each item of the source is a whole batch (see the module notes)."""
        return _is_batched(self.source)

    @property
    def columns(self) -> list[str]:
        """The example columns, in order."""
        if self._columns is None:
            if self.source is None:
                return []
            if isinstance(self.source, Message):
                self._columns = self.source.columns
            elif len(self.source) == 0:
                return []
            else:
                self._columns = list(self._select(0).columns)
        return list(self._columns)

    def with_columns(self, columns: Sequence[str]) -> PipeSplit:
        """The same source with other example columns (made once per column list, so its tensors are kept)."""
        key = tuple(columns)
        if list(key) == self._columns:
            return self
        if key not in self._views:
            self._views[key] = PipeSplit(self.source, key, self.pad_index, self.name)
        return self._views[key]

    def __len__(self) -> int:
        return 0 if self.source is None else len(self.source)

    def __repr__(self) -> str:
        return f"PipeSplit({self.name!r}, {len(self)} {'batches' if self.batched else 'rows'}, columns={self.columns})"

    # ------------------------------------------------------------------ reading
    def _select(self, index: Any) -> Message:
        if self.source is None:
            raise IndexError(f"split {self.name!r} is empty")
        rows = self.source[index]
        if not isinstance(rows, Message):
            raise TypeError(f"split {self.name!r}: its source returned {type(rows).__name__}, not a Message")
        return rows

    def _pads(self, pad: Pad | None) -> tuple[int | float, ...]:
        return _pads(self.pad_index if pad is None else pad, len(self.columns))

    def _message_table(self, pads: tuple) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Every column of a Message source as one tensor (+ lengths), converted once per pad values."""
        if self._table is None or self._table[0] != pads:
            src = self.source
            self._table = (pads, [column_to_tensor(c, src[c], p) for c, p in zip(self.columns, pads)])
        return self._table[1]

    def _columns_of(self, message: Message, pads: tuple) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        missing = [c for c in self.columns if c not in message]
        if missing:
            raise KeyError(f"split {self.name!r} has no columns {missing}; it has {message.columns}")
        return [column_to_tensor(c, message[c], p) for c, p in zip(self.columns, pads)]

    def batch(self, indices: Any, pad: Pad | None = None) -> Batch:
        """The examples at ``indices`` as one batch: a batch-first tensor per column (one row selection).

        Parameters
        ----------
        indices : LongTensor, ndarray or list of int
        pad : padding value(s), optional
            Default: the split's ``pad_index``.
        """
        pads = self._pads(pad)
        if isinstance(self.source, Message):
            idx = torch.as_tensor(indices, dtype=torch.long)
            out = []
            for t, lengths in self._message_table(pads):
                sel = t.index_select(0, idx.to(t.device))
                if lengths is not None and len(idx):
                    sel = sel[:, :int(lengths[idx].max())]
                out.append(sel)
            return tuple(out)
        message = self._select(np.asarray(torch.as_tensor(indices, dtype=torch.long)))
        return tuple(t for t, _ in self._columns_of(message, pads))

    def item(self, i: int) -> Batch:
        """Item ``i`` of a batched split: the whole batch, a tensor per column."""
        return tuple(t for t, _ in self._columns_of(self._select(int(i)), self._pads(None)))

    def _check_int(self, i: Any) -> int:
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"example {i} is out of range for split {self.name!r} of {n} examples")
        return j

    def __getitem__(self, i: Any) -> Batch | list[Batch]:
        """Example ``i`` (a tuple of tensors; unpadded rows), or a list of examples for a slice."""
        if isinstance(i, slice):
            return self.__getitems__(list(range(*i.indices(len(self)))))
        j = self._check_int(i)
        if self.batched:
            return self.item(j)
        if isinstance(self.source, Message):
            return tuple(t[j] if lengths is None else t[j, :int(lengths[j])]
                         for t, lengths in self._message_table(self._pads(None)))
        return self.__getitems__([j])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Batch]:
        """The examples at ``indices`` from one row selection (what BaseSampler fetches a batch with)."""
        if self.batched:
            return [self.item(self._check_int(i)) for i in indices]
        n = len(self)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        if len(idx) and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"an index is out of range for split {self.name!r} of {n} examples")
        idx = torch.where(idx < 0, idx + n, idx)
        pads = self._pads(None)
        if isinstance(self.source, Message):
            parts = [(t.index_select(0, idx.to(t.device)), None if lengths is None else lengths[idx])
                     for t, lengths in self._message_table(pads)]
        else:
            parts = self._columns_of(self._select(idx.numpy()), pads)
        columns = [t.unbind(0) if lengths is None else
                   [row[:length] for row, length in zip(t.unbind(0), lengths.tolist())]
                   for t, lengths in parts]
        return list(zip(*columns))

    def __iter__(self) -> Iterator[Batch]:
        step = 1 if self.batched else 1024
        for start in range(0, len(self), step):
            yield from self.__getitems__(range(start, min(start + step, len(self))))


# ---------------------------------------------------------------------------------------------- PipeDataset
class PipeDataset(Dataset):
    """A Dataset whose splits are Messages or indexable pipes (see :class:`PipeSplit`).

    Parameters
    ----------
    train : Message, indexable Pipe or list of Messages
    val, test : same, optional
        A missing split is empty.
    columns : list of str, optional
        The columns of each example, in order (default: all columns of each split). Give them so the target
        comes last, as ``model(*batch)`` expects.
    pad_index : int, float or one per column
        Padding value of variable-length columns (default 0).
    """

    def __init__(self, train: Any, val: Any = None, test: Any = None, columns: Sequence[str] | None = None,
                 pad_index: Pad = 0) -> None:
        self.columns = list(columns) if columns is not None else None
        self.train_data, self.val_data, self.test_data = train, val, test
        self._splits = {name: PipeSplit(data, self.columns, pad_index, name)
                        for name, data in (("train", train), ("val", val), ("test", test))}

    @property
    def train(self) -> PipeSplit:
        """The training examples."""
        return self._splits["train"]

    @property
    def val(self) -> PipeSplit:
        """The validation examples (empty when not given)."""
        return self._splits["val"]

    @property
    def test(self) -> PipeSplit:
        """The test examples (empty when not given)."""
        return self._splits["test"]


# ---------------------------------------------------------------------------------------------- PipeSampler
class PipeSampler(Sampler):
    """Column-wise batches of a Message or an indexable pipe: one row selection per batch, no per-row Python.

    It follows :class:`~flambe.sampler.BaseSampler`'s contract: the order of epoch ``e`` is a pure function of
    ``(base_seed, e)`` (the same permutation BaseSampler draws, so both yield the same batches with the same
    seed), and :meth:`sample` places the stream with ``start_epoch`` / ``skip_batches``.

    Parameters
    ----------
    batch_size : int
        Rows per batch (default 64).
    columns : list of str, optional
        Columns of each batch, in order (default: the split's columns).
    shuffle : bool
        A new seeded order every epoch (default True); False keeps the data order.
    seed : int, optional
        Seed of the shuffling (default: drawn once at construction from torch's global generator; saved).
    drop_last : bool
        Drop the last, smaller batch of each epoch.
    pad_index : int, float or one per column, optional
        Padding value of variable-length columns (default: the split's, 0 for a bare Message or pipe).
    """

    def __init__(self, batch_size: int = 64, columns: Sequence[str] | None = None, shuffle: bool = True,
                 seed: int | None = None, drop_last: bool = False, pad_index: Pad | None = None) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.batch_size = int(batch_size)
        self.columns = list(columns) if columns is not None else None
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.pad_index = pad_index if pad_index is None or isinstance(pad_index, (int, float)) else tuple(pad_index)
        self.base_seed = int(seed) if seed is not None else random_seed()
        self.register_attrs("base_seed")

    def _split(self, data: Any) -> PipeSplit:
        if isinstance(data, PipeSplit):
            return data.with_columns(self.columns) if self.columns is not None else data
        if isinstance(data, (Message, Pipe, list, tuple)) or getattr(data, "indexable", False):
            return PipeSplit(data, self.columns, 0)
        raise TypeError(f"PipeSampler samples a PipeDataset split, a Message or an indexable pipe, got "
                        f"{type(data).__name__} (use BaseSampler for sequences of examples)")

    def _n_batches(self, split: PipeSplit) -> int:
        return len(split) if split.batched else batches_per_epoch(len(split), self.batch_size, self.drop_last)

    def length(self, data: Any) -> int:
        """Batches per epoch over ``data``."""
        return self._n_batches(self._split(data))

    def epoch_order(self, data: Any, epoch: int) -> torch.Tensor:
        """The row (or, for a batched split, item) order of ``epoch``, before ``drop_last``."""
        return self._order(len(self._split(data)), epoch)

    def _order(self, n: int, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(n)
        return epoch_permutation(n, self.base_seed, epoch)

    def sample(self, data: Any, n_epochs: int = 1, start_epoch: int = 0, skip_batches: int = 0) -> Iterator[Batch]:
        """Yield batches: one batch-first tensor per column (see :meth:`BaseSampler.sample` for the arguments).

        Raises
        ------
        ValueError
            On bad arguments, or for ``n_epochs=-1`` when an epoch would have no batch.
        """
        split = self._split(data)
        n_batches = self._n_batches(split)
        start = stream_start(n_batches, n_epochs, start_epoch, skip_batches,
                             f"{len(split)} rows make no batch of {self.batch_size}"
                             f"{' (drop_last)' if self.drop_last else ''}")
        if start is None:
            return iter(())
        epoch, first, end = start
        return self._stream(split, n_batches, epoch, first, end)

    def _stream(self, split: PipeSplit, n_batches: int, epoch: int, first: int, end: int | None) -> Iterator[Batch]:
        bs, n, pad = self.batch_size, len(split), self.pad_index
        for e in count(epoch):
            if end is not None and e >= end:
                return
            order = self._order(n, e)
            for b in range(first, n_batches):
                if split.batched:
                    yield split.item(int(order[b]))
                else:
                    yield split.batch(order[b * bs:(b + 1) * bs], pad)
            first = 0
