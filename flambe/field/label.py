"""LabelField: labels (single or multiple per example) to ids, one-hot or multi-hot vectors."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch

from flambe.field.field import Field, flatten_values
from flambe.tokenizer import LabelTokenizer


def _label_order(label: str) -> tuple:
    """Sort key: integer labels by value ("2" before "10"), before the other labels in string order."""
    text = label.strip()
    if text.lstrip("-").isdigit():
        return (0, int(text), label)
    return (1, 0, label)


class LabelField(Field):
    """Featurize labels: a scalar id, a one-hot vector, or a multi-hot vector for multilabel data.

    Without ``labels``, the vocabulary holds the labels seen by :meth:`setup`, sorted (integer labels
    by value, then the others as strings); labels first seen in a later :meth:`setup` call are added
    after the existing ones, sorted the same way, so ids never change. With ``labels``, that list is
    the vocabulary in that order, and a label outside it is an error.

    Parameters
    ----------
    one_hot : bool
        Process a single label into a float one-hot vector instead of a scalar id.
    multilabel_sep : str, optional
        Separator of multiple labels in one value (``'a,b'``); such examples become float multi-hot
        vectors.
    labels : Sequence[str], optional
        The labels, in id order.

    Attributes
    ----------
    vocab : Dict[str, int]
        Label to id.
    label_counts : Dict[str, int]
        How many times :meth:`setup` saw each label.
    """

    def __init__(self, one_hot: bool = False, multilabel_sep: Optional[str] = None,
                 labels: Optional[Sequence[str]] = None) -> None:
        self.one_hot = one_hot
        self.multilabel_sep = multilabel_sep
        self.labels = list(labels) if labels is not None else None
        self._split = LabelTokenizer(multilabel_sep).tokenize
        self.vocab: Dict[str, int] = {}
        if labels is not None:
            names = [str(label) for label in labels]
            if len(set(names)) != len(names):
                raise ValueError(f"labels has duplicates: {names}")
            self.vocab = {name: i for i, name in enumerate(names)}
        self.label_counts: Dict[str, int] = {}
        self.register_attrs("vocab", "label_counts")

    @property
    def vocab_size(self) -> int:
        """The number of labels."""
        return len(self.vocab)

    @property
    def vocab_list(self) -> List[str]:
        """The labels in id order."""
        return list(self.vocab)

    @property
    def label_count(self) -> torch.Tensor:
        """How often each label was seen by :meth:`setup`, indexed by id (a float tensor)."""
        counts = self.label_counts
        return torch.tensor([float(counts.get(label, 0)) for label in self.vocab], dtype=torch.float)

    @property
    def label_freq(self) -> torch.Tensor:
        """The share of each label among all label occurrences, indexed by id."""
        count = self.label_count
        total = count.sum()
        return count / total if total > 0 else count

    @property
    def label_inv_freq(self) -> torch.Tensor:
        """The inverse of :attr:`label_freq`, indexed by id (0 for a label never seen)."""
        freq = self.label_freq
        inv = torch.zeros_like(freq)
        seen = freq > 0
        inv[seen] = 1.0 / freq[seen]
        return inv

    def setup(self, *data: Any) -> None:
        """Count the labels of ``data`` (every split) and add the new ones to the vocabulary.

        Raises
        ------
        ValueError
            For a label outside ``labels`` when ``labels`` was given.
        """
        counts = self.label_counts
        split = self._split
        for value in flatten_values(data):
            for label in split(value):
                counts[label] = counts.get(label, 0) + 1
        new = [label for label in counts if label not in self.vocab]
        if not new:
            return
        if self.labels is not None:
            raise ValueError(f"Labels {sorted(new)[:10]} are not among the given labels {self.labels}")
        for label in sorted(new, key=_label_order):
            self.vocab[label] = len(self.vocab)

    def process(self, example: Any) -> torch.Tensor:
        """Featurize one example.

        Parameters
        ----------
        example : str
            The label (or labels joined by ``multilabel_sep``).

        Returns
        -------
        torch.Tensor
            A 0-d LongTensor id; a float one-hot vector (``one_hot``); or a float multi-hot vector
            (``multilabel_sep``), each of size ``vocab_size``.
        """
        labels = self._split(example)
        try:
            ids = [self.vocab[label] for label in labels]
        except KeyError as err:
            raise ValueError(f"Unknown label {err.args[0]!r}; the labels are {list(self.vocab)}") from None
        if self.multilabel_sep is None and not self.one_hot:
            return torch.tensor(ids[0], dtype=torch.long)
        vector = torch.zeros(len(self.vocab), dtype=torch.float)
        vector[ids] = 1.0
        return vector
