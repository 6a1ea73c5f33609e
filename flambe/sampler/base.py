"""BaseSampler: shuffled, padded mini-batches over a sequence of examples, reproducible from a seed."""

from __future__ import annotations

from itertools import count
from operator import itemgetter
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from flambe.compile import alias
from flambe.sampler.sampler import (
    Sampler,
    batches_per_epoch,
    epoch_permutation,
    random_seed,
    seeded_generator,
    stream_start,
)

Batch = Tuple[torch.Tensor, ...]


# ---------------------------------------------------------------------- padding
def _as_tensor(value: Any, pad: Union[int, float]) -> torch.Tensor:
    """A tensor for one entry of a column: tensors as they are, nested lists padded, numbers wrapped."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        if not value:
            return torch.zeros(0, dtype=torch.long)
        return _pad_general(value, pad)
    if isinstance(value, (str, bytes)):
        raise ValueError(f"cannot batch the non-numeric value {value!r:.40}: process text columns with a Field")
    return torch.tensor(value)


def _pad_general(col: Sequence[Any], pad: Union[int, float]) -> torch.Tensor:
    """Stack the entries of a column into one tensor padded to the max size along every dimension."""
    tensors = [_as_tensor(value, pad) for value in col]
    ndim = tensors[0].dim()
    if any(t.dim() != ndim for t in tensors):
        dims = sorted({t.dim() for t in tensors})
        raise ValueError(f"cannot batch a column whose entries have different numbers of dimensions {dims}")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dtype:
            dtype = torch.promote_types(dtype, t.dtype)
    max_sizes = [max(t.shape[d] for t in tensors) for d in range(ndim)]
    out = torch.full((len(tensors), *max_sizes), pad, dtype=dtype)
    for i, t in enumerate(tensors):
        out[i][tuple(slice(0, size) for size in t.shape)] = t
    return out


def _pad_1d(col: Sequence[torch.Tensor], pad: Union[int, float]) -> Optional[torch.Tensor]:
    """Pad 1-D tensors to ``[B x max length]`` with one concatenation and one masked scatter.

    About 3x faster than ``pad_sequence`` on CPU for short rows (no per-row copy). Returns None when
    the entries are not all 1-D.
    """
    flat = torch.cat(col)  # type: ignore[arg-type]
    if flat.dim() != 1:
        return None
    lengths = list(map(torch.Tensor.numel, col))
    width = max(lengths)
    mask = torch.arange(width, device=flat.device) < torch.tensor(lengths, dtype=torch.long,
                                                                  device=flat.device).unsqueeze(1)
    out = torch.full((len(lengths), width), pad, dtype=flat.dtype, device=flat.device)
    return out.masked_scatter_(mask, flat)


def pad_column(col: Sequence[Any], pad: Union[int, float] = 0) -> torch.Tensor:
    """Batch one column (one entry per example) into a ``[B x ...]`` tensor filled with ``pad``.

    0-d tensors stack to ``[B]``; 1-D tensors pad to ``[B x max length]``; n-D tensors pad to the max
    size along every dimension (``[n_i x m_i]`` entries give ``[B x max n x max m]``). An entry may also
    be a (nested) list of tensors, e.g. a list of sentences ``[t(2), t(3)]``: it is first padded into one
    tensor (``[2 x 3]``), so ``[[t(2), t(3)], [t(3), t(2), t(4)]]`` batches to ``[2 x 3 x 4]``. Numbers
    become 0-d tensors.
    """
    first = col[0]
    if isinstance(first, torch.Tensor):
        ndim = first.dim()
        try:
            if ndim == 0:
                return torch.stack(col)  # type: ignore[arg-type]
            if ndim == 1:
                padded = _pad_1d(col, pad)
                if padded is not None:
                    return padded
        except (RuntimeError, TypeError):
            pass  # mixed shapes or types: the general path handles them or says what is wrong
    return _pad_general(col, pad)


def collate_fn(data: Sequence[Any], pad: Union[int, float, Sequence[Union[int, float]]] = 0) -> Batch:
    """Turn a list of examples into a mini-batch.

    Parameters
    ----------
    data : Sequence
        The sampled examples: each a tuple of tensors (one per column) or a single tensor.
    pad : int or Sequence[int]
        The padding value, or one per column.

    Returns
    -------
    Tuple[torch.Tensor, ...]
        One batch-first tensor per column (see :func:`pad_column`); a 1-tuple for single-tensor examples.
    """
    first = data[0]
    if isinstance(first, torch.Tensor):
        pads = _column_pads(pad, 1)
        return (pad_column(data, pads[0]),)
    n_cols = len(first)
    pads = _column_pads(pad, n_cols)
    columns = list(zip(*data))
    if len(columns) != n_cols or len(set(map(len, data))) != 1:
        raise ValueError(f"examples of one batch have different numbers of columns ({n_cols} in the first)")
    return tuple(pad_column(col, p) for col, p in zip(columns, pads))


def _column_pads(pad: Union[int, float, Sequence[Union[int, float]]], n_cols: int) -> Sequence[Union[int, float]]:
    if isinstance(pad, (int, float)):
        return (pad,) * n_cols
    if len(pad) != n_cols:
        raise ValueError(f"pad_index has {len(pad)} values but the examples have {n_cols} columns")
    return pad


class _Collate:
    """A picklable collate function with fixed padding values (for DataLoader workers)."""

    def __init__(self, pad: Union[int, Sequence[int]]) -> None:
        self.pad = pad

    def __call__(self, examples: Sequence[Any]) -> Batch:
        return collate_fn(examples, self.pad)


def _fetch(data: Sequence[Any], indices: List[int]) -> Sequence[Any]:
    """The examples at ``indices`` (one C-level call for lists and tuples; ``__getitems__`` if offered)."""
    if type(data) in (list, tuple):
        return [data[indices[0]]] if len(indices) == 1 else itemgetter(*indices)(data)
    getitems = getattr(data, "__getitems__", None)
    if getitems is not None:
        return getitems(indices)
    return [data[i] for i in indices]


# ---------------------------------------------------------------------- the sampler
@alias("BaseSampler")  # re-registered last so that dumps keep writing !BaseSampler
@alias("BatchSampler")
class BaseSampler(Sampler):
    """Shuffled (or ordered) mini-batches, each column padded to the max size along every dimension.

    ``data`` is a sequence (a list, a dataset split) whose item ``i`` is a tuple of tensors, one per
    column, or a single tensor. Each batch is a tuple of batch-first tensors: 0-d entries stack to
    ``[B]``, 1-D entries pad to ``[B x max length]``, n-D (and nested lists of) tensors pad along every
    dimension (see :func:`pad_column`). Also available as ``!BatchSampler``.

    **Order and seeds.** The order of epoch ``e`` is a pure function of ``(base_seed, e)``: a
    ``torch.Generator`` seeded with ``mix_seed(base_seed, e)`` draws the permutation. Epochs differ from
    each other, two samplers with the same ``seed`` yield the same batches in any process, and a stream
    can be re-created at any position with ``start_epoch``/``skip_batches`` (see :meth:`sample`).
    ``base_seed`` is ``seed``, or when ``seed`` is None a number drawn once from torch's global generator
    at construction; it is saved with the sampler's state, so a restored sampler replays the same
    stream.

    Parameters
    ----------
    batch_size : int
        Examples per batch (default 64).
    shuffle : bool
        Shuffle the examples every epoch (default True); False keeps the data order.
    pad_index : int or Sequence[int]
        The padding value, or one per column (default 0).
    n_workers : int
        DataLoader worker processes that fetch and collate batches (default 0: in this process). The
        batches are the same as with 0 workers.
    pin_memory : bool
        Put batches in pinned memory (ignored when CUDA is not available).
    seed : int, optional
        The seed of the shuffling (default: drawn at construction, see above).
    downsample : float, optional
        In (0, 1]: keep only this fraction of the examples (``floor(fraction * len(data))``, at least
        one), chosen at random once with ``downsample_seed`` and kept in data order.
    downsample_seed : int, optional
        The seed of the downsampling choice (default: ``base_seed``).
    drop_last : bool
        Drop the last batch of each epoch when it is smaller than ``batch_size``.
    """

    def __init__(self, batch_size: int = 64, shuffle: bool = True, pad_index: Union[int, Sequence[int]] = 0,
                 n_workers: int = 0, pin_memory: bool = False, seed: Optional[int] = None,
                 downsample: Optional[float] = None, downsample_seed: Optional[int] = None,
                 drop_last: bool = False) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if downsample is not None and not 0.0 < float(downsample) <= 1.0:
            raise ValueError(f"downsample must be a fraction in (0, 1], not {downsample!r}")
        if int(n_workers) < 0:
            raise ValueError(f"n_workers must be >= 0, not {n_workers}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.pad = pad_index if isinstance(pad_index, (int, float)) else tuple(pad_index)
        self.n_workers = int(n_workers)
        self.pin_memory = bool(pin_memory)
        self.seed = seed
        self.downsample = downsample
        self.downsample_seed = downsample_seed
        self.drop_last = bool(drop_last)
        self.base_seed = int(seed) if seed is not None else random_seed()
        self.register_attrs("base_seed")

    # ------------------------------------------------------------------ order
    def _kept_indices(self, n: int) -> torch.Tensor:
        """The indices of the examples used (all of them, or the downsampled ones in data order)."""
        if self.downsample is None or self.downsample >= 1.0 or n == 0:
            return torch.arange(n)
        keep = max(1, int(self.downsample * n))
        seed = self.downsample_seed if self.downsample_seed is not None else self.base_seed
        chosen = torch.randperm(n, generator=seeded_generator(seed, 0x5EED))[:keep]
        return chosen.sort().values

    def epoch_order(self, data: Sequence[Any], epoch: int) -> List[int]:
        """The example indices of ``epoch`` in the order they are batched (before ``drop_last``)."""
        return self._epoch_order(self._kept_indices(len(data)), epoch)

    def _epoch_order(self, kept: torch.Tensor, epoch: int) -> List[int]:
        if not self.shuffle:
            return kept.tolist()
        return kept[epoch_permutation(len(kept), self.base_seed, epoch)].tolist()

    def _index_batches(self, kept: torch.Tensor, n_batches: int, epoch: int, first: int,
                       end_epoch: Optional[int]) -> Iterator[List[int]]:
        """Index lists of the stream from batch ``first`` of ``epoch`` until ``end_epoch`` (or forever)."""
        bs = self.batch_size
        for e in count(epoch):
            if end_epoch is not None and e >= end_epoch:
                return
            order = self._epoch_order(kept, e)
            for b in range(first, n_batches):
                yield order[b * bs:(b + 1) * bs]
            first = 0

    # ------------------------------------------------------------------ public API
    def length(self, data: Sequence[Any]) -> int:
        """The number of batches per epoch over ``data`` (see :meth:`Sampler.length`)."""
        return batches_per_epoch(len(self._kept_indices(len(data))), self.batch_size, self.drop_last)

    def sample(self, data: Sequence[Any], n_epochs: int = 1, start_epoch: int = 0,
               skip_batches: int = 0) -> Iterator[Batch]:
        """Sample from the list of examples and yield batches.

        The stream is epochs ``start_epoch, start_epoch + 1, ...`` (``n_epochs`` of them, or forever with
        -1), without its first ``skip_batches`` batches; skipping is cheap (no example is read), and
        ``skip_batches`` may exceed an epoch. A consumer that has drawn ``k`` batches from
        ``sample(data, -1)`` resumes with ``sample(data, -1, skip_batches=k)``, or equivalently
        ``sample(data, -1, start_epoch=k // L, skip_batches=k % L)`` with ``L = length(data)``.

        Parameters
        ----------
        data : Sequence[Sequence[torch.Tensor]]
            The examples, each a tuple of tensors (or one tensor).
        n_epochs : int, optional
            The number of epochs to run (default 1). Use -1 to run forever.
        start_epoch : int, optional
            The epoch the stream starts at (its order is that epoch's order).
        skip_batches : int, optional
            Batches dropped from the start of the stream.

        Yields
        ------
        Tuple[torch.Tensor, ...]
            A batch of data, one padded tensor per column.

        Raises
        ------
        ValueError
            On bad arguments, or for ``n_epochs=-1`` when an epoch would have no batch.
        """
        kept = self._kept_indices(len(data))
        n_batches = batches_per_epoch(len(kept), self.batch_size, self.drop_last)
        start = stream_start(n_batches, n_epochs, start_epoch, skip_batches,
                             f"{len(kept)} examples make no batch of {self.batch_size}"
                             f"{' (drop_last)' if self.drop_last else ''}")
        if start is None:
            return iter(())
        epoch, first, end_epoch = start
        indices = self._index_batches(kept, n_batches, epoch, first, end_epoch)
        if self.n_workers > 0:
            return self._sample_with_workers(data, indices)
        return self._sample_here(data, indices)

    def _sample_here(self, data: Sequence[Any], indices: Iterator[List[int]]) -> Iterator[Batch]:
        pad = self.pad
        pin = self.pin_memory and torch.cuda.is_available()
        for idx in indices:
            batch = collate_fn(_fetch(data, idx), pad)
            yield tuple(t.pin_memory() for t in batch) if pin else batch

    def _sample_with_workers(self, data: Sequence[Any], indices: Iterator[List[int]]) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            data,  # type: ignore[arg-type]
            batch_sampler=indices,  # type: ignore[arg-type]
            num_workers=self.n_workers,
            collate_fn=_Collate(self.pad),
            pin_memory=self.pin_memory and torch.cuda.is_available(),
        )
        yield from loader
