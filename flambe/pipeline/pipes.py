"""The toolbox pipes: make a stream indexable, shuffle, batch, repeat, re-index and split.

The readers (:class:`TextLinesPipe`, :class:`FastaPipe`) live in :mod:`flambe.pipeline.readers`,
:class:`BatchingPipe` and :class:`RepeaterPipe` in :mod:`flambe.pipeline.batching`, and the transforms
(:class:`FunctionPipe`, :class:`Title2LabelPipe`, :class:`LabelerPipe`, :class:`TensorPipe`, :class:`Normalizer`)
in :mod:`flambe.pipeline.preprocessing`; they are importable from here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flambe.pipeline.batching import BatchingPipe, RepeaterPipe
from flambe.pipeline.message import Message
from flambe.pipeline.pipe import (
    DEFAULT_CHUNK,
    HookedPassThroughPipe,
    Pipe,
    as_index_array,
    gather_rows,
    normalize_index,
)
from flambe.pipeline.preprocessing import FunctionPipe, LabelerPipe, Normalizer, TensorPipe, Title2LabelPipe
from flambe.pipeline.readers import BioSeqPipe, FastaPipe, TextLinesPipe

__all__ = ["LoopingPipe", "IndexedPipe", "ShufflerPipe", "IndexMapperPipe", "BatchingPipe", "RepeaterPipe",
           "train_test_split", "block_permutation", "FunctionPipe", "Title2LabelPipe", "LabelerPipe", "TensorPipe",
           "Normalizer", "TextLinesPipe", "FastaPipe", "BioSeqPipe", "HookedPassThroughPipe"]


def _indexable_input(input: Any, who: str) -> Any:
    if isinstance(input, Pipe):
        if not input.indexable:
            raise TypeError(f"{who} needs an indexable input, but {input._chain_str()} is a stream: "
                            f"put a LoopingPipe in between")
        return input
    if isinstance(input, (Message, list, tuple)):
        return input
    raise TypeError(f"{who} needs a pipe, a Message or a list of Messages as input, got {type(input).__name__}")


# ------------------------------------------------------------------------------------------ LoopingPipe
class LoopingPipe(Pipe):
    """Makes a stream indexable: ``pipe[10]``, ``pipe[2:6]``, ``pipe[-3:]``, ``len(pipe)``.

    The input is read forward block by block; the row boundaries of every block seen are recorded, so a
    request reads only the blocks that hold its rows (rewinding the input with ``reset`` — or, when the input
    offers ``seek_block(b)`` like the file readers do, jumping straight to the block). The last block read is
    kept, nothing more: put a caching pipe after this one to keep more in memory. Length and negative or open
    indices need one full pass the first time. The input must yield the same blocks after every reset.

    Parameters
    ----------
    input : Pipe or iterable of Messages
        The stream.
    """

    _transient = ("_memo",)

    def __init__(self, input: Any) -> None:
        super().__init__(input if isinstance(input, Pipe) else Pipe(input))
        self._offsets: list[int] = [0]
        self._complete = False
        self._input_block = 0
        self._memo: tuple[int, Message] | None = None
        self.check_input()

    def check_input(self) -> None:
        """Check that the input can be iterated (``__next__``) and rewound (``reset``)."""
        if not (hasattr(self.input, "__next__") and hasattr(self.input, "reset")):
            raise TypeError(f"LoopingPipe needs an input with __next__ and reset, got {type(self.input).__name__}")

    @property
    def indexable(self) -> bool:
        return True

    def _read_block(self, b: int) -> Message:
        if self._memo is not None and self._memo[0] == b:
            return self._memo[1]
        if b < 0 or (self._complete and b >= len(self._offsets) - 1):
            raise IndexError(f"block {b} is out of range")
        if self._input_block != b:
            seek = getattr(type(self.input), "seek_block", None)
            if seek is not None and seek(self.input, b):
                self._input_block = b
            elif self._input_block > b:
                self.input.reset()
                self._input_block = 0
        while True:
            j = self._input_block
            try:
                block = next(self.input)
            except StopIteration:
                self._complete = True
                raise IndexError(f"block {b} is out of range ({j} blocks)") from None
            self._input_block = j + 1
            if j == len(self._offsets) - 1:
                self._offsets.append(self._offsets[-1] + len(block))
            if j == b:
                self._memo = (b, block)
                return block

    def step_forward(self, n: int) -> None:
        """Read forward until the boundaries of the blocks up to row ``n`` are known (or the input ends)."""
        while not self._complete and self._offsets[-1] <= n:
            try:
                self._read_block(len(self._offsets) - 1)
            except IndexError:
                break

    def compute_length(self) -> int:
        """The row count (reads to the end the first time; never returns for an infinite input)."""
        while not self._complete:
            try:
                self._read_block(len(self._offsets) - 1)
            except IndexError:
                break
        return self._offsets[-1]

    def __len__(self) -> int:
        return self.compute_length()

    def block_offsets(self) -> np.ndarray:
        self.compute_length()
        return np.asarray(self._offsets, dtype=np.int64)

    def __getitem__(self, index: Any) -> Message:
        index = as_index_array(index)
        if isinstance(index, (list, tuple)):
            index = np.asarray(index)
        if isinstance(index, (int, np.integer)) and index >= 0:
            self.step_forward(int(index))
            n = self._offsets[-1]
        elif (isinstance(index, slice) and index.stop is not None and index.stop >= 0
              and (index.start is None or index.start >= 0) and (index.step is None or index.step > 0)):
            self.step_forward(index.stop - 1)
            n = min(self._offsets[-1], index.stop)
        elif isinstance(index, np.ndarray) and index.dtype.kind in "iu" and index.size and index.min() >= 0:
            self.step_forward(int(index.max()))
            n = self._offsets[-1]
        else:
            n = self.compute_length()
        rows = normalize_index(index, n)
        return gather_rows(self._read_block, np.asarray(self._offsets, dtype=np.int64), rows)

    def __next__(self) -> Message:
        try:
            block = self._read_block(self._position)
        except IndexError:
            raise StopIteration from None
        self._position += 1
        return block

    def reset(self) -> None:
        super().reset()
        self._input_block = 0

    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "offsets": list(self._offsets), "complete": self._complete,
                "input_block": self._input_block}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        self._position = int(state["position"])
        self._offsets = [int(o) for o in state["offsets"]]
        self._complete = bool(state["complete"])
        self._input_block = int(state["input_block"])
        self._memo = None


# ------------------------------------------------------------------------------------------ IndexedPipe
class IndexedPipe(Pipe, should_register=False):
    """Base of pipes whose row ``i`` is row ``rows[i]`` of an indexable input (``rows`` from :meth:`_rows`).

    Indexing maps through ``rows``; iteration reads ``rows`` in chunks of the block size (or
    ``DEFAULT_CHUNK``) and asks the input for each chunk at once.
    """

    def _rows(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def indexable(self) -> bool:
        return True

    def block_offsets(self) -> np.ndarray | None:
        return None

    def _chunk(self) -> int:
        return int(self.block_size or DEFAULT_CHUNK)

    def __len__(self) -> int:
        return len(self._rows())

    def __getitem__(self, index: Any) -> Message:
        index = as_index_array(index)
        if isinstance(index, (list, tuple)):
            index = np.asarray(index)
            index = index.astype(np.int64) if index.size == 0 else index
        if isinstance(index, (bool, np.bool_)):
            raise TypeError("a single bool is not a row index")
        sel = self._rows()[index]
        return Pipe.__getitem__(self, int(sel) if np.ndim(sel) == 0 else sel)

    def _next_stop(self, position: int, total: int) -> int:
        return min(position + self._chunk(), total)

    def __next__(self) -> Message:
        rows = self._rows()
        if self._position >= len(rows):
            raise StopIteration
        stop = self._next_stop(self._position, len(rows))
        sel = rows[self._position:stop]
        self._position = stop
        return Pipe.__getitem__(self, sel)


def block_permutation(rng: np.random.Generator, offsets: np.ndarray, window: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A block-aware shuffle of the rows of blocks starting at ``offsets`` (last = total).

    The order of the blocks is shuffled, then the rows inside each window of ``window`` consecutive
    (shuffled) blocks. Returns the row order and the row positions where the windows start (last = total).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    sizes = np.diff(offsets)
    nb = len(sizes)
    order = rng.permutation(nb)
    lens, starts = sizes[order], offsets[:-1][order]
    ends = np.cumsum(lens)
    total = int(ends[-1]) if nb else 0
    rows = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lens), lens)
    group = np.repeat(np.arange(nb) // window, lens)
    perm = rows[np.lexsort((rng.random(total), group))]
    cuts = ends[np.arange(window - 1, nb, window)]
    bounds = np.unique(np.concatenate([[0], cuts, [total]]).astype(np.int64))
    return perm, bounds


# ------------------------------------------------------------------------------------------ ShufflerPipe
class ShufflerPipe(IndexedPipe):
    """A seeded shuffle of an indexable input; ``pipe[i]`` and iteration both follow the current order.

    Epoch ``e``'s order is a pure function of ``(seed, e)`` and the input's size (numpy's ``SeedSequence``),
    so it is the same in every process and after a restore. An epoch starts at the first block read after a
    reset; each later :meth:`reset` (so each ``for`` loop) starts the next epoch.

    Block-aware mode: with a ``block_size`` (or when the input exposes one, e.g. a LoopingPipe over a file
    reader) the order of the blocks is shuffled and then the rows within each window of ``window`` blocks,
    and each iteration step yields one window. A cached stream is then read block by block rather than
    thrashed — the trade-off is less randomness: rows of a window stay together within an epoch, and a cache
    upstream must hold ``window`` blocks. ``block_size=0`` forces a full row shuffle.

    Parameters
    ----------
    input : Pipe, Message or list of Messages
        An indexable source.
    seed : int
        Non-negative seed.
    block_size : int, optional
        Rows per block (None: the input's block size if any; 0: no blocks).
    window : int
        Blocks shuffled together in block-aware mode.
    """

    _transient = ("_plan_cache",)

    def __init__(self, input: Any, seed: int = 0, block_size: int | None = None, window: int = 1) -> None:
        super().__init__(_indexable_input(input, "ShufflerPipe"))
        if int(seed) < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if int(window) < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.seed = int(seed)
        self.window = int(window)
        self._block_size = block_size
        self._epoch = 0
        self._started = False
        self._order: np.ndarray | None = None
        self._plan_cache: tuple[Any, np.ndarray, np.ndarray | None] | None = None
        self._register_with_input()

    def _register_with_input(self) -> None:
        """Tell a CachingPipe input which rows come next, so it prefetches them."""
        register = getattr(self.input, "register_consumer", None)
        if callable(register):
            register(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._register_with_input()  # the registration is a weak reference, dropped by pickling

    def check_input(self) -> None:
        """Check that the input implements ``__getitem__`` and ``__len__``."""
        _indexable_input(self.input, "ShufflerPipe")

    @property
    def block_size(self) -> int | None:
        if self._block_size is not None:
            return int(self._block_size) or None
        return super().block_size

    @property
    def epoch(self) -> int:
        """The epoch whose order is in use."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Jump to the start of ``epoch``."""
        self._epoch, self._position, self._started, self._order = int(epoch), 0, False, None

    def _block_grid(self, n: int) -> np.ndarray | None:
        if self._block_size == 0:
            return None
        if self._block_size is not None:
            return np.unique(np.append(np.arange(0, n, int(self._block_size), dtype=np.int64), n))
        size = super().block_size
        if not size:
            return None
        offsets = Pipe.block_offsets(self)
        if offsets is None or int(offsets[-1]) != n:
            offsets = np.unique(np.append(np.arange(0, n, int(size), dtype=np.int64), n))
        return offsets

    def _plan(self) -> tuple[np.ndarray, np.ndarray | None]:
        n = Pipe.__len__(self)
        if self._order is not None:
            return self._order, None
        key = (self.seed, self._epoch, n, self._block_size, self.window)
        if self._plan_cache is None or self._plan_cache[0] != key:
            rng = np.random.default_rng([self.seed, self._epoch])
            grid = self._block_grid(n)
            if grid is None:
                self._plan_cache = (key, rng.permutation(n).astype(np.int64), None)
            else:
                perm, bounds = block_permutation(rng, grid, self.window)
                self._plan_cache = (key, perm, bounds)
        return self._plan_cache[1], self._plan_cache[2]

    def _rows(self) -> np.ndarray:
        return self._plan()[0]

    def _next_stop(self, position: int, total: int) -> int:
        bounds = self._plan()[1]
        if bounds is None:
            return super()._next_stop(position, total)
        return int(bounds[np.searchsorted(bounds, position, side="right")])

    def __next__(self) -> Message:
        self._started = True
        return super().__next__()

    def shuffle(self, order: Any = None) -> None:
        """Start a new epoch, or (with ``order``, a permutation of the rows) use that order from its start."""
        self._position = 0
        if order is None:
            self._epoch, self._order, self._started = self._epoch + 1, None, False
            return
        order = np.asarray(as_index_array(order), dtype=np.int64)
        if not np.array_equal(np.sort(order), np.arange(len(self.input))):
            raise ValueError(f"order must be a permutation of range({len(self.input)})")
        self._order = order

    def upcoming_indices(self, n: int) -> np.ndarray:
        """The input rows the next ``n`` rows of this epoch will read (fewer at the end of the epoch)."""
        return self._rows()[self._position:self._position + int(n)].copy()

    def reset(self) -> None:
        """Rewind; an epoch that has been read from is followed by the next one (a new shuffle)."""
        super().reset()
        if self._started:
            self._epoch += 1
            self._order = None
        self._started = False

    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "epoch": self._epoch, "started": self._started,
                "order": None if self._order is None else self._order.tolist()}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        self._position, self._epoch = int(state["position"]), int(state["epoch"])
        self._started = bool(state["started"])
        self._order = None if state["order"] is None else np.asarray(state["order"], dtype=np.int64)


# --------------------------------------------------------------------------------------- IndexMapperPipe
class IndexMapperPipe(IndexedPipe):
    """Row ``output_indices[k]`` of this pipe is row ``input_indices[k]`` of the input.

    ``output_indices`` must be a permutation of ``range(len(output_indices))``.
    """

    def __init__(self, input: Any, input_indices: Any, output_indices: Any) -> None:
        super().__init__(_indexable_input(input, "IndexMapperPipe"))
        src = np.asarray(as_index_array(input_indices), dtype=np.int64).reshape(-1)
        dst = np.asarray(as_index_array(output_indices), dtype=np.int64).reshape(-1)
        if len(src) != len(dst):
            raise ValueError(f"input_indices has {len(src)} entries but output_indices {len(dst)}")
        if not np.array_equal(np.sort(dst), np.arange(len(dst))):
            raise ValueError(f"output_indices must be a permutation of range({len(dst)})")
        mapping = np.empty(len(dst), dtype=np.int64)
        mapping[dst] = src
        self._mapping = mapping

    def check_input(self) -> None:
        """Check that the input implements ``__getitem__``."""
        _indexable_input(self.input, "IndexMapperPipe")

    def _rows(self) -> np.ndarray:
        return self._mapping


def train_test_split(pipe_or_message: Any, test: float = 0.2, seed: int = 0) -> tuple[IndexMapperPipe,
                                                                                    IndexMapperPipe]:
    """Split rows into a seeded (train, test) pair of indexable pipes; each keeps the original row order.

    Parameters
    ----------
    pipe_or_message : Pipe, Message or list of Messages
        The rows; a stream is wrapped in a :class:`LoopingPipe`.
    test : float or int
        The test fraction (a float in ``[0, 1]``) or the number of test rows (an int).
    seed : int
        Seed of the split.
    """
    src = pipe_or_message
    if isinstance(src, Pipe) and not src.indexable:
        src = LoopingPipe(src)
    n = len(src)
    n_test = int(test) if isinstance(test, (int, np.integer)) and not isinstance(test, bool) else \
        int(round(float(test) * n))
    if not 0 <= n_test <= n:
        raise ValueError(f"test must select between 0 and {n} rows, got {test}")
    perm = np.random.default_rng([int(seed)]).permutation(n)
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return (IndexMapperPipe(src, train_rows, np.arange(len(train_rows))),
            IndexMapperPipe(src, test_rows, np.arange(len(test_rows))))
