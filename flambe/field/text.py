"""TextField: tokenization, a vocabulary built from the data, and optional pretrained embeddings."""

from __future__ import annotations

from itertools import chain
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from flambe.field.embeddings import FORMATS, load_vectors
from flambe.field.field import Field, tokenize_data, tokenize_text
from flambe.tokenizer import Tokenizer, WordTokenizer

#: Seed of the random rows given to words without a pretrained vector (combined with their first id).
EMBEDDINGS_SEED = 1234


class TextField(Field):
    """Featurize raw text: tokenize, map tokens to ids, optionally add start and end tokens.

    The vocabulary is built by :meth:`setup` from every split of the data, in the order words first
    appear. The special tokens that are given take the first ids in the order pad, unk, sos, eos, so
    ``pad`` is 0 and ``unk`` is 1 with the defaults. Calling :meth:`setup` again only adds new words:
    ids never change. Tokens missing from the vocabulary map to ``unk``.

    With ``embeddings`` (a local file), the field also builds :attr:`embedding_matrix`, one row per
    vocabulary id: the pretrained vector of the word, zeros for the pad token, and a random normal
    vector for the other specials (deterministic: the generator is seeded by :data:`EMBEDDINGS_SEED`
    and the first id of the rows a setup call adds; the scale is the spread of the pretrained vectors
    found). Each :meth:`setup` call only appends rows. Words of the data that the file lacks are left
    out of the vocabulary (they map to ``unk``) unless ``unk_init_all`` is True, in which case each gets
    its own id and a random row.

    Parameters
    ----------
    tokenizer : Tokenizer, optional
        Defaults to :class:`~flambe.tokenizer.WordTokenizer`.
    lower : bool
        Lowercase the text before tokenizing it.
    pad_token, unk_token, sos_token, eos_token : str, optional
        The special tokens (None leaves one out).
    embeddings : str, optional
        Path of a pretrained embeddings file.
    embeddings_format : str
        ``'glove'`` (no header) or ``'word2vec'`` / ``'fasttext'`` (a ``count dim`` header line).
    embeddings_binary : bool
        The file is in the word2vec binary format.
    unk_init_all : bool
        Give every word of the data an id, with a random row when the file lacks it.
    max_seq_len : int, optional
        Cut processed sequences to at most this many ids (start and end tokens included and kept).

    Attributes
    ----------
    vocab : Dict[str, int]
        Token to id.
    embedding_matrix : torch.Tensor or None
        ``[vocab_size x dim]`` float tensor when ``embeddings`` is given (after :meth:`setup`).
    """

    def __init__(self, tokenizer: Optional[Tokenizer] = None, lower: bool = False,
                 pad_token: Optional[str] = "<pad>", unk_token: Optional[str] = "<unk>",
                 sos_token: Optional[str] = None, eos_token: Optional[str] = None,
                 embeddings: Optional[str] = None, embeddings_format: str = "glove",
                 embeddings_binary: bool = False, unk_init_all: bool = False,
                 max_seq_len: Optional[int] = None) -> None:
        if embeddings_format not in FORMATS:
            raise ValueError(f"Unknown embeddings_format '{embeddings_format}'; expected one of {FORMATS}")
        if max_seq_len is not None and max_seq_len < 1 + (sos_token is not None) + (eos_token is not None):
            raise ValueError(f"max_seq_len={max_seq_len} leaves no room for a token")
        self.tokenizer = tokenizer if tokenizer is not None else WordTokenizer()
        self.lower = lower
        self.pad = pad_token
        self.unk = unk_token
        self.sos = sos_token
        self.eos = eos_token
        self.embeddings = embeddings
        self.embeddings_format = embeddings_format
        self.embeddings_binary = embeddings_binary
        self.unk_init_all = unk_init_all
        self.max_seq_len = max_seq_len
        self.vocab: Dict[str, int] = {}
        for token in (pad_token, unk_token, sos_token, eos_token):
            if token is not None and token not in self.vocab:
                self.vocab[token] = len(self.vocab)
        self.embedding_matrix: Optional[torch.Tensor] = None
        self._absent: set = set()  # words the embeddings file lacks (not saved: it only saves re-reading)
        self.register_attrs("vocab", "embedding_matrix")

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        """The number of ids (special tokens included)."""
        return len(self.vocab)

    @property
    def pad_idx(self) -> Optional[int]:
        """The id of the pad token (None without one)."""
        return self.vocab.get(self.pad) if self.pad is not None else None

    @property
    def unk_idx(self) -> Optional[int]:
        """The id of the unknown token (None without one)."""
        return self.vocab.get(self.unk) if self.unk is not None else None

    @property
    def specials(self) -> List[str]:
        """The special tokens, in id order."""
        return [t for t in (self.pad, self.unk, self.sos, self.eos) if t is not None]

    # ------------------------------------------------------------------ tokenization
    def tokenize(self, example: Any) -> List[str]:
        """The tokens of one raw example (lowercased first when ``lower``)."""
        return tokenize_text(self.tokenizer, example, self.lower)

    def numericalize(self, tokens: List[str]) -> List[int]:
        """Token ids, with start/end tokens added and ``max_seq_len`` applied.

        Raises
        ------
        ValueError
            For a token missing from the vocabulary when there is no unknown token.
        """
        vocab = self.vocab
        unk = self.unk_idx
        if unk is None:
            missing = [t for t in tokens if t not in vocab]
            if missing:
                raise ValueError(f"Tokens {missing[:5]} are not in the vocabulary and TextField has no unk_token")
            ids = [vocab[t] for t in tokens]
        else:
            get = vocab.get
            ids = [get(t, unk) for t in tokens]
        if self.max_seq_len is not None:
            room = self.max_seq_len - (self.sos is not None) - (self.eos is not None)
            ids = ids[:room]
        if self.sos is not None:
            ids.insert(0, vocab[self.sos])
        if self.eos is not None:
            ids.append(vocab[self.eos])
        return ids

    # ------------------------------------------------------------------ the Field interface
    def setup(self, *data: Any) -> None:
        """Add the words of ``data`` (every split) to the vocabulary, and their pretrained vectors.

        Parameters
        ----------
        *data : np.ndarray
            One array (or list) of raw strings per split.
        """
        vocab = self.vocab
        words = chain.from_iterable(tokenize_data(self.tokenizer, data, self.lower))
        new = [w for w in dict.fromkeys(words) if w not in vocab]
        if self.embeddings is None:
            vocab.update(zip(new, range(len(vocab), len(vocab) + len(new))))
            return
        self._setup_embeddings(new)

    def process(self, example: Any) -> torch.Tensor:
        """Tokenize and numericalize one raw text ``example``: a 1-D LongTensor of ids."""
        return torch.tensor(self.numericalize(self.tokenize(example)), dtype=torch.long)

    # ------------------------------------------------------------------ embeddings
    def _setup_embeddings(self, new: List[str]) -> None:
        vocab = self.vocab
        start = 0 if self.embedding_matrix is None else self.embedding_matrix.shape[0]
        if start == len(vocab) and not new:
            return
        pending = list(vocab)[start:]  # ids without a row yet (the specials, the first time)
        lookup = [w for w in new if w not in self._absent] if not self.unk_init_all else new
        found, dim = load_vectors(self.embeddings, chain(pending, lookup), self.embeddings_format,
                                  self.embeddings_binary)
        if self.embedding_matrix is not None and dim != self.embedding_matrix.shape[1]:
            raise ValueError(f"'{self.embeddings}' has {dim}-dimensional vectors; the matrix has "
                             f"{self.embedding_matrix.shape[1]}")
        if not self.unk_init_all:
            self._absent.update(w for w in lookup if w not in found)
            new = [w for w in lookup if w in found]
        vocab.update(zip(new, range(len(vocab), len(vocab) + len(new))))
        words = pending + new
        rows = np.empty((len(words), dim), dtype=np.float32)
        random_rows = []
        for i, word in enumerate(words):
            vector = found.get(word)
            if vector is not None:
                rows[i] = vector
            elif word == self.pad:
                rows[i] = 0.0
            else:
                random_rows.append(i)
        if random_rows:
            if found:
                scale = float(np.std(np.stack(list(found.values()))))
            elif self.embedding_matrix is not None and self.embedding_matrix.numel():
                scale = float(self.embedding_matrix.std())
            else:
                scale = 1.0
            rng = np.random.default_rng([EMBEDDINGS_SEED, start])
            rows[random_rows] = rng.normal(0.0, scale or 1.0, size=(len(random_rows), dim))
        block = torch.from_numpy(rows)
        self.embedding_matrix = block if self.embedding_matrix is None else \
            torch.cat([self.embedding_matrix, block], dim=0)

    def _load_state(self, state_dict: Any, prefix: str, local_metadata: Dict[str, Any], strict: bool,
                    missing_keys: List[str], unexpected_keys: List[str], error_msgs: List[str]) -> None:
        self._absent = set()
