"""Multi-layer feed-forward networks: MLPEncoder and MLPDecoder."""

from __future__ import annotations

import copy
from typing import List, Optional

from torch import Tensor, nn

from flambe.nn.module import Module


def build_mlp(input_size: int, output_size: int, n_layers: int, dropout: float,
              output_activation: Optional[nn.Module], hidden_size: Optional[int],
              hidden_activation: Optional[nn.Module]) -> nn.Sequential:
    """``Linear -> hidden_activation -> Dropout`` for each hidden layer, then ``Linear -> output_activation``.

    Activations are copied per layer, so no two layers share a module.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}")
    if n_layers > 1 and hidden_size is None:
        raise ValueError("hidden_size is required when n_layers > 1")
    layers: List[nn.Module] = []
    in_size = input_size
    for _ in range(n_layers - 1):
        layers.append(nn.Linear(in_size, hidden_size))  # type: ignore[arg-type]
        if hidden_activation is not None:
            layers.append(copy.deepcopy(hidden_activation))
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_size = hidden_size  # type: ignore[assignment]
    layers.append(nn.Linear(in_size, output_size))
    if output_activation is not None:
        layers.append(copy.deepcopy(output_activation))
    return nn.Sequential(*layers)


class MLPEncoder(Module):
    """A feed-forward network: ``n_layers`` linear layers with activations and dropout between them.

    Parameters
    ----------
    input_size : int
        Size of the input (last dimension).
    output_size : int
        Size of the output.
    n_layers : int
        Number of linear layers (1: a single ``Linear``).
    dropout : float
        Dropout after each hidden layer's activation (not after the output layer).
    output_activation : nn.Module, optional
        Applied to the output, e.g. ``!torch.Tanh {}``.
    hidden_size : int, optional
        Width of the hidden layers (required when ``n_layers > 1``).
    hidden_activation : nn.Module, optional
        Applied after each hidden layer, e.g. ``!torch.ReLU {}`` (None: none).

    Attributes
    ----------
    seq : torch.nn.Sequential
        The layers and activations, in order.
    input_size, output_size : int

    Notes
    -----
    forward(data ``[* x input_size]``) -> ``[* x output_size]`` (any leading dimensions, e.g. ``[B x H]``).

    """

    def __init__(self, input_size: int, output_size: int, n_layers: int = 1, dropout: float = 0.,
                 output_activation: Optional[nn.Module] = None, hidden_size: Optional[int] = None,
                 hidden_activation: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.seq = build_mlp(input_size, output_size, n_layers, dropout, output_activation, hidden_size,
                             hidden_activation)

    def forward(self, data: Tensor) -> Tensor:
        """Map ``data`` ``[* x input_size]`` to ``[* x output_size]``."""
        return self.seq(data)


class MLPDecoder(MLPEncoder):
    """The same network as :class:`MLPEncoder`, with Flambé's decoder argument order.

    Use it as an output layer that yields raw scores (e.g. for distillation, or with
    ``!torch.CrossEntropyLoss``).

    Parameters
    ----------
    input_size, output_size, n_layers, output_activation, hidden_size, hidden_activation, dropout
        As in :class:`MLPEncoder`.

    Notes
    -----
    forward(data ``[B x input_size]``) -> ``[B x output_size]``; attribute ``seq``.

    """

    def __init__(self, input_size: int, output_size: int, n_layers: int = 1,
                 output_activation: Optional[nn.Module] = None, hidden_size: Optional[int] = None,
                 hidden_activation: Optional[nn.Module] = None, dropout: float = 0.) -> None:
        super().__init__(input_size, output_size, n_layers=n_layers, dropout=dropout,
                         output_activation=output_activation, hidden_size=hidden_size,
                         hidden_activation=hidden_activation)
