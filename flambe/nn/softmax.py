"""SoftmaxLayer: a (multi-layer) linear map followed by a (log-)softmax over the last dimension."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from flambe.nn.mlp import MLPEncoder
from flambe.nn.module import Module


class SoftmaxLayer(Module):
    """An output layer giving a probability distribution (log-probabilities by default).

    Parameters
    ----------
    input_size : int
        Size of the input (last dimension).
    output_size : int
        Number of classes.
    mlp_layers : int
        Linear layers before the softmax; hidden layers are ``input_size`` wide.
    mlp_dropout : float
        Dropout between the linear layers.
    mlp_hidden_activation : nn.Module, optional
        Activation between the linear layers (e.g. ``!torch.ReLU {}``).
    take_log : bool
        Return ``log_softmax`` (pair with ``!torch.NLLLoss``) instead of ``softmax``.

    Attributes
    ----------
    mlp : MLPEncoder
        The linear layers.
    take_log : bool

    Notes
    -----
    forward(data ``[* x input_size]``) -> ``[* x output_size]``, (log-)normalised over the last dimension.

    """

    def __init__(self, input_size: int, output_size: int, mlp_layers: int = 1, mlp_dropout: float = 0.,
                 mlp_hidden_activation: Optional[nn.Module] = None, take_log: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.take_log = take_log
        self.mlp = MLPEncoder(input_size, output_size, n_layers=mlp_layers, dropout=mlp_dropout,
                              hidden_size=input_size, hidden_activation=mlp_hidden_activation)

    def forward(self, data: Tensor) -> Tensor:
        """(Log-)probabilities ``[* x output_size]`` for ``data`` ``[* x input_size]``."""
        scores = self.mlp(data)
        return torch.log_softmax(scores, dim=-1) if self.take_log else torch.softmax(scores, dim=-1)
