"""The Field interface: raw column values in, tensors out."""

from __future__ import annotations

import abc
from typing import Any, Iterable, Iterator, List, Tuple, Union

import numpy as np
import torch

from flambe.compile import Component
from flambe.tokenizer import Tokenizer


class Field(Component, metaclass=abc.ABCMeta):
    """Base Field interface: a field turns the raw values of one or more columns into tensors.

    :meth:`setup` sees every split of the data before anything is processed, so a field can build a
    vocabulary. It may be called several times (a field shared by datasets, or a dataset built again):
    implementations are stateful and only ever extend what they built.
    """

    def setup(self, *data: Any) -> None:
        """Set up the field from the data (this base field needs nothing, so it keeps no state).

        Parameters
        ----------
        *data : np.ndarray
            One array per split (train, val, test): examples along the first dimension, this field's
            columns along the second (a single column may be given as a 1-D array).
        """

    @abc.abstractmethod
    def process(self, *example: Any) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """Process an example (the values of this field's columns) into a tensor or a tuple of them.

        Parameters
        ----------
        *example : Any
            The column values of one example.

        Returns
        -------
        Union[torch.Tensor, Tuple[torch.Tensor, ...]]
            The processed example.
        """


def flatten_values(data: Iterable[Any]) -> List[Any]:
    """Every scalar value (string, number) in ``data``: splits, rows and cells flattened in order."""
    out: List[Any] = []
    stack: List[Any] = [iter(list(data))]
    while stack:
        for value in stack[-1]:
            if isinstance(value, np.ndarray):
                stack.append(iter(value.ravel().tolist()))
                break
            if isinstance(value, (list, tuple)):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def as_text(value: Any) -> str:
    """A raw value as a string (numbers read from a file become their text)."""
    return value if isinstance(value, str) else str(value)


def tokenize_text(tokenizer: Tokenizer, value: Any, lower: bool = False) -> List[str]:
    """The tokens of one raw value (as text, lowercased first when ``lower``)."""
    text = as_text(value)
    return tokenizer.tokenize(text.lower() if lower else text)


def tokenize_data(tokenizer: Tokenizer, data: Iterable[Any], lower: bool = False) -> Iterator[List[str]]:
    """The tokens of every value of ``data`` (see :func:`flatten_values`), one list per value."""
    return (tokenize_text(tokenizer, value, lower) for value in flatten_values(data))
