"""Reading pretrained word vectors from local files (GloVe text, word2vec text and binary).

Only the vectors of the requested words are parsed, so a large file costs one streaming pass and
memory for the vocabulary only.
"""

from __future__ import annotations

import mmap
import os
from typing import Dict, Iterable, Tuple

import numpy as np

FORMATS = ("glove", "word2vec", "fasttext")


def load_vectors(path: str, words: Iterable[str], embeddings_format: str = "glove",
                 binary: bool = False) -> Tuple[Dict[str, np.ndarray], int]:
    """The vectors of ``words`` found in the file at ``path``, and the vector size of the file.

    Parameters
    ----------
    path : str
        A local file.
    words : Iterable[str]
        The words wanted; the others are skipped without being parsed.
    embeddings_format : str
        ``'glove'`` (``word v1 v2 ...`` lines) or ``'word2vec'`` / ``'fasttext'`` (the same lines after
        a ``count dim`` header line).
    binary : bool
        Read the word2vec binary format (``count dim`` header, then each word, a space and ``dim``
        little-endian float32 values).

    Returns
    -------
    Tuple[Dict[str, np.ndarray], int]
        ``word -> float32 vector`` for the words found (the first occurrence wins), and ``dim``.

    Raises
    ------
    ValueError
        For an unknown format, binary GloVe, or a malformed file.
    FileNotFoundError
        If ``path`` does not exist.
    """
    if embeddings_format not in FORMATS:
        raise ValueError(f"Unknown embeddings_format '{embeddings_format}'; expected one of {FORMATS}")
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Embeddings file '{path}' does not exist")
    wanted = set(words)
    if binary:
        if embeddings_format == "glove":
            raise ValueError("GloVe files are text: use embeddings_binary=False, or embeddings_format='word2vec'")
        return _load_binary(path, wanted)
    return _load_text(path, wanted, has_header=embeddings_format != "glove")


def _parse_header(line: str, path: str) -> Tuple[int, int]:
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"'{path}' does not start with a word2vec 'count dim' header line: {line[:80]!r}")
    return int(parts[0]), int(parts[1])


def _load_text(path: str, wanted: set, has_header: bool) -> Tuple[Dict[str, np.ndarray], int]:
    found: Dict[str, np.ndarray] = {}
    dim = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        if has_header:
            _, dim = _parse_header(handle.readline(), path)
        for number, line in enumerate(handle, start=2 if has_header else 1):
            cut = line.find(" ")
            if cut <= 0:
                if line.strip():
                    raise ValueError(f"{path}:{number}: expected 'word v1 v2 ...', got {line[:80]!r}")
                continue
            if dim == 0:
                dim = len(line.split()) - 1
            word = line[:cut]
            if word not in wanted or word in found:
                continue
            values = line[cut + 1:].split()
            if len(values) != dim:
                raise ValueError(f"{path}:{number}: '{word}' has {len(values)} values, expected {dim}")
            found[word] = np.asarray(values, dtype=np.float32)
    return found, dim


def _load_binary(path: str, wanted: set) -> Tuple[Dict[str, np.ndarray], int]:
    found: Dict[str, np.ndarray] = {}
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = data.find(b"\n")
        count, dim = _parse_header(data[:end].decode("ascii", errors="replace"), path)
        width = 4 * dim
        pos = end + 1
        size = len(data)
        for _ in range(count):
            while pos < size and data[pos:pos + 1] in (b"\n", b" "):
                pos += 1
            space = data.find(b" ", pos)
            if space < 0 or space + 1 + width > size:
                raise ValueError(f"'{path}' ends before its {count} vectors")
            word = data[pos:space].decode("utf-8", errors="replace")
            if word in wanted and word not in found:
                found[word] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1).astype(np.float32)
            pos = space + 1 + width
    return found, dim
