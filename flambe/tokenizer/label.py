"""Label tokenizer: one label, or several joined by a separator."""

from __future__ import annotations

from typing import Any, List, Optional

from flambe.tokenizer.tokenizer import Tokenizer


class LabelTokenizer(Tokenizer):
    """Tokenize a label string into a list of one label, or of several with ``multilabel_sep``.

    Labels are stripped of surrounding whitespace; empty pieces of a multilabel string are dropped.
    Non-string labels (numbers read from a file) are converted with ``str``.

    Parameters
    ----------
    multilabel_sep : str, optional
        The separator between labels of a multilabel example (e.g. ``','``).
    """

    def __init__(self, multilabel_sep: Optional[str] = None) -> None:
        if multilabel_sep == "":
            raise ValueError("multilabel_sep must be a non-empty string or None")
        self.multilabel_sep = multilabel_sep

    def tokenize(self, example: Any) -> List[str]:
        """Tokenize an input example.

        Parameters
        ----------
        example : str
            The input label(s), as a string.

        Returns
        -------
        List[str]
            The labels.
        """
        text = example if isinstance(example, str) else str(example)
        if self.multilabel_sep is None:
            return [text.strip()]
        return [part.strip() for part in text.split(self.multilabel_sep) if part.strip()]
