"""Character-level tokenizer."""

from __future__ import annotations

from typing import List

from flambe.tokenizer.tokenizer import Tokenizer


class CharTokenizer(Tokenizer):
    """Split text into its characters (spaces included)."""

    def tokenize(self, example: str) -> List[str]:
        """The characters of ``example``, one string each (see :meth:`Tokenizer.tokenize`)."""
        return list(example)
