"""Pipe: one step of a streaming data pipeline, and the hooked pass-through pipe.

A pipe reads from its ``input`` (another pipe, a :class:`~flambe.pipeline.message.Message`, a list of
Messages, or any re-iterable of Messages) and passes :class:`Message` blocks downstream:

- iterating a pipe resets it and yields Messages, each a block of rows;
- when its source is indexable, ``pipe[index]`` returns the Message of those rows and ``len(pipe)`` the row
  count.

Method calls are forwarded upstream *explicitly*: a pipe forwards a name it does not have only when the name
is in its ``delegates`` (collected over the class hierarchy) or when its direct input provides it (defines it,
or declares it in its own ``delegates`` and can forward it further).
Anything else is an :class:`AttributeError` naming the whole chain, so a typo is never a silent upstream call.
:meth:`Pipe.recursive_call` calls the nearest upstream implementation of a method on purpose.

Every pipe is picklable (plain attributes; open files and iterators are transient and rebuilt lazily) and keeps
its position (and, where it has one, its random state) in :meth:`get_state` / :meth:`set_state`, which
``flambe.save`` also writes, so a restored pipe continues an interrupted epoch exactly.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from flambe.compile.component import Component, State
from flambe.pipeline.message import Message, cat

#: rows per yielded Message for pipes that iterate an index and know no block size of their own
DEFAULT_CHUNK = 1024


# ---------------------------------------------------------------------------------------------- helpers
def really_has(obj: Any, name: str) -> bool:
    """Whether ``obj`` defines ``name`` itself (instance or class), without any ``__getattr__`` fallback."""
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def as_index_array(index: Any) -> Any:
    """Torch tensors and pandas objects as numpy arrays; ints, slices, lists and arrays unchanged."""
    if hasattr(index, "detach") and hasattr(index, "cpu"):  # torch.Tensor, without importing torch here
        index = index.detach().cpu().numpy()
        return int(index) if index.ndim == 0 else index
    if hasattr(index, "to_numpy"):
        return index.to_numpy()
    return index


def normalize_index(index: Any, n: int) -> int | np.ndarray:
    """Any row index (int, slice, positions, bool mask, tensor) as an int or an int64 array, in ``[0, n)``.

    Raises
    ------
    IndexError
        A position is out of range, or a mask has the wrong length.
    """
    index = as_index_array(index)
    if isinstance(index, (bool, np.bool_)):
        raise TypeError("a single bool is not a row index")
    if isinstance(index, (int, np.integer)):
        i = int(index)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"row {i} is out of range for {n} rows")
        return j
    if isinstance(index, slice):
        return np.arange(*index.indices(n), dtype=np.int64)
    arr = np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"a mask must have one bool per row: got {arr.shape} for {n} rows")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"cannot index rows with {type(index).__name__} of dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    arr = np.where(arr < 0, arr + n, arr)
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise IndexError(f"row {int(np.asarray(index)[bad][0])} is out of range for {n} rows")
    return arr


def gather_rows(read_block: Callable[[int], Message], offsets: np.ndarray, rows: int | np.ndarray) -> Message:
    """The Message of ``rows`` from a source stored in blocks starting at ``offsets`` (last = total).

    Blocks are read in increasing order, each once, and rows are selected from each block column-wise;
    the result is in the order of ``rows``.
    """
    if isinstance(rows, (int, np.integer)):
        b = int(np.searchsorted(offsets, rows, side="right")) - 1
        return read_block(b)[int(rows) - int(offsets[b])]
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return read_block(0)[rows] if len(offsets) > 1 else Message()
    blocks = np.searchsorted(offsets, rows, side="right") - 1
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    unique, starts = np.unique(sorted_blocks, return_index=True)
    bounds = list(starts[1:]) + [len(rows)]
    parts = []
    for b, lo, hi in zip(unique, starts, bounds):
        sel = order[lo:hi]
        parts.append(read_block(int(b))[rows[sel] - offsets[b]])
    out = parts[0] if len(parts) == 1 else cat(parts)
    if len(unique) > 1 and np.any(order[1:] < order[:-1]):
        out = out[np.argsort(order)]
    return out


def _type_name(obj: Any) -> str:
    return repr(type(obj).__name__)


# ------------------------------------------------------------------------------------------------- Pipe
class Pipe(Component):
    """The core of a pipeline: takes an input, streams :class:`Message` blocks, forwards declared calls upstream.

    Parameters
    ----------
    input : Pipe, Message, list of Messages, iterable of Messages, or dict of Pipes, optional
        Where the rows come from. A dict (name -> pipe) is for junction-like pipes that have several inputs.

    Notes
    -----
    Subclasses add names to ``delegates`` to forward them upstream; they keep their position in
    :meth:`_pipe_state` / :meth:`_set_pipe_state` and list rebuildable attributes in ``_transient``.
    ``__iter__`` resets the pipe, except for the first ``__iter__`` after :meth:`set_state`, which continues
    the restored epoch. Pipes never change the Messages they receive in place.
    """

    #: names forwarded to the input when this pipe does not define them (merged over the class hierarchy)
    delegates: tuple[str, ...] = ("to_tensor", "to_tensors", "to_dataframe")
    #: attributes dropped when pickled (rebuilt lazily)
    _transient: tuple[str, ...] = ("_iterator",)

    def __init__(self, input: Any = None) -> None:
        self.input = input
        self._position = 0
        self._iterator: Iterable[Any] | None = None
        self._resume = False

    # ------------------------------------------------------------------------ delegation
    @classmethod
    def delegated_names(cls) -> frozenset[str]:
        """Every name in ``delegates`` of this class and its bases."""
        names: set[str] = set()
        for klass in cls.__mro__:
            names.update(klass.__dict__.get("delegates", ()))
        return frozenset(names)

    def chain(self) -> list[Any]:
        """This pipe and everything upstream of it, nearest first (stops at a junction's dict of inputs)."""
        out: list[Any] = [self]
        node: Any = self
        while isinstance(node, Pipe):
            node = node.__dict__.get("input")
            if node is None:
                break
            out.append(node)
            if isinstance(node, dict):
                break
        return out

    def _chain_str(self) -> str:
        return " -> ".join("{" + ", ".join(map(str, n)) + "}" if isinstance(n, dict) else _type_name(n)
                           for n in self.chain())

    def _provider(self, name: str) -> Any:
        """The upstream object whose ``name`` this pipe forwards, or None (see the module notes)."""
        node: Any = self
        while isinstance(node, Pipe):
            nxt = node.__dict__.get("input")
            if nxt is None or isinstance(nxt, dict):
                return None
            if really_has(nxt, name):
                return nxt
            declared = name in type(node).delegated_names()
            if not (declared or (isinstance(nxt, Pipe) and name in type(nxt).delegated_names())):
                return None
            node = nxt
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or "input" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        provider = self._provider(name)
        if provider is not None:
            return getattr(provider, name)
        raise AttributeError(f"{self._chain_str()} has no attribute {name!r} (a pipe forwards only the names in "
                             f"its 'delegates' and those its direct input defines)")

    def recursive_call(self, attribute: str, *args: Any, ignore_first: bool = True, **kwargs: Any) -> Any:
        """Call ``attribute`` on the nearest pipe (or source) upstream that defines it, and return the result.

        Parameters
        ----------
        attribute : str
            The method (or attribute) name. A non-callable attribute is returned as is.
        *args, **kwargs
            Arguments of the call.
        ignore_first : bool
            Skip this pipe's own implementation (so a pipe can call the upstream version of its own method).

        Returns
        -------
        Any
            The response; for a pipe whose input is a dict of pipes, a dict ``name -> response``.

        Raises
        ------
        AttributeError
            Nothing upstream defines ``attribute`` (the message names the chain).
        """
        node: Any = self.input if ignore_first else self
        while node is not None:
            if isinstance(node, dict):
                return {key: (comp.recursive_call(attribute, *args, ignore_first=False, **kwargs)
                              if isinstance(comp, Pipe) else _call(getattr(comp, attribute), args, kwargs))
                        for key, comp in node.items()}
            if really_has(node, attribute):
                return _call(getattr(node, attribute), args, kwargs)
            node = node.__dict__.get("input") if isinstance(node, Pipe) else None
        raise AttributeError(f"no pipe in {self._chain_str()} implements {attribute!r}")

    # ------------------------------------------------------------------------ iteration
    def __iter__(self) -> Pipe:
        if self._resume:
            self._resume = False
        else:
            self.reset()
        return self

    def __next__(self) -> Message:
        return self._next_from_input()

    def _next_from_input(self) -> Message:
        """The next block of the input (a pipe, a Message, a list or an iterable of Messages)."""
        src = self.input
        if isinstance(src, Pipe):
            return next(src)
        if src is None:
            raise StopIteration
        if isinstance(src, Message):
            if self._position:
                raise StopIteration
            self._position = 1
            return src
        if isinstance(src, (list, tuple)):
            if self._position >= len(src):
                raise StopIteration
            self._position += 1
            return _as_message(src[self._position - 1])
        if isinstance(src, dict):
            raise TypeError(f"{type(self).__name__} has several inputs; iterate it with a Junction")
        if self._iterator is None:
            if callable(getattr(src, "reset", None)):
                src.reset()  # a stateful source (a DBPipe): start it over, then skip to our position
            self._iterator = iter(src)
            for _ in itertools.islice(self._iterator, self._position):
                pass
        item = next(self._iterator)  # type: ignore[call-overload]
        self._position += 1
        return _as_message(item)

    def reset(self) -> None:
        """Go back to the start: reset this pipe's position and its input(s)."""
        self._position = 0
        self._iterator = None
        self._resume = False
        src = self.input
        if isinstance(src, dict):
            for comp in src.values():
                if hasattr(comp, "reset"):
                    comp.reset()
        elif callable(getattr(src, "reset", None)):  # a Pipe, or a source such as a DBPipe
            src.reset()

    # ------------------------------------------------------------------------ indexing
    @property
    def indexable(self) -> bool:
        """Whether ``pipe[index]`` and ``len(pipe)`` work (the source is indexable)."""
        src = self.input
        if isinstance(src, Pipe):
            return src.indexable
        return isinstance(src, (Message, list, tuple))

    def _source_offsets(self) -> np.ndarray:
        sizes = [len(m) for m in self.input]
        return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)

    def __getitem__(self, index: Any) -> Message:
        src = self.input
        if isinstance(src, (Pipe, Message)):
            return src[as_index_array(index)] if isinstance(src, Pipe) else src[index]
        if isinstance(src, (list, tuple)):
            offsets = self._source_offsets()
            return gather_rows(lambda b: _as_message(src[b]), offsets, normalize_index(index, int(offsets[-1])))
        raise TypeError(f"{self._chain_str()} is not indexable: wrap the stream in a LoopingPipe")

    def __len__(self) -> int:
        src = self.input
        if isinstance(src, (Pipe, Message)):
            return len(src)
        if isinstance(src, (list, tuple)):
            return int(sum(len(m) for m in src))
        raise TypeError(f"{self._chain_str()} has no length: wrap the stream in a LoopingPipe")

    def __bool__(self) -> bool:
        return True

    @property
    def block_size(self) -> int | None:
        """Nominal rows per block of this pipe's stream (None: unknown)."""
        src = self.input
        return src.block_size if isinstance(src, Pipe) else None

    def block_offsets(self) -> np.ndarray | None:
        """Row offsets where the blocks of this pipe's indexable stream start (last = total), or None."""
        src = self.input
        if isinstance(src, Pipe):
            return src.block_offsets()
        if isinstance(src, Message):
            return np.array([0, len(src)], dtype=np.int64)
        if isinstance(src, (list, tuple)):
            return self._source_offsets()
        return None

    # ------------------------------------------------------------------------ state
    def _pipe_state(self) -> dict[str, Any]:
        """This pipe's own position (and random state); upstream pipes keep their own."""
        return {"position": self._position}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        self._position = int(state["position"])
        self._iterator = None

    def _state(self, state_dict: State, prefix: str, local_metadata: dict[str, Any]) -> State:
        for key, value in self._pipe_state().items():
            state_dict[prefix + key] = value
        return state_dict

    def _load_state(self, state_dict: State, prefix: str, local_metadata: dict[str, Any], strict: bool,
                    missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        current = self._pipe_state()
        found = {key: state_dict[prefix + key] for key in current if prefix + key in state_dict}
        missing_keys.extend(prefix + key for key in current if key not in found)
        if found:
            current.update(found)
            self._set_pipe_state(current)
            self._resume = True

    def set_state(self, state: State, strict: bool = False) -> None:
        """Restore a state from :meth:`get_state`; the next ``__iter__`` continues where it was taken."""
        self.load_state(state, strict=strict)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for klass in type(self).__mro__:
            for name in klass.__dict__.get("_transient", ()):
                if name in state:
                    state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<{self._chain_str()}>"


def _call(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if callable(value):
        return value(*args, **kwargs)
    if args or kwargs:
        raise TypeError(f"{type(value).__name__} attribute is not callable")
    return value


def _as_message(value: Any) -> Message:
    return value if isinstance(value, Message) else Message(value)


# ------------------------------------------------------------------------------------- HookedPassThroughPipe
class HookedPassThroughPipe(Pipe):
    """A pipe that passes everything through, with hooks applied to what comes back.

    Subclasses override :meth:`_next_hook` (blocks from iteration), :meth:`_getitem_hook` (rows from
    ``pipe[index]``) and :meth:`_call_hook` (the result of calling the pipe, which calls its input).
    """

    def __next__(self) -> Message:
        return self._next_hook(self._next_from_input())

    def __getitem__(self, index: Any) -> Message:
        return self._getitem_hook(super().__getitem__(index))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not callable(self.input):
            raise TypeError(f"{self._chain_str()}: the input of {type(self).__name__} is not callable")
        return self._call_hook(self.input(*args, **kwargs))

    def _next_hook(self, message: Message) -> Message:
        """Applied to each block passed through by iteration."""
        return message

    def _getitem_hook(self, message: Message) -> Message:
        """Applied to each result of ``pipe[index]``."""
        return message

    def _call_hook(self, result: Any) -> Any:
        """Applied to each result of calling the pipe."""
        return result
