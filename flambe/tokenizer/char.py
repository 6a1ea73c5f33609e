"""Character-level tokenizer."""

from __future__ import annotations

from typing import List

from flambe.tokenizer.tokenizer import Tokenizer


class CharTokenizer(Tokenizer):
    """Split text into its characters (spaces included)."""

    def tokenize(self, example: str) -> List[str]:
        """Tokenize an input example.

        Parameters
        ----------
        example : str
            The input example, as a string.

        Returns
        -------
        List[str]
            One string per character.
        """
        return list(example)
