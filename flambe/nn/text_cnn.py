"""TextCNNEncoder: the sentence CNN of Kim (2014), padding-aware, batch-first.

For each kernel size ``k`` a ``Conv1d`` with ``num_filters`` filters slides over time; its activations
are max-pooled over time; the pooled vectors of all kernel sizes are concatenated. As in Kim's code
the convolution is *wide*: each sentence is zero-padded with ``k - 1`` positions on both sides, so every
window holding at least one real token counts, and sentences shorter than the kernels work.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flambe.nn.module import Module

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "none": nn.Identity,
    "identity": nn.Identity,
}


def resolve_activation(activation: Union[str, nn.Module, None]) -> nn.Module:
    """An activation module from a name in :data:`ACTIVATIONS`, a module, or None (identity)."""
    if activation is None:
        return nn.Identity()
    if isinstance(activation, nn.Module):
        return activation
    key = str(activation).lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"Unknown activation '{activation}': choose one of {', '.join(ACTIVATIONS)} "
                         "or give a module (e.g. !torch.ReLU {})")
    return ACTIVATIONS[key]()


def windows_with_tokens(mask: Tensor, kernel_size: int) -> Tensor:
    """For a wide convolution, whether each output window holds a real token.

    Parameters
    ----------
    mask : Tensor
        ``[B x S]`` bool, True = real token.
    kernel_size : int
        Width ``k`` of the windows; output window ``j`` covers input positions ``j - k + 1 .. j``.

    Returns
    -------
    Tensor
        ``[B x (S + k - 1)]`` bool.

    """
    padded = F.pad(mask.to(torch.float32).unsqueeze(1), (kernel_size - 1, kernel_size - 1))
    return F.max_pool1d(padded, kernel_size, stride=1).squeeze(1) > 0


class TextCNNEncoder(Module):
    """Convolutions of several widths over time, max-pooled over the real tokens and concatenated.

    Parameters
    ----------
    input_size : int
        Size of the input vectors (E), e.g. the embedding size.
    num_filters : int
        Filters per kernel size (Kim: 100).
    kernel_sizes : Sequence[int]
        Window widths (Kim: 3, 4, 5).
    activation : str or nn.Module
        ``'relu'`` (default), ``'tanh'``, ``'sigmoid'``, ``'gelu'``, ``'elu'``, ``'leaky_relu'``, ``'none'``,
        or a module (``!torch.ReLU {}``). Applied to the convolutions before pooling.
    dropout : float
        Dropout on the concatenated output (Kim: 0.5).

    Attributes
    ----------
    convs : torch.nn.ModuleList
        One ``Conv1d(input_size, num_filters, k, padding=k - 1)`` per kernel size.
    output_size : int
        ``num_filters * len(kernel_sizes)``.

    Notes
    -----
    forward(data ``[B x S x E]``, padding_mask ``[B x S]`` or None) -> ``[B x output_size]``.
    Padding positions (mask 0/False, anywhere in the row) are zeroed before the convolution and windows
    without any real token are left out of the max, so a padded sequence encodes exactly as it would
    alone. A row without any real token encodes to zeros.

    """

    def __init__(self, input_size: int, num_filters: int = 100, kernel_sizes: Sequence[int] = (3, 4, 5),
                 activation: Union[str, nn.Module] = "relu", dropout: float = 0) -> None:
        super().__init__()
        kernel_sizes = [int(k) for k in kernel_sizes]
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes must be positive integers, got {kernel_sizes}")
        self.input_size = input_size
        self.num_filters = num_filters
        self.kernel_sizes = kernel_sizes
        self.output_size = num_filters * len(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(input_size, num_filters, k, padding=k - 1) for k in kernel_sizes)
        self.activation = resolve_activation(activation)
        self.drop = nn.Dropout(dropout)

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Encode ``data`` ``[B x S x E]`` into ``[B x output_size]``."""
        if data.dim() != 3:
            raise ValueError(f"TextCNNEncoder expects data of shape [B x S x E], got {list(data.shape)}")
        mask: Optional[Tensor] = None
        if padding_mask is not None:
            if padding_mask.shape != data.shape[:2]:
                raise ValueError(f"padding_mask must have shape {list(data.shape[:2])} (B x S), "
                                 f"got {list(padding_mask.shape)}")
            mask = padding_mask != 0
            data = data * mask.unsqueeze(-1).to(data.dtype)
        channels_first = data.transpose(1, 2)
        pooled = []
        for conv, kernel in zip(self.convs, self.kernel_sizes):
            feature_maps = self.activation(conv(channels_first))
            if mask is not None:
                valid = windows_with_tokens(mask, kernel).unsqueeze(1)
                feature_maps = feature_maps.masked_fill(~valid, float("-inf"))
            pooled.append(feature_maps.max(dim=2).values)
        out = torch.cat(pooled, dim=1)
        if mask is not None:
            out = out.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)
        return self.drop(out)
