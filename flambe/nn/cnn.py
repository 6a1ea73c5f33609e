"""CNNEncoder: a stack of n-dimensional convolution blocks (for images, or any channel-first grid).

For text (``[B x S x E]`` embeddings with a padding mask) use :class:`flambe.nn.TextCNNEncoder`.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from flambe.nn.module import Module

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def conv_block(conv_mod: nn.Module, activation: Optional[nn.Module], pooling: Optional[nn.Module],
               dropout: float, batch_norm: Optional[nn.Module] = None) -> nn.Module:
    """One convolution block: conv -> batch norm -> activation -> pooling -> dropout.

    Parameters
    ----------
    conv_mod : nn.Module
        The convolution.
    activation, pooling, batch_norm : nn.Module, optional
        Left out when None.
    dropout : float
        Dropout probability (no dropout layer when 0).

    Returns
    -------
    nn.Module
        A ``torch.nn.Sequential`` of the parts given.

    """
    parts: List[nn.Module] = [conv_mod]
    for part in (batch_norm, activation, pooling):
        if part is not None:
            parts.append(part)
    if dropout:
        parts.append(nn.Dropout(dropout))
    return nn.Sequential(*parts)


class CNNEncoder(Module):
    """A multi-layer 1-, 2- or 3-dimensional CNN: one :func:`conv_block` per entry of ``channels``.

    Parameters
    ----------
    input_channels : int
        Channels of the input (C).
    channels : List[int]
        Output channels of each block; the number of blocks is ``len(channels)``.
    conv_dim : int
        1, 2 or 3: ``Conv1d``, ``Conv2d`` or ``Conv3d`` (and the matching batch norm).
    kernel_size : int, tuple or list
        One kernel size (an int, or a tuple for a non-square kernel) for every block, or a list with
        one entry (int or tuple) per block.
    activation : nn.Module, optional
        Applied after each convolution (and batch norm), e.g. ``!torch.ReLU {}``; each block gets its
        own copy. None: no activation.
    pooling : nn.Module, optional
        Applied after each activation, e.g. ``!torch.MaxPool2d {kernel_size: 2}`` (copied per block).
    dropout : float
        Dropout after each block.
    batch_norm : bool
        Add a batch norm after each convolution.
    stride, padding : int
        Passed to every convolution.

    Attributes
    ----------
    cnn : torch.nn.Sequential
        The blocks, in order.
    output_channels : int
        ``channels[-1]``.

    Notes
    -----
    forward(data ``[B x C x *spatial]``) -> ``[B x channels[-1] x *spatial']``.

    """

    def __init__(self, input_channels: int, channels: List[int], conv_dim: int = 2,
                 kernel_size: Union[int, Sequence[Union[Tuple[int, ...], int]]] = 3,
                 activation: Optional[nn.Module] = None, pooling: Optional[nn.Module] = None,
                 dropout: float = 0, batch_norm: bool = True, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        if conv_dim not in _CONV:
            raise ValueError(f"conv_dim must be 1, 2 or 3, got {conv_dim}")
        channels = list(channels)
        if not channels:
            raise ValueError("channels must list at least one block")
        if isinstance(kernel_size, list):
            kernels = list(kernel_size)
            if len(kernels) != len(channels):
                raise ValueError(f"kernel_size lists {len(kernels)} sizes for {len(channels)} blocks")
        else:
            kernels = [kernel_size] * len(channels)
        self.input_channels = input_channels
        self.output_channels = channels[-1]
        self.conv_dim = conv_dim
        blocks: List[nn.Module] = []
        in_channels = input_channels
        for out_channels, kernel in zip(channels, kernels):
            conv = _CONV[conv_dim](in_channels, out_channels, kernel_size=kernel, stride=stride, padding=padding)
            norm = _BATCH_NORM[conv_dim](out_channels) if batch_norm else None
            blocks.append(conv_block(conv, copy.deepcopy(activation), copy.deepcopy(pooling), dropout, norm))
            in_channels = out_channels
        self.cnn = nn.Sequential(*blocks)

    def forward(self, data: Tensor) -> Tensor:
        """Run the blocks on ``data`` ``[B x C x *spatial]``."""
        return self.cnn(data)
