"""Word-level tokenizers: a Penn-Treebank-style regex tokenizer and an n-gram tokenizer on top of it."""

from __future__ import annotations

import re
from typing import Any, Iterable, List, Optional, Union

from flambe.tokenizer.tokenizer import Tokenizer

# One pass of ``findall``; the alternatives are tried in order at each position.
_TOKEN_RE = re.compile(
    r"""
      \w+?(?=(?i:n't)\b)                 # the word before a negation clitic: "do" in "don't", "ca" in "can't"
    | (?i:n't)\b                         # the negation clitic itself: "n't"
    | \b(?i:can)(?=(?i:not)\b)           # "cannot" -> "can" "not"
    | '(?i:s|m|d|ll|re|ve)\b             # other clitics: 's 'm 'd 'll 're 've
    | (?:[^\W\d_]\.){2,}                 # abbreviations: U.S. e.g.
    | \d+(?:[.,]\d+)+                    # numbers with separators: 3.14 1,000
    | \w+(?:-\w+)*                       # words, hyphenated words kept whole: re-imagining
    | \.{2,}|-{2,}|`{2}|'{2}             # ellipsis, dashes, `` and '' quotes
    | [^\w\s]                            # any other symbol on its own
    """,
    re.VERBOSE,
)

#: A small English stop-word list (function words only), used by :class:`NGramsTokenizer`.
ENGLISH_STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves
's 're 've 'll 'd 'm n't
""".split())


class WordTokenizer(Tokenizer):
    """Split text into words and punctuation, Penn Treebank style, with a single regular expression.

    Punctuation becomes separate tokens, contractions are split into their clitics (``"don't"`` ->
    ``["do", "n't"]``, ``"I'm"`` -> ``["I", "'m"]``, ``"cannot"`` -> ``["can", "not"]``), while
    hyphenated words (``re-imagining``), numbers with separators (``3.14``, ``1,000``), abbreviations
    (``U.S.``), ellipses and dash runs stay whole. Quotes are kept as written. No external data is
    needed.

    Parameters
    ----------
    **kwargs
        Accepted for compatibility with Flambé's signature; no option changes the behaviour.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = dict(kwargs)

    def tokenize(self, example: str) -> List[str]:
        """The word and punctuation tokens of ``example`` (see :meth:`Tokenizer.tokenize`)."""
        return _TOKEN_RE.findall(example)


class NGramsTokenizer(Tokenizer):
    """Word n-grams (tokens from :class:`WordTokenizer`, joined with one space).

    Examples
    --------
    >>> NGramsTokenizer(ngrams=2).tokenize("hi how are you?")
    ['hi how', 'how are', 'are you', 'you ?']
    >>> NGramsTokenizer(ngrams=[1, 2]).tokenize("hi how are you")
    ['hi', 'how', 'are', 'you', 'hi how', 'how are', 'are you']

    Parameters
    ----------
    ngrams : Union[int, List[int]]
        An n, or a list of n: all n-grams of each n are produced, in the order of the list.
    exclude_stopwords : bool
        Remove stop words (case-insensitively) before forming the n-grams.
    stop_words : List[str], optional
        The stop words to remove; defaults to :data:`ENGLISH_STOP_WORDS`.
    """

    def __init__(self, ngrams: Union[int, List[int]] = 1, exclude_stopwords: bool = False,
                 stop_words: Optional[List] = None) -> None:
        sizes = [ngrams] if isinstance(ngrams, int) else list(ngrams)
        if not sizes or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes):
            raise ValueError(f"ngrams must be a positive int or a non-empty list of them, got {ngrams!r}")
        self.ngrams = ngrams
        self.sizes = sizes
        self.exclude_stopwords = exclude_stopwords
        words: Iterable[str] = ENGLISH_STOP_WORDS if stop_words is None else stop_words
        self.stop_words = frozenset(str(w).lower() for w in words)

    @staticmethod
    def _tokenize(example: Union[str, List[str]], n: int) -> List[str]:
        """The n-grams of ``example`` (a string, split by :class:`WordTokenizer`, or a token list)."""
        tokens = _TOKEN_RE.findall(example) if isinstance(example, str) else list(example)
        if n == 1:
            return tokens
        return [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]

    def tokenize(self, example: str) -> List[str]:
        """The n-grams of ``example``, grouped by n in the order of ``ngrams`` (see :meth:`Tokenizer.tokenize`)."""
        tokens = _TOKEN_RE.findall(example)
        if self.exclude_stopwords:
            stop = self.stop_words
            tokens = [t for t in tokens if t.lower() not in stop]
        out: List[str] = []
        for n in self.sizes:
            out.extend(self._tokenize(tokens, n))
        return out
