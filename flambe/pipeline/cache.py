"""MessageCache: rows of a larger dataset held in memory, addressed by their row index in that dataset.

A cache stores rows in preallocated per-column buffers (one tensor per tensor column, one numpy array per
frame column) indexed by *slot*, plus two integer maps: the dataset row held by each slot, and the slot of each
dataset row (a dense array up to the highest row seen: 4 bytes per dataset row). Inserting ``k`` rows writes
``k`` slots, deleting frees slots, reading is one ``index_select`` / ``take`` per column: nothing ever copies
the whole content, except the buffers' geometric growth up to the bound. The eviction policies
(:class:`LRUCache`, :class:`LFUCache`, :class:`RRCache`, first-in-first-out in the base) rank slots with
per-slot counters and pick their victims column-wise (``argpartition`` / ``lexsort`` / seeded choice).

A cache is bounded by rows (``max_rows``), by bytes (``max_bytes``: rows of the first message inserted
fix the bytes per row, so the byte bound becomes a row bound), by both, or not at all (:class:`UnlimitedCache`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from flambe.pipeline.message import Message
from flambe.pipeline.pipe import as_index_array

__all__ = ["MessageCache", "UnlimitedCache", "LRUCache", "LFUCache", "RRCache"]

_MIN_ALLOC = 1024


class MessageCache:
    """Rows of a larger dataset kept in memory, by row index; evicts first-in-first-out when full.

    Parameters
    ----------
    max_rows : int, optional
        At most this many rows (None: no row bound).
    max_bytes : int, optional
        At most this many bytes of row data (None: no byte bound). Bytes per row are those of tensor
        elements and numpy items; object columns (strings, arrays) count 8 bytes plus an estimate of the
        object size taken from the first insert.
    buffer_size : int
        When an insert needs room, evict down to ``capacity - buffer_size`` rows (or fewer if the insert needs
        it), so the next inserts find room without evicting again.
    length : int, optional
        The row count of the dataset the rows come from: slices are clipped to it, negative indices and open
        slices count from it (default: a slice with non-negative bounds is taken as written, negative indices
        count from one past the highest row cached), and buffers are sized for it.

    Notes
    -----
    Indices are dataset rows: an int, a slice (negative and open ends resolved against ``length``), a list /
    array / LongTensor, or a bool mask over ``length`` rows. ``cache[i]`` returns a 1-row Message, like a
    Message does. Reading rows that are not cached raises :class:`KeyError`. Inserting rows already cached
    overwrites them; repeated indices in one insert keep the last row given.
    """

    def __init__(self, max_rows: int | None = None, max_bytes: int | None = None, buffer_size: int = 0,
                 length: int | None = None) -> None:
        for name, value in (("max_rows", max_rows), ("max_bytes", max_bytes), ("length", length)):
            if value is not None and int(value) < 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        if int(buffer_size) < 0:
            raise ValueError(f"buffer_size must be non-negative, got {buffer_size}")
        self.max_rows = None if max_rows is None else int(max_rows)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.buffer_size = int(buffer_size)
        self.length = None if length is None else int(length)
        self.clear()

    # ------------------------------------------------------------------------------------------ storage
    def clear(self) -> None:
        """Drop every row and the column layout (the next insert may bring other columns)."""
        self._order: list[str] = []
        self._tensors: dict[str, torch.Tensor] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._dtypes: dict[str, Any] = {}
        self._row_bytes = 0
        self._slot_index = np.zeros(0, dtype=np.int64)  # dataset row held by each slot, -1 when free
        self._slot_of = np.zeros(0, dtype=np.int32)  # slot of each dataset row, -1 when absent
        self._born = np.zeros(0, dtype=np.int64)  # tick of insertion
        self._used = np.zeros(0, dtype=np.int64)  # tick of the last access
        self._hits = np.zeros(0, dtype=np.int64)  # number of accesses
        self._count = 0
        self._clock = 0

    @property
    def capacity(self) -> int | None:
        """The most rows the cache holds (None: unbounded, or bytes-bounded with no row inserted yet)."""
        bounds = [] if self.max_rows is None else [self.max_rows]
        if self.max_bytes is not None and self._order:
            bounds.append(self.max_bytes // max(self._row_bytes, 1))
        return min(bounds) if bounds else None

    def _layout(self, message: Message) -> None:
        """Fix the columns from the first message, or check that ``message`` has the same ones."""
        if not self._order:
            self._order = list(message.columns)
            for name in message.tensor_columns:
                t = message[name]
                self._tensors[name] = t.new_empty((0,) + tuple(t.shape[1:]))
                self._row_bytes += t.element_size() * int(np.prod(t.shape[1:], dtype=np.int64))
            for name in message.frame_columns:
                s = message[name]
                numeric = isinstance(s.dtype, np.dtype) and s.dtype != object
                self._dtypes[name] = s.dtype
                self._arrays[name] = np.empty(0, dtype=s.dtype if numeric else object)
                if numeric:
                    self._row_bytes += s.dtype.itemsize
                else:
                    sample = s.iloc[:64].tolist()
                    self._row_bytes += 8 + (sum(map(sys.getsizeof, sample)) // len(sample) if sample else 0)
            return
        if set(message.columns) != set(self._order) or set(message.tensor_columns) != set(self._tensors):
            raise ValueError(f"the cache holds columns {self._order} (tensors {list(self._tensors)}), the "
                             f"message has {message.columns} (tensors {message.tensor_columns})")
        for name, buf in self._tensors.items():
            t = message[name]
            if t.shape[1:] != buf.shape[1:] or t.dtype != buf.dtype:
                raise ValueError(f"column {name!r}: the cache holds {buf.dtype} rows of shape {tuple(buf.shape[1:])}"
                                 f", the message has {t.dtype} rows of shape {tuple(t.shape[1:])}")

    def _reserve(self, rows: int) -> None:
        """Make room for ``rows`` slots: bounded caches size their buffers for their bound at once (or the
        dataset length, if smaller); unbounded ones grow geometrically."""
        alloc = len(self._slot_index)
        if rows <= alloc:
            return
        cap = self.capacity
        if cap is not None:
            target = min(cap, self.length) if self.length is not None else min(cap, max(2 * alloc, _MIN_ALLOC))
        else:
            target = max(2 * alloc, _MIN_ALLOC)
            if self.length is not None:
                target = min(target, self.length)
        target = max(target, rows)
        for name, buf in self._tensors.items():
            new = buf.new_empty((target,) + tuple(buf.shape[1:]))
            new[:alloc] = buf
            self._tensors[name] = new
        for name, arr in self._arrays.items():
            new_arr = np.empty(target, dtype=arr.dtype)
            new_arr[:alloc] = arr
            self._arrays[name] = new_arr
        pad = target - alloc
        self._slot_index = np.concatenate([self._slot_index, np.full(pad, -1, dtype=np.int64)])
        self._born, self._used, self._hits = (np.concatenate([a, np.zeros(pad, dtype=np.int64)])
                                              for a in (self._born, self._used, self._hits))

    def _map_to(self, top: int) -> None:
        """Grow the row -> slot map to cover rows ``< top``."""
        size = len(self._slot_of)
        if top > size:
            target = max(top, 2 * size, self.length or 0)
            self._slot_of = np.concatenate([self._slot_of, np.full(target - size, -1, dtype=np.int32)])

    # ------------------------------------------------------------------------------------------ indices
    def _span(self) -> int:
        if self.length is not None:
            return self.length
        held = self._slot_index[self._slot_index >= 0]
        return int(held.max()) + 1 if len(held) else 0

    def rows_of(self, index: Any) -> tuple[np.ndarray, bool]:
        """``index`` as an int64 array of non-negative dataset rows, and whether it was a single int."""
        index = as_index_array(index)
        if isinstance(index, (bool, np.bool_)):
            raise TypeError("a single bool is not a row index")
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if i < 0:
                i += self._span()
                if i < 0:
                    raise IndexError(f"row {int(index)} is out of range for {self._span()} rows")
            return np.array([i], dtype=np.int64), True
        if isinstance(index, slice):
            start, stop, step = index.start, index.stop, index.step
            literal = stop is not None and stop >= 0 and (start is None or start >= 0) and (step is None or step > 0)
            if literal and self.length is None:
                return np.arange(start or 0, stop, step or 1, dtype=np.int64), False
            return np.arange(*index.indices(self._span()), dtype=np.int64), False
        arr = np.asarray(index)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64), False
        if arr.dtype == bool:
            if arr.ndim != 1 or (self.length is not None and len(arr) != self.length):
                raise IndexError(f"a mask must have one bool per row of the dataset, got shape {arr.shape}")
            return np.flatnonzero(arr).astype(np.int64), False
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise TypeError(f"cannot index a cache with {type(index).__name__} of dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if (arr < 0).any():
            arr = np.where(arr < 0, arr + self._span(), arr)
            if (arr < 0).any():
                raise IndexError(f"row {int(np.asarray(index)[arr < 0][0])} is out of range for {self._span()} rows")
        return arr, False

    def _slots(self, rows: np.ndarray) -> np.ndarray:
        """The slot of each row (-1 where absent)."""
        out = np.full(len(rows), -1, dtype=np.int64)
        inside = rows < len(self._slot_of)
        out[inside] = self._slot_of[rows[inside]]
        return out

    def contains(self, index: Any) -> np.ndarray:
        """A bool array: whether each row of ``index`` is cached."""
        return self._slots(self.rows_of(index)[0]) >= 0

    def __contains__(self, index: Any) -> bool:
        """Whether the row (or every row of a slice / list) is cached."""
        try:
            return bool(self.contains(index).all())
        except (IndexError, TypeError):
            return False

    def __len__(self) -> int:
        return self._count

    @property
    def size(self) -> int:
        """The number of rows cached (same as ``len``)."""
        return self._count

    @property
    def cache_index(self) -> np.ndarray:
        """The cached dataset rows, sorted."""
        return np.sort(self._slot_index[self._slot_index >= 0])

    @property
    def nbytes(self) -> int:
        """Bytes of the cached rows (see ``max_bytes`` for how rows are counted)."""
        return self._count * self._row_bytes

    @property
    def allocated_bytes(self) -> int:
        """Bytes of the row buffers as allocated (at most the bound, for a bounded cache)."""
        return len(self._slot_index) * self._row_bytes

    # ------------------------------------------------------------------------------------------ access
    def _tick(self, n: int) -> np.ndarray:
        ticks = np.arange(self._clock + 1, self._clock + n + 1, dtype=np.int64)
        self._clock += n
        return ticks

    def _take(self, slots: np.ndarray) -> Message:
        index = torch.from_numpy(slots)
        data: dict[str, Any] = {}
        for name in self._order:
            if name in self._tensors:
                buf = self._tensors[name]
                data[name] = buf.index_select(0, index.to(buf.device))
            else:
                values = self._arrays[name][slots]
                dtype = self._dtypes[name]
                data[name] = values if values.dtype == dtype else pd.Series(values, dtype=dtype)
        return Message(data, length=len(slots))

    def __getitem__(self, index: Any) -> Message:
        """The Message of the cached rows ``index``, in that order (KeyError if any is not cached)."""
        rows, _ = self.rows_of(index)
        slots = self._slots(rows)
        if (slots < 0).any():
            missing = rows[slots < 0]
            raise KeyError(f"{len(missing)} rows are not cached, e.g. {missing[:8].tolist()}")
        self._used[slots] = self._tick(len(slots))
        np.add.at(self._hits, slots, 1)
        return self._take(slots)

    def __setitem__(self, index: Any, message: Message | Mapping[str, Any]) -> None:
        self.insert(index, message)

    def __delitem__(self, index: Any) -> None:
        self.delete(index)

    def insert(self, index: Any, message: Message | Mapping[str, Any]) -> None:
        """Cache the rows of ``message`` as rows ``index`` of the dataset, evicting others if full.

        Rows already cached are overwritten (and count as accessed). If there are more new rows than the
        bound allows, the first ones of ``index`` are kept. ``message`` must have one row per index.
        """
        message = message if isinstance(message, Message) else Message(message)
        rows, _ = self.rows_of(index)
        if len(rows) != len(message):
            raise ValueError(f"{len(rows)} indices for a message of {len(message)} rows")
        if not len(rows):
            return
        self._layout(message)
        uniq, first = np.unique(rows[::-1], return_index=True)
        if len(uniq) < len(rows):  # repeated indices: keep the last row given for each
            keep = np.sort(len(rows) - 1 - first)
            rows, message = rows[keep], message[keep]
        slots = self._slots(rows)
        old = slots >= 0
        if old.any():
            self._write(slots[old], message if old.all() else message[np.flatnonzero(old)])
            self._used[slots[old]] = self._tick(int(old.sum()))
            np.add.at(self._hits, slots[old], 1)
            if old.all():
                return
        new = np.flatnonzero(~old)
        cap = self.capacity
        if cap is not None:
            room = cap - int(old.sum())
            if len(new) > room:
                new = new[:max(room, 0)]
            if not len(new):
                return
            if self._count + len(new) > cap:  # evict down to ``cap - buffer_size`` rows, or less if need be
                candidates = np.setdiff1d(np.flatnonzero(self._slot_index >= 0), slots[old], assume_unique=True)
                keep = max(min(cap - len(new), cap - self.buffer_size), int(old.sum()))
                self._evict(self._victims(min(len(candidates), self._count - keep), candidates))
        self._reserve(self._count + len(new))
        free = np.flatnonzero(self._slot_index < 0)[:len(new)]
        self._write(free, message if len(new) == len(rows) else message[new])
        self._map_to(int(rows[new].max()) + 1)
        self._slot_index[free] = rows[new]
        self._slot_of[rows[new]] = free
        ticks = self._tick(len(free))
        self._born[free], self._used[free], self._hits[free] = ticks, ticks, 1
        self._count += len(free)

    def _write(self, slots: np.ndarray, message: Message) -> None:
        index = torch.from_numpy(slots)
        for name, buf in self._tensors.items():
            buf.index_copy_(0, index.to(buf.device), message[name].to(buf.device))
        for name, arr in self._arrays.items():
            arr[slots] = message[name].to_numpy()

    def delete(self, index: Any) -> None:
        """Drop the rows ``index``: an int or a list must all be cached (KeyError); a slice drops those cached."""
        rows, _ = self.rows_of(index)
        slots = self._slots(rows)
        if not isinstance(as_index_array(index), slice) and (slots < 0).any():
            raise KeyError(f"rows {rows[slots < 0][:8].tolist()} are not cached")
        self._evict(np.unique(slots[slots >= 0]))

    def _evict(self, slots: np.ndarray) -> None:
        if not len(slots):
            return
        self._slot_of[self._slot_index[slots]] = -1
        self._slot_index[slots] = -1
        for arr in self._arrays.values():
            if arr.dtype == object:
                arr[slots] = None
        self._count -= len(slots)

    # ------------------------------------------------------------------------------------------ policy
    def _victims(self, k: int, candidates: np.ndarray) -> np.ndarray:
        """The ``k`` slots of ``candidates`` to evict first (here: the earliest inserted)."""
        return _smallest(self._born[candidates], candidates, k)

    def free(self, n: int) -> np.ndarray:
        """Evict ``n`` rows (or all) in this cache's eviction order; returns the dataset rows evicted."""
        candidates = np.flatnonzero(self._slot_index >= 0)
        victims = self._victims(min(int(n), len(candidates)), candidates)
        rows = self._slot_index[victims].copy()
        self._evict(victims)
        return rows

    # ------------------------------------------------------------------------------------------ extras
    def sort(self) -> None:
        """Rearrange the slots so the cached rows sit in increasing row order from slot 0 (compaction)."""
        held = np.flatnonzero(self._slot_index >= 0)
        order = held[np.argsort(self._slot_index[held], kind="stable")]
        n = len(order)
        index = torch.from_numpy(order)
        for buf in self._tensors.values():
            buf[:n] = buf.index_select(0, index.to(buf.device))
        for arr in self._arrays.values():
            arr[:n] = arr[order]
            if arr.dtype == object:
                arr[n:] = None
        for attr in ("_born", "_used", "_hits"):
            values = getattr(self, attr)
            values[:n] = values[order]
        rows = self._slot_index[order]
        self._slot_index[:] = -1
        self._slot_index[:n] = rows
        self._slot_of[rows] = np.arange(n, dtype=np.int32)

    def search(self, **conditions: Any) -> np.ndarray:
        """The cached rows (sorted) whose columns equal the given values, e.g. ``cache.search(label=3)``.

        A tensor row matches when all its elements equal the value (a scalar or a tensor of the row shape).
        """
        unknown = [k for k in conditions if k not in self._order]
        if unknown:
            raise KeyError(f"no columns {unknown}; columns are {self._order}")
        held = np.flatnonzero(self._slot_index >= 0)
        match = np.ones(len(held), dtype=bool)
        for name, value in conditions.items():
            if name in self._tensors:
                col = self._tensors[name][torch.from_numpy(held)]
                eq = (col == torch.as_tensor(value, device=col.device)).reshape(len(held), -1).all(1)
                match &= eq.cpu().numpy()
            else:
                match &= np.asarray(self._arrays[name][held] == value, dtype=bool)
        return np.sort(self._slot_index[held[match]])

    def __repr__(self) -> str:
        bound = [f"max_rows={self.max_rows}"] if self.max_rows is not None else []
        bound += [f"max_bytes={self.max_bytes}"] if self.max_bytes is not None else []
        return f"{type(self).__name__}({', '.join(bound) or 'unbounded'}; {self._count} rows, {self.nbytes} bytes)"


