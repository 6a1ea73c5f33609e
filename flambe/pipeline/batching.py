"""Pipes that regroup or repeat a stream: :class:`BatchingPipe` and :class:`RepeaterPipe`."""

from __future__ import annotations

from typing import Any

import numpy as np

from flambe.pipeline.message import Message, cat
from flambe.pipeline.pipe import Pipe, normalize_index


# ------------------------------------------------------------------------------------------ BatchingPipe
class BatchingPipe(Pipe):
    """Minibatches of exactly ``batch_size`` rows, regrouped from the input's blocks column-wise.

    Iteration works on any stream; ``pipe[i]`` (batch ``i``) and ``len`` (batches) need an indexable input.
    Rows left over from a block wait in a pending buffer (part of the state), so a restored pipe yields the
    same batches.

    Parameters
    ----------
    input : Pipe, Message or list of Messages
    batch_size : int
    drop_last : bool
        Drop a last batch with fewer than ``batch_size`` rows.
    """

    #: items of this pipe are batches, not input blocks
    block_size = None

    def __init__(self, input: Any = None, batch_size: int = 5, drop_last: bool = False) -> None:
        super().__init__(input)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self._parts: list[Message] = []
        self._offset = 0
        self._buffered = 0
        self._exhausted = False
        self._batches = 0

    def block_offsets(self) -> np.ndarray | None:
        return None

    def reset(self) -> None:
        super().reset()
        self._parts, self._offset, self._buffered, self._exhausted, self._batches = [], 0, 0, False, 0

    def __next__(self) -> Message:
        bs = self.batch_size
        while self._buffered < bs and not self._exhausted:
            try:
                block = self._next_from_input()
            except StopIteration:
                self._exhausted = True
                break
            if len(block):
                self._parts.append(block)
                self._buffered += len(block)
        take = min(bs, self._buffered)
        if take == 0 or (take < bs and self.drop_last):
            self._parts, self._offset, self._buffered = [], 0, 0
            raise StopIteration
        pieces, need = [], take
        while need:
            head = self._parts[0]
            got = min(need, len(head) - self._offset)
            whole = self._offset == 0 and got == len(head)
            pieces.append(head if whole else head[self._offset:self._offset + got])
            need -= got
            self._offset += got
            if self._offset == len(head):
                self._parts.pop(0)
                self._offset = 0
        self._buffered -= take
        self._batches += 1
        return pieces[0] if len(pieces) == 1 else cat(pieces)

    def _batch_rows(self, batches: np.ndarray, n: int) -> np.ndarray:
        starts = batches * self.batch_size
        lens = np.minimum(self.batch_size, n - starts)
        ends = np.cumsum(lens)
        return np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + np.repeat(starts - (ends - lens), lens)

    def __len__(self) -> int:
        n = Pipe.__len__(self)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __getitem__(self, index: Any) -> Message:
        """Batch ``index`` (an int), or the rows of several batches (slice, list, mask) concatenated."""
        n = Pipe.__len__(self)
        batches = normalize_index(index, len(self))
        if isinstance(batches, int):
            return Pipe.__getitem__(self, slice(batches * self.batch_size, min(n, (batches + 1) * self.batch_size)))
        return Pipe.__getitem__(self, self._batch_rows(batches, n))

    def _pipe_state(self) -> dict[str, Any]:
        pending = None
        if self._parts:
            head = self._parts[0][self._offset:] if self._offset else self._parts[0]
            pending = cat([head] + self._parts[1:]) if len(self._parts) > 1 else head
        return {"position": self._position, "pending": pending, "exhausted": self._exhausted,
                "batches": self._batches}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        self._position = int(state["position"])
        pending = state["pending"]
        self._parts = [pending] if pending is not None and len(pending) else []
        self._offset, self._buffered = 0, sum(len(p) for p in self._parts)
        self._exhausted, self._batches = bool(state["exhausted"]), int(state["batches"])


# ------------------------------------------------------------------------------------------ RepeaterPipe
class RepeaterPipe(Pipe):
    """Iterates its input ``repetitions`` times (resetting it in between); ``len`` and indexing repeat too."""

    def __init__(self, input: Any = None, repetitions: int = 10) -> None:
        super().__init__(input)
        if int(repetitions) < 0:
            raise ValueError(f"repetitions must be non-negative, got {repetitions}")
        self.repetitions = int(repetitions)
        self._repetition = 0

    def __next__(self) -> Message:
        while self._repetition < self.repetitions:
            try:
                return self._next_from_input()
            except StopIteration:
                self._repetition += 1
                if self._repetition < self.repetitions:
                    Pipe.reset(self)
        raise StopIteration

    def reset(self) -> None:
        super().reset()
        self._repetition = 0

    def __len__(self) -> int:
        return Pipe.__len__(self) * self.repetitions

    def __getitem__(self, index: Any) -> Message:
        rows = normalize_index(index, len(self))
        return Pipe.__getitem__(self, rows % Pipe.__len__(self))

    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "repetition": self._repetition}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        super()._set_pipe_state(state)
        self._repetition = int(state["repetition"])
