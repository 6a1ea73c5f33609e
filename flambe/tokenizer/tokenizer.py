"""The Tokenizer interface: a component that turns a string into a list of token strings."""

from __future__ import annotations

import abc
from typing import List

from flambe.compile import Component


class Tokenizer(Component, metaclass=abc.ABCMeta):
    """Base interface to a tokenizer.

    Tokenizers implement :meth:`tokenize`, which takes a string and returns a list of strings.
    Calling a tokenizer is the same as calling :meth:`tokenize`.
    """

    @abc.abstractmethod
    def tokenize(self, example: str) -> List[str]:
        """Tokenize an input example.

        Parameters
        ----------
        example : str
            The input example, as a string.

        Returns
        -------
        List[str]
            The output tokens.
        """

    def __call__(self, example: str) -> List[str]:
        """Tokenize ``example`` (same as :meth:`tokenize`)."""
        return self.tokenize(example)
