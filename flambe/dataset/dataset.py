"""The Dataset interface: three splits of examples, read-only."""

from __future__ import annotations

import abc
from typing import Any, Sequence

from flambe.compile import Component


class Dataset(Component, metaclass=abc.ABCMeta):
    """Base Dataset interface: the ``train``, ``val`` and ``test`` splits of the data.

    Each split is a sequence of examples; an example is a tuple of tensors ready for a sampler.
    Datasets are immutable: item assignment and deletion raise ``TypeError``.
    """

    @property
    @abc.abstractmethod
    def train(self) -> Sequence[Sequence]:
        """The training data, as a sequence of examples."""

    @property
    @abc.abstractmethod
    def val(self) -> Sequence[Sequence]:
        """The validation data, as a sequence of examples."""

    @property
    @abc.abstractmethod
    def test(self) -> Sequence[Sequence]:
        """The test data, as a sequence of examples."""

    def __setitem__(self, key: Any, value: Any) -> None:
        """Raise: datasets are immutable."""
        raise TypeError(f"{type(self).__name__} is immutable: items cannot be assigned")

    def __delitem__(self, key: Any) -> None:
        """Raise: datasets are immutable."""
        raise TypeError(f"{type(self).__name__} is immutable: items cannot be deleted")
