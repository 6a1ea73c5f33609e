"""Source pipes that stream files in blocks: text lines and FASTA records.

Readers keep a byte offset, not an open file, in their state: the file is (re)opened lazily, so a reader
pickles, and a restored one seeks straight back to where it was. They record where each block starts, so
:meth:`FileReaderPipe.seek_block` lets a :class:`~flambe.pipeline.pipes.LoopingPipe` jump to a block it has
seen instead of re-reading the file from the start.
"""

from __future__ import annotations

import itertools
import os
from typing import IO, Any

from flambe.pipeline.message import Message
from flambe.pipeline.pipe import Pipe

_CHUNK_BYTES = 1 << 20


class FileReaderPipe(Pipe, should_register=False):
    """Base of the block readers: a path, a block size, a byte offset; subclasses implement :meth:`_read`."""

    _transient = ("_handle",)

    def __init__(self, path: str, block_size: int = 1000, encoding: str = "utf-8", input: Any = None) -> None:
        super().__init__(input)
        if int(block_size) < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        self.path = os.fspath(path)
        self._block_size = int(block_size)
        self.encoding = encoding
        self._offset = 0
        self._block_starts: list[int] = []
        self._done = False
        self._handle: IO[bytes] | None = None
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{type(self).__name__}: no file at {self.path!r}")

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def indexable(self) -> bool:
        return False

    def _file(self) -> IO[bytes]:
        if self._handle is None or self._handle.closed:
            self._handle = open(self.path, "rb")
        return self._handle

    def close(self) -> None:
        """Close the file (it reopens on the next read)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _read(self, offset: int) -> tuple[Message | None, int]:
        """The block starting at byte ``offset`` and the offset after it (None at the end of the file)."""
        raise NotImplementedError

    def __next__(self) -> Message:
        if self._done:
            raise StopIteration
        block, end = self._read(self._offset)
        if block is None:
            self._done = True
            raise StopIteration
        if self._position == len(self._block_starts):
            self._block_starts.append(self._offset)
        self._offset = end
        self._position += 1
        return block

    def seek_block(self, b: int) -> bool:
        """Make block ``b`` the next one read, if its start is known; return whether it is."""
        if not 0 <= b < len(self._block_starts):
            return False
        self._offset, self._position, self._done = self._block_starts[b], b, False
        return True

    def reset(self) -> None:
        """Rewind to the start of the file."""
        super().reset()
        self._offset, self._done = 0, False

    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "offset": self._offset, "block_starts": list(self._block_starts),
                "done": self._done}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        self._position, self._offset = int(state["position"]), int(state["offset"])
        self._block_starts = [int(s) for s in state["block_starts"]]
        self._done = bool(state["done"])


class TextLinesPipe(FileReaderPipe):
    """Streams a text file as Messages of ``block_size`` lines in column ``column`` (newlines removed).

    Parameters
    ----------
    path : str
    block_size : int
    column : str
    encoding : str
    """

    def __init__(self, path: str, block_size: int = 1000, column: str = "text", encoding: str = "utf-8") -> None:
        super().__init__(path, block_size, encoding)
        self.column = column

    def _read(self, offset: int) -> tuple[Message | None, int]:
        f = self._file()
        f.seek(offset)
        lines = list(itertools.islice(f, self._block_size))
        if not lines:
            return None, offset
        data = b"".join(lines)
        text = data.decode(self.encoding)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        return Message({self.column: text.split("\n")}), offset + len(data)


class FastaPipe(FileReaderPipe):
    """Streams a FASTA file as Messages of ``block_size`` records, columns ``id`` and ``sequence``.

    ``id`` is the first word of the header line, ``sequence`` the record's lines joined. Text before the first
    ``>`` is skipped.

    Parameters
    ----------
    path : str
    block_size : int
    encoding : str
    """

    def __init__(self, path: str, block_size: int = 1000, encoding: str = "utf-8", input: Any = None) -> None:
        super().__init__(path, block_size, encoding, input)

    def _start(self, f: IO[bytes]) -> int:
        f.seek(0)
        head = f.read(_CHUNK_BYTES)
        pos = 0
        while head:
            if pos == 0 and head.startswith(b">"):
                return 0
            i = head.find(b"\n>")
            if i >= 0:
                return pos + i + 1
            pos += len(head) - 1
            f.seek(pos)
            head = f.read(_CHUNK_BYTES)
            if len(head) <= 1:
                break
        return -1

    def _read(self, offset: int) -> tuple[Message | None, int]:
        f = self._file()
        if offset == 0:
            offset = self._start(f)
            if offset < 0:
                return None, 0
        f.seek(offset)
        buf = bytearray()
        seps: list[int] = []
        search = 0
        n = self._block_size
        while len(seps) < n:
            chunk = f.read(_CHUNK_BYTES)
            if not chunk:
                break
            buf += chunk
            while len(seps) < n:
                i = buf.find(b"\n>", search)
                if i < 0:
                    search = max(len(buf) - 1, 0)
                    break
                seps.append(i)
                search = i + 1
        cut = seps[n - 1] + 1 if len(seps) >= n else len(buf)
        if cut == 0 or not buf[:cut].strip():
            return None, offset
        text = bytes(buf[:cut]).decode(self.encoding).replace("\r", "")
        ids, seqs = [], []
        for record in text[1:].split("\n>"):
            header, _, body = record.partition("\n")
            words = header.split(None, 1)
            ids.append(words[0] if words else "")
            seqs.append(body.replace("\n", "").strip())
        return Message({"id": ids, "sequence": seqs}), offset + cut


class BioSeqPipe(FastaPipe):
    """Fireworks' name for the biosequence reader: a :class:`FastaPipe` (``filetype`` must be ``'fasta'``)."""

    def __init__(self, path: str, input: Any = None, filetype: str = "fasta", block_size: int = 1000,
                 encoding: str = "utf-8") -> None:
        if filetype.lower() not in ("fasta", "fa"):
            raise ValueError(f"BioSeqPipe reads FASTA files only, got filetype={filetype!r}")
        super().__init__(path, block_size, encoding, input)
        self.filetype = filetype
