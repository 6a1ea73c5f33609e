"""CachingPipe: an indexable pipe that keeps the rows it has served in a :class:`MessageCache`.

Put it after an indexable source (a Message, a list of Messages, or a stream made indexable by a
:class:`~flambe.pipeline.pipes.LoopingPipe`) and before a shuffler or sampler. A request ``pipe[index]`` is
served from the cache for the rows it holds; the absent rows are fetched from the input in as few requests as
possible, inserted (evicting per the cache's policy) and merged back in the requested order.

Prefetch is explicit and eager (no background thread): a downstream pipe that knows which rows it will ask
for next (anything with ``upcoming_indices(n)``, like :class:`~flambe.pipeline.pipes.ShufflerPipe`) is
registered with :meth:`CachingPipe.register_consumer`; then, when a request misses or the consumer's very next
row is absent, the absent rows among its next ``prefetch`` rows are fetched in the same call, sorted, so a
block-aware shuffle loads several blocks per pass over a sequential source and never misses afterwards. When
the input reports its block offsets, the prefetched rows are rounded up to whole source blocks (if they fit in
the cache): a source reads whole blocks anyway, and a half-prefetched block would be read a second time.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from flambe.pipeline.cache import LFUCache, LRUCache, MessageCache, RRCache, UnlimitedCache
from flambe.pipeline.message import Message, cat
from flambe.pipeline.pipe import DEFAULT_CHUNK, Pipe, as_index_array, normalize_index

__all__ = ["CachingPipe", "CACHE_TYPES"]

#: the cache classes ``cache_type`` can name
CACHE_TYPES: dict[str, type[MessageCache]] = {"LRU": LRUCache, "LFU": LFUCache, "RR": RRCache,
                                              "FIFO": MessageCache, "unlimited": UnlimitedCache}


class CachingPipe(Pipe):
    """Caches the rows requested by index from an indexable input; fetches only the absent ones.

    Parameters
    ----------
    input : Pipe, Message or list of Messages
        An indexable source (wrap a stream in a LoopingPipe).
    cache_size : int, optional
        At most this many rows cached.
    cache_bytes : int, optional
        At most this many bytes of rows cached. With neither bound the cache is unlimited.
    cache_type : str or MessageCache subclass
        ``'LRU'`` (default), ``'LFU'``, ``'RR'`` (random, seeded by ``seed``), ``'FIFO'``, ``'unlimited'``.
    prefetch : int
        Rows to load ahead from a registered consumer's ``upcoming_indices`` (0: no prefetch), eagerly, in the
        call that needs them; rounded up to whole source blocks and capped so that a request plus its prefetch
        fit in the cache.
    infinite : bool
        The input never ends: its length is never computed, so indices must be non-negative and slices
        need a stop; iteration passes the input's blocks through (uncached).
    buffer_size : int
        Extra rows evicted whenever room is needed (see :class:`MessageCache`).
    seed : int
        Seed of the random replacement cache.
    min_run : int
        Absent rows are fetched one slice per contiguous run of at least ``min_run`` rows; the rows of
        shorter runs go together in one list request.

    Notes
    -----
    ``get_state`` holds the hit / miss / request counters and the iteration position, never cached rows;
    pickling drops the cache (it refills on use) and the consumer registration.
    """

    _transient = ("_cache", "_consumer")

    def __init__(self, input: Any, cache_size: int | None = None, cache_bytes: int | None = None,
                 cache_type: str | type[MessageCache] = "LRU", prefetch: int = 0, infinite: bool = False,
                 buffer_size: int = 0, seed: int = 0, min_run: int = 32) -> None:
        super().__init__(input)
        self.check_input()
        if isinstance(cache_type, str) and cache_type not in CACHE_TYPES:
            raise ValueError(f"cache_type must be one of {sorted(CACHE_TYPES)} or a MessageCache subclass, "
                             f"got {cache_type!r}")
        if not isinstance(cache_type, str) and not (isinstance(cache_type, type)
                                                    and issubclass(cache_type, MessageCache)):
            raise TypeError(f"cache_type must be a name or a MessageCache subclass, got {cache_type!r}")
        for name, value in (("cache_size", cache_size), ("cache_bytes", cache_bytes)):
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if int(prefetch) < 0 or int(min_run) < 1:
            raise ValueError(f"prefetch must be >= 0 and min_run >= 1, got {prefetch} and {min_run}")
        self.cache_size = None if cache_size is None else int(cache_size)
        self.cache_bytes = None if cache_bytes is None else int(cache_bytes)
        self.cache_type = cache_type
        self.prefetch = int(prefetch)
        self.infinite = bool(infinite)
        self.buffer_size = int(buffer_size)
        self.seed = int(seed)
        self.min_run = int(min_run)
        self._hits = self._misses = self._requests = self._prefetched = 0
        self._cache: MessageCache | None = None
        self._consumer: weakref.ref | None = None

    # ------------------------------------------------------------------------------------------ setup
    def check_input(self) -> None:
        """Check that the input is indexable (implements ``__getitem__``)."""
        src = self.input
        ok = src.indexable if isinstance(src, Pipe) else isinstance(src, (Message, list, tuple))
        if not ok:
            raise TypeError(f"CachingPipe needs an indexable input, got {type(src).__name__}: "
                            f"wrap a stream in a LoopingPipe")

    def init_cache(self) -> MessageCache:
        """Build an empty cache from the settings (done lazily, and again after unpickling)."""
        kind = CACHE_TYPES[self.cache_type] if isinstance(self.cache_type, str) else self.cache_type
        length = None if self.infinite else len(self)
        if self.cache_size is None and self.cache_bytes is None:
            kind = UnlimitedCache if kind in (LRUCache, LFUCache, RRCache, MessageCache) else kind
        if kind is UnlimitedCache:
            self._cache = UnlimitedCache(length=length)
        elif issubclass(kind, RRCache):
            self._cache = kind(self.cache_size, self.cache_bytes, self.buffer_size, length, seed=self.seed)
        else:
            self._cache = kind(self.cache_size, self.cache_bytes, self.buffer_size, length)
        return self._cache

    @property
    def cache(self) -> MessageCache:
        """The cache (built on first use)."""
        return self._cache if self._cache is not None else self.init_cache()

    def clear_cache(self) -> None:
        """Empty the cache (the counters stay)."""
        self.cache.clear()

    def register_consumer(self, consumer: Any) -> Any:
        """Prefetch for ``consumer``, which must have ``upcoming_indices(n)`` giving rows of this pipe.

        Kept as a weak reference (so it is neither state nor pickled); returns ``consumer``.
        """
        if not callable(getattr(consumer, "upcoming_indices", None)):
            raise TypeError(f"{type(consumer).__name__} has no upcoming_indices(n) to prefetch from")
        self._consumer = weakref.ref(consumer)
        return consumer

    @property
    def consumer(self) -> Any:
        """The registered consumer (None if none, or if it was garbage collected)."""
        return self._consumer() if self._consumer is not None else None

    # ------------------------------------------------------------------------------------------ counters
    @property
    def hits(self) -> int:
        """Requested rows served from the cache."""
        return self._hits

    @property
    def misses(self) -> int:
        """Requested rows fetched from the input."""
        return self._misses

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)`` (0.0 before any request)."""
        total = self._hits + self._misses
        return self._hits / total if total else 0.0

    @property
    def source_requests(self) -> int:
        """Requests made to the input (one per contiguous run, or per group of short runs)."""
        return self._requests

    @property
    def prefetched(self) -> int:
        """Rows loaded ahead for the consumer."""
        return self._prefetched

    # ------------------------------------------------------------------------------------------ indexing
    @property
    def indexable(self) -> bool:
        return True

    def compute_length(self) -> int:
        """The row count of the input (a LoopingPipe reads its stream to the end the first time)."""
        if self.infinite:
            raise TypeError("an infinite CachingPipe has no length")
        return Pipe.__len__(self)

    def __len__(self) -> int:
        return self.compute_length()

    def _rows(self, index: Any) -> int | np.ndarray:
        if not self.infinite:
            return normalize_index(index, len(self))
        index = as_index_array(index)
        if isinstance(index, slice):
            if index.stop is None or index.stop < 0 or (index.start or 0) < 0 or (index.step or 1) < 0:
                raise IndexError("an infinite CachingPipe takes slices with non-negative start and stop only")
            return np.arange(index.start or 0, index.stop, index.step or 1, dtype=np.int64)
        rows = np.asarray(index)
        if isinstance(index, bool) or rows.dtype.kind not in "iu" or (rows < 0).any():
            raise IndexError("an infinite CachingPipe takes non-negative row numbers only")
        return int(rows) if rows.ndim == 0 else rows.astype(np.int64)

    def __getitem__(self, index: Any) -> Message:
        rows = self._rows(index)
        want = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        cache = self.cache
        present = cache.contains(want)
        n_hit = int(present.sum())
        self._hits += n_hit
        self._misses += len(want) - n_hit
        if not len(want):
            return self._fetch(want)
        if n_hit == len(want):
            out = cache[want]
        else:
            hit = cache[want[present]] if n_hit else None
            need = np.unique(want[~present])
            fetched = self._fetch_sorted(need)
            cache.insert(need, fetched)
            missed = want[~present]
            part = fetched if np.array_equal(missed, need) else fetched[np.searchsorted(need, missed)]
            if hit is None:
                out = part
            else:
                order = np.empty(len(want), dtype=np.int64)
                order[present] = np.arange(n_hit)
                order[~present] = np.arange(n_hit, len(want))
                out = cat([hit, part])[order]
        if self.prefetch:
            self._load_ahead(want, n_hit < len(want))
        return out

    def _load_ahead(self, want: np.ndarray, missed: bool) -> None:
        """Fetch the absent rows among the consumer's next ``prefetch`` rows (see the module notes)."""
        consumer = self.consumer
        if consumer is None:
            return
        cache = self.cache
        n = self.prefetch
        cap = cache.capacity
        if cap is not None:
            n = min(n, cap - len(np.unique(want)))
        if n <= 0:
            return
        upcoming = np.asarray(consumer.upcoming_indices(n), dtype=np.int64)
        if not len(upcoming):
            return
        absent = ~cache.contains(upcoming)
        if not (missed or absent[0]):
            return
        ahead = np.setdiff1d(upcoming[absent], want)
        offsets = self.block_offsets() if len(ahead) else None
        if offsets is not None and len(offsets) > 1:  # round up to whole source blocks, if they fit
            blocks = np.unique(np.searchsorted(offsets, ahead, side="right") - 1)
            full = np.concatenate([np.arange(offsets[b], offsets[b + 1], dtype=np.int64) for b in blocks])
            full = np.setdiff1d(full[~cache.contains(full)], want)
            if cap is None or len(full) <= cap - len(np.unique(want)):
                ahead = full
        if len(ahead):
            cache.insert(ahead, self._fetch_sorted(ahead))
            self._prefetched += len(ahead)

    def _fetch(self, index: Any) -> Message:
        self._requests += 1
        return Pipe.__getitem__(self, index)

    def _fetch_sorted(self, rows: np.ndarray) -> Message:
        """The rows (sorted, distinct) from the input: a slice per long contiguous run, one list for the rest."""
        cuts = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(rows)]])
        long = (ends - starts) >= self.min_run
        if long.all() and len(starts) == 1:
            return self._fetch(slice(int(rows[0]), int(rows[-1]) + 1))
        parts: list[Message] = []
        firsts: list[int] = []
        for lo, hi in zip(starts[long], ends[long]):
            parts.append(self._fetch(slice(int(rows[lo]), int(rows[hi - 1]) + 1)))
            firsts.append(int(lo))
        if not long.all():
            short = np.repeat(~long, ends - starts)
            parts.append(self._fetch(rows[short]))
            firsts.append(-1)
        if len(parts) == 1:
            return parts[0]
        # positions in ``rows`` of the concatenated parts, to put them back in sorted order
        pos = [np.arange(f, f + len(p)) if f >= 0 else np.flatnonzero(np.repeat(~long, ends - starts))
               for f, p in zip(firsts, parts)]
        where = np.concatenate(pos)
        out = cat(parts)
        return out if np.all(where[1:] > where[:-1]) else out[np.argsort(where, kind="stable")]

    # ------------------------------------------------------------------------------------------ iteration
    def _stop(self, position: int, total: int) -> int:
        offsets = self.block_offsets()
        if offsets is not None and len(offsets) > 1 and int(offsets[-1]) == total:
            return int(offsets[np.searchsorted(offsets, position, side="right")])
        return min(total, position + int(self.block_size or DEFAULT_CHUNK))

    def __next__(self) -> Message:
        """The input's blocks in order, served through the cache (passed through uncached when infinite)."""
        if self.infinite:
            return self._next_from_input()
        total = len(self)
        if self._position >= total:
            raise StopIteration
        stop = self._stop(self._position, total)
        out = self[self._position:stop]
        self._position = stop
        return out

    # ------------------------------------------------------------------------------------------ state
    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "hits": self._hits, "misses": self._misses,
                "requests": self._requests, "prefetched": self._prefetched}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        super()._set_pipe_state(state)
        self._hits, self._misses = int(state["hits"]), int(state["misses"])
        self._requests, self._prefetched = int(state["requests"]), int(state["prefetched"])

    def __repr__(self) -> str:
        return f"<{self._chain_str()}; cache {self._cache!r}, hits {self._hits}, misses {self._misses}>"
