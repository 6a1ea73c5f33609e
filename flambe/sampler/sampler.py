"""The Sampler interface, and the seeding helpers shared by flambe's samplers."""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Sequence, Tuple

import torch

from flambe.compile import Component

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def mix_seed(*values: int) -> int:
    """A well-mixed 63-bit seed derived from a sequence of integers (e.g. ``(seed, epoch)``).

    It is a pure function, the same in every process and on every platform, and neighbouring inputs
    give unrelated seeds (so seed 1 epoch 0 and seed 0 epoch 1 do not share an order).
    """
    state = 0
    for value in values:
        state = _splitmix64(state ^ (int(value) & _MASK64))
    return state & ((1 << 63) - 1)


def random_seed() -> int:
    """A 63-bit seed drawn from torch's global generator (so ``torch.manual_seed`` makes it reproducible)."""
    return int(torch.randint(0, 2 ** 62, (1,)).item())


def seeded_generator(*values: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`mix_seed` of ``values``."""
    generator = torch.Generator()
    generator.manual_seed(mix_seed(*values))
    return generator


def check_stream_args(n_epochs: int, start_epoch: int, skip_batches: int) -> None:
    """Validate the arguments that place a sampler's stream of batches."""
    if n_epochs < -1:
        raise ValueError(f"n_epochs must be -1 (forever) or >= 0, not {n_epochs}")
    if start_epoch < 0 or skip_batches < 0:
        raise ValueError(f"start_epoch and skip_batches must be >= 0, not {start_epoch} and {skip_batches}")


def batches_per_epoch(n_examples: int, batch_size: int, drop_last: bool) -> int:
    """Batches that ``n_examples`` make (a last, smaller batch counts unless ``drop_last``)."""
    return n_examples // batch_size if drop_last else math.ceil(n_examples / batch_size)


def epoch_permutation(n: int, base_seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` items in ``epoch``: a pure function of ``(base_seed, epoch)``."""
    return torch.randperm(n, generator=seeded_generator(base_seed, epoch))


def stream_start(n_batches: int, n_epochs: int, start_epoch: int, skip_batches: int,
                 no_batch: str) -> Optional[Tuple[int, int, Optional[int]]]:
    """Where a stream of batches begins: ``(epoch, first batch in it, end epoch or None for forever)``.

    None when an epoch makes no batch and the stream is finite (nothing to yield).

    Raises
    ------
    ValueError
        For an endless stream (``n_epochs=-1``) whose epochs make no batch; ``no_batch`` says why.
    """
    check_stream_args(n_epochs, start_epoch, skip_batches)
    if n_batches == 0:
        if n_epochs == -1:
            raise ValueError(f"cannot sample forever: {no_batch}")
        return None
    end = None if n_epochs == -1 else start_epoch + n_epochs
    return start_epoch + skip_batches // n_batches, skip_batches % n_batches, end


class Sampler(Component):
    """Base Sampler interface.

    A sampler turns a dataset split (a sequence of examples, each a tuple of tensors) into an iterator
    of batches, each a tuple of batch-first tensors. Implementations provide :meth:`sample` and
    :meth:`length`. Moving batches to a device is the Trainer's job.
    """

    def sample(self, data: Sequence[Any], n_epochs: int = 1) -> Iterator[Tuple[torch.Tensor, ...]]:
        """Sample from the list of examples and yield batches.

        Parameters
        ----------
        data : Sequence[Sequence[torch.Tensor]]
            The input data to sample from.
        n_epochs : int, optional
            The number of epochs in the output iterator (-1: forever).

        Yields
        ------
        Tuple[torch.Tensor, ...]
            A batch of data, as a tuple of tensors.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample(data, n_epochs)")

    def length(self, data: Sequence[Any]) -> int:
        """The number of batches :meth:`sample` yields per epoch over ``data``."""
        raise NotImplementedError(f"{type(self).__name__} must implement length(data)")