def _smallest(keys: np.ndarray, slots: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` entries of ``slots`` with the smallest ``keys`` (ordered by key)."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(keys):
        part = np.argpartition(keys, k - 1)[:k]
        return slots[part[np.argsort(keys[part], kind="stable")]]
    return slots[np.argsort(keys, kind="stable")]


class UnlimitedCache(MessageCache):
    """A cache with no bound: rows are only dropped by ``del``, :meth:`free` (oldest first) or :meth:`clear`."""

    def __init__(self, length: int | None = None) -> None:
        super().__init__(length=length)


class LRUCache(MessageCache):
    """Evicts the Least Recently Used rows first; reading or writing a row counts as using it.

    Parameters are those of :class:`MessageCache`.
    """

    def _victims(self, k: int, candidates: np.ndarray) -> np.ndarray:
        return _smallest(self._used[candidates], candidates, k)


class LFUCache(MessageCache):
    """Evicts the Least Frequently Used rows first (reads and writes count); ties go least recently used first.

    Parameters are those of :class:`MessageCache`.
    """

    def _victims(self, k: int, candidates: np.ndarray) -> np.ndarray:
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        order = np.lexsort((self._used[candidates], self._hits[candidates]))
        return candidates[order[:k]]


class RRCache(MessageCache):
    """Evicts Random rows (Random Replacement), drawn from a seeded generator.

    Parameters
    ----------
    max_rows, max_bytes, buffer_size, length
        As for :class:`MessageCache`.
    seed : int, optional
        Seed of the generator (None: fresh entropy).
    """

    def __init__(self, max_rows: int | None = None, max_bytes: int | None = None, buffer_size: int = 0,
                 length: int | None = None, seed: int | None = None) -> None:
        super().__init__(max_rows, max_bytes, buffer_size, length)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def _victims(self, k: int, candidates: np.ndarray) -> np.ndarray:
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        return self._rng.choice(candidates, size=k, replace=False)
