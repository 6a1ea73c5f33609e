"""BoWField: bag-of-words count vectors over a vocabulary of frequent words."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from typing import Any, Dict, Optional

import torch

from flambe.field.field import Field, tokenize_data, tokenize_text
from flambe.tokenizer import Tokenizer, WordTokenizer


class BoWField(Field):
    """Featurize raw text as a bag of words: a float vector of token counts over the vocabulary.

    The vocabulary holds ``unk_token`` first (id 0), then the words seen at least ``min_freq`` times
    over every :meth:`setup` call so far, in the order they reached that count. Tokens outside the
    vocabulary count towards ``unk`` (or are dropped without an unknown token).

    Examples
    --------
    >>> f = BoWField(min_freq=2, normalize=True)
    >>> f.setup(['thank you', 'thank you very much', 'thanks a lot'])
    >>> list(f.vocab)
    ['<unk>', 'thank', 'you']
    >>> f.process("thank you really. You help was awesome")
    tensor([0.7500, 0.1250, 0.1250])

    Parameters
    ----------
    tokenizer : Tokenizer, optional
        Defaults to :class:`~flambe.tokenizer.WordTokenizer`.
    lower : bool
        Lowercase the text before tokenizing it.
    unk_token : str, optional
        The unknown token (None drops unknown words).
    min_freq : int
        The number of occurrences a word needs to enter the vocabulary.
    normalize : bool
        Divide the counts by their sum (an empty bag stays all zeros).
    scale_factor : float, optional
        Multiply the (normalized) vector by this factor.

    Attributes
    ----------
    vocab : Dict[str, int]
        Token to position in the vector.
    word_counts : Dict[str, int]
        Occurrences of every word seen by :meth:`setup`.
    """

    def __init__(self, tokenizer: Optional[Tokenizer] = None, lower: bool = False,
                 unk_token: Optional[str] = "<unk>", min_freq: int = 5, normalize: bool = False,
                 scale_factor: Optional[float] = None) -> None:
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        self.tokenizer = tokenizer if tokenizer is not None else WordTokenizer()
        self.lower = lower
        self.unk = unk_token
        self.min_freq = min_freq
        self.normalize = normalize
        self.scale_factor = scale_factor
        self.vocab: Dict[str, int] = {unk_token: 0} if unk_token is not None else {}
        self.word_counts: Dict[str, int] = {}
        self.register_attrs("vocab", "word_counts")

    @property
    def vocab_size(self) -> int:
        """The length of the vectors."""
        return len(self.vocab)

    def setup(self, *data: Any) -> None:
        """Count the words of ``data`` (every split); add those reaching ``min_freq`` to the vocabulary."""
        batch = Counter(chain.from_iterable(tokenize_data(self.tokenizer, data, self.lower)))
        counts = self.word_counts
        vocab = self.vocab
        for word, n in batch.items():
            counts[word] = counts.get(word, 0) + n
            if word not in vocab and counts[word] >= self.min_freq:
                vocab[word] = len(vocab)

    def process(self, example: Any) -> torch.Tensor:
        """The bag-of-words vector of one raw text ``example``: a float vector of size ``vocab_size``."""
        vocab = self.vocab
        tokens = tokenize_text(self.tokenizer, example, self.lower)
        if self.unk is not None:
            unk = vocab[self.unk]
            ids = [vocab.get(t, unk) for t in tokens]
        else:
            ids = [vocab[t] for t in tokens if t in vocab]
        vector = torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=len(vocab)).to(torch.float)
        if self.normalize:
            total = vector.sum()
            if total > 0:
                vector = vector / total
        if self.scale_factor is not None:
            vector = vector * self.scale_factor
        return vector
