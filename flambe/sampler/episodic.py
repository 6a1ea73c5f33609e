"""EpisodicSampler: few-shot episodes of support and query examples over a few classes."""

from __future__ import annotations

from itertools import count
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from flambe.sampler.base import pad_column
from flambe.sampler.sampler import Sampler, check_stream_args, random_seed, seeded_generator

Episode = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class EpisodicSampler(Sampler):
    """Few-shot episodes: a few classes, ``n_support`` support and ``n_query`` query examples each.

    ``data`` is a sequence of ``(source, label)`` pairs: ``source`` a tensor (usually a 1-D sequence of
    token ids), ``label`` a 0-d (or one-element) integer tensor. Each episode:

    1. picks ``n_classes`` classes at random (all classes when ``n_classes`` is None) in a random order,
       and relabels them ``0 .. n_classes - 1`` in that order (so ids carry no meaning across episodes);
    2. draws, without replacement, ``n_support`` support examples of each class, and query examples
       among the rest: ``n_query`` of each class with ``balance_query=True``; otherwise
       ``n_query * n_classes`` drawn uniformly from the remaining examples of the episode's classes (so
       the query follows the classes' frequencies);
    3. yields ``(query_source, query_target, support_source, support_target)``: sources padded to
       ``[Q x S]`` / ``[K x S]`` with ``pad_index``, targets ``[Q]`` / ``[K]`` long tensors of episode
       labels. The support is grouped by episode label (label 0 first); the query is shuffled.

    Every class must have at least ``n_support + n_query`` examples: :meth:`sample` raises a
    ``ValueError`` naming the classes that do not (nothing is drawn with replacement).

    An epoch is ``n_episodes`` episodes, so ``n_epochs`` epochs yield ``n_episodes * n_epochs`` batches.
    Episode ``i`` of the stream (counting from epoch 0) is a pure function of ``(base_seed, i)``;
    ``base_seed`` is ``seed``, or a number drawn from torch's global generator at construction (saved
    with the sampler's state).

    Parameters
    ----------
    n_support : int
        Support examples per class.
    n_query : int
        Query examples per class (on average when ``balance_query`` is False).
    n_episodes : int
        Episodes per epoch.
    n_classes : int, optional
        Classes per episode (default: all classes).
    pad_index : int
        The padding value of the sources (default 0).
    balance_query : bool
        Exactly ``n_query`` query examples per class (default False, see above).
    seed : int, optional
        The seed of the episodes.
    """

    def __init__(self, n_support: int, n_query: int, n_episodes: int, n_classes: Optional[int] = None,
                 pad_index: int = 0, balance_query: bool = False, seed: Optional[int] = None) -> None:
        if int(n_support) < 1 or int(n_query) < 1 or int(n_episodes) < 1:
            raise ValueError("n_support, n_query and n_episodes must be at least 1, not "
                             f"{n_support}, {n_query} and {n_episodes}")
        if n_classes is not None and int(n_classes) < 1:
            raise ValueError(f"n_classes must be at least 1, not {n_classes}")
        self.n_support = int(n_support)
        self.n_query = int(n_query)
        self.n_episodes = int(n_episodes)
        self.n_classes = None if n_classes is None else int(n_classes)
        self.pad = pad_index
        self.balance_query = bool(balance_query)
        self.seed = seed
        self.base_seed = int(seed) if seed is not None else random_seed()
        self.register_attrs("base_seed")

    def length(self, data: Sequence[Any]) -> int:
        """The number of batches (episodes) per epoch: ``n_episodes`` (see :meth:`Sampler.length`)."""
        return self.n_episodes

    def _classes(self, data: Sequence[Any]) -> Dict[int, List[int]]:
        """Example indices of each label, after checking that every class has enough of them."""
        by_class: Dict[int, List[int]] = {}
        for i in range(len(data)):
            example = data[i]
            if len(example) != 2:
                raise ValueError(f"EpisodicSampler needs (source, label) examples; example {i} has "
                                 f"{len(example)} columns")
            by_class.setdefault(int(example[1].reshape(-1)[0]), []).append(i)
        if not by_class:
            raise ValueError("EpisodicSampler got no examples")
        n_classes = self.n_classes if self.n_classes is not None else len(by_class)
        if n_classes > len(by_class):
            raise ValueError(f"n_classes={n_classes} but the data has only {len(by_class)} classes")
        need = self.n_support + self.n_query
        small = sorted(label for label, idx in by_class.items() if len(idx) < need)
        if small:
            shown = ", ".join(f"{label} ({len(by_class[label])})" for label in small[:10])
            raise ValueError(f"every class needs at least n_support + n_query = {need} examples; these do "
                             f"not: {shown}{' ...' if len(small) > 10 else ''}")
        return by_class

    def _episode(self, data: Sequence[Any], labels: List[int], by_class: Dict[int, List[int]],
                 episode: int) -> Episode:
        generator = seeded_generator(self.base_seed, episode)
        n_classes = self.n_classes if self.n_classes is not None else len(labels)
        chosen = [labels[i] for i in torch.randperm(len(labels), generator=generator)[:n_classes].tolist()]
        support: List[Tuple[int, int]] = []
        query: List[Tuple[int, int]] = []
        pool: List[Tuple[int, int]] = []
        for new_label, label in enumerate(chosen):
            idx = by_class[label]
            order = torch.randperm(len(idx), generator=generator).tolist()
            support.extend((idx[j], new_label) for j in order[:self.n_support])
            rest = [(idx[j], new_label) for j in order[self.n_support:]]
            if self.balance_query:
                query.extend(rest[:self.n_query])
            else:
                pool.extend(rest)
        if self.balance_query:
            query = [query[j] for j in torch.randperm(len(query), generator=generator).tolist()]
        else:
            picks = torch.randperm(len(pool), generator=generator)[:self.n_query * n_classes].tolist()
            query = [pool[j] for j in picks]
        return (*self._collate(data, query), *self._collate(data, support))  # type: ignore[return-value]

    def _collate(self, data: Sequence[Any], examples: List[Tuple[int, int]]) -> Tuple[torch.Tensor, torch.Tensor]:
        sources = pad_column([data[i][0] for i, _ in examples], self.pad)
        targets = torch.tensor([label for _, label in examples], dtype=torch.long)
        return sources, targets

    def sample(self, data: Sequence[Any], n_epochs: int = 1, start_epoch: int = 0,
               skip_batches: int = 0) -> Iterator[Episode]:
        """Sample episodes from a list of (source, label) pairs.

        The stream is the episodes of epochs ``start_epoch, start_epoch + 1, ...`` (``n_epochs`` of them,
        -1 for forever) without its first ``skip_batches`` episodes.

        Parameters
        ----------
        data : Sequence[Sequence[torch.Tensor, torch.Tensor]]
            The input data as a list of (source, target) pairs.
        n_epochs : int, optional
            The number of epochs (default 1; -1 runs forever). The total number of batches is
            ``n_episodes * n_epochs``.
        start_epoch : int, optional
            The epoch the stream starts at.
        skip_batches : int, optional
            Episodes dropped from the start of the stream (cheap: nothing is drawn for them).

        Yields
        ------
        Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
            In order: the query source, query target, support source and support target tensors,
            batch-first.
        """
        check_stream_args(n_epochs, start_epoch, skip_batches)
        by_class = self._classes(data)
        first = start_epoch * self.n_episodes + skip_batches
        end = None if n_epochs == -1 else (start_epoch + n_epochs) * self.n_episodes
        return self._stream(data, sorted(by_class), by_class, first, end)

    def _stream(self, data: Sequence[Any], labels: List[int], by_class: Dict[int, List[int]], first: int,
                end: Optional[int]) -> Iterator[Episode]:
        for episode in count(first):
            if end is not None and episode >= end:
                return
            yield self._episode(data, labels, by_class, episode)
