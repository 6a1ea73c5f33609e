"""Padding-aware pooling over the sequence dimension: ``[B x S x H]`` (+ mask ``[B x S]``) -> ``[B x H]``.

A padding mask is ``1``/``True`` for real tokens and ``0``/``False`` for padding. It may have holes
anywhere (left or right padding both work). Without a mask every position counts as real.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch import Tensor

from flambe.nn.module import Module


def _check(data: Tensor, padding_mask: Optional[Tensor]) -> Optional[Tensor]:
    """Validate shapes; return the mask as a bool tensor (or None)."""
    if data.dim() != 3:
        raise ValueError(f"pooling expects data of shape [B x S x H], got {list(data.shape)}")
    if padding_mask is None:
        return None
    if padding_mask.shape != data.shape[:2]:
        raise ValueError(f"padding_mask must have shape {list(data.shape[:2])} (B x S), "
                         f"got {list(padding_mask.shape)}")
    return padding_mask != 0


def first_index(mask: Tensor) -> Tensor:
    """Index of the first real position of every row of a ``[B x S]`` bool mask (0 for an empty row)."""
    seq_len = mask.size(1)
    positions = torch.arange(seq_len, device=mask.device).expand_as(mask)
    return positions.masked_fill(~mask, seq_len).min(dim=1).values.clamp(max=seq_len - 1)


def last_index(mask: Tensor) -> Tensor:
    """Index of the last real position of every row of a ``[B x S]`` bool mask (0 for an empty row)."""
    positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    return positions.masked_fill(~mask, 0).max(dim=1).values


def gather_positions(data: Tensor, index: Tensor) -> Tensor:
    """``data[b, index[b], :]`` for every ``b``: ``[B x S x H]``, ``[B]`` -> ``[B x H]``."""
    return data[torch.arange(data.size(0), device=data.device), index]


def first_pool(data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
    """The hidden state at the first real position: ``[B x S x H]`` -> ``[B x H]``."""
    mask = _check(data, padding_mask)
    if mask is None:
        return data[:, 0]
    return gather_positions(data, first_index(mask))


def last_pool(data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
    """The hidden state at the last real position: ``[B x S x H]`` -> ``[B x H]``."""
    mask = _check(data, padding_mask)
    if mask is None:
        return data[:, -1]
    return gather_positions(data, last_index(mask))


def sum_pool(data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
    """The sum over real positions: ``[B x S x H]`` -> ``[B x H]``."""
    mask = _check(data, padding_mask)
    if mask is None:
        return data.sum(dim=1)
    return (data * mask.unsqueeze(-1).to(data.dtype)).sum(dim=1)


def avg_pool(data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
    """The mean over real positions (zeros for a row without any): ``[B x S x H]`` -> ``[B x H]``."""
    mask = _check(data, padding_mask)
    if mask is None:
        return data.mean(dim=1)
    weights = mask.unsqueeze(-1).to(data.dtype)
    lengths = weights.sum(dim=1).clamp(min=1)
    return (data * weights).sum(dim=1) / lengths


def max_pool(data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
    """The element-wise max over real positions (zeros for a row without any): ``[B x S x H]`` -> ``[B x H]``."""
    mask = _check(data, padding_mask)
    if mask is None:
        return data.max(dim=1).values
    pooled = data.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
    return pooled.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)


class FirstPooling(Module):
    """The hidden state at the first real position of each sequence.

    forward(data ``[B x S x H]``, padding_mask ``[B x S]`` or None) -> ``[B x H]``.
    With right padding (what the samplers produce) this is always position 0.
    """

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Pool ``data`` ``[B x S x H]`` into ``[B x H]``."""
        return first_pool(data, padding_mask)


class LastPooling(Module):
    """The hidden state at the last real (non-padding) position of each sequence.

    forward(data ``[B x S x H]``, padding_mask ``[B x S]`` or None) -> ``[B x H]``.
    """

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Pool ``data`` ``[B x S x H]`` into ``[B x H]``."""
        return last_pool(data, padding_mask)


class SumPooling(Module):
    """The sum of the hidden states over the real positions.

    forward(data ``[B x S x H]``, padding_mask ``[B x S]`` or None) -> ``[B x H]``.
    """

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Pool ``data`` ``[B x S x H]`` into ``[B x H]``."""
        return sum_pool(data, padding_mask)


class AvgPooling(Module):
    """The mean of the hidden states over the real positions (divided by the real length).

    forward(data ``[B x S x H]``, padding_mask ``[B x S]`` or None) -> ``[B x H]``.
    A sequence with no real position pools to zeros.
    """

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Pool ``data`` ``[B x S x H]`` into ``[B x H]``."""
        return avg_pool(data, padding_mask)


class MaxPooling(Module):
    """The element-wise maximum of the hidden states over the real positions.

    forward(data ``[B x S x H]``, padding_mask ``[B x S]`` or None) -> ``[B x H]``.
    A sequence with no real position pools to zeros.
    """

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Pool ``data`` ``[B x S x H]`` into ``[B x H]``."""
        return max_pool(data, padding_mask)


#: Pooling functions by name (``mean`` and ``avg`` are the same).
POOL_FUNCTIONS: Dict[str, Callable[[Tensor, Optional[Tensor]], Tensor]] = {
    "first": first_pool,
    "last": last_pool,
    "sum": sum_pool,
    "mean": avg_pool,
    "avg": avg_pool,
    "max": max_pool,
}
