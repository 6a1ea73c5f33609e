"""MixtureOfSoftmax: the output layer of Yang et al. (2018), "Breaking the Softmax Bottleneck"."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flambe.nn.module import Module


class MixtureOfSoftmax(Module):
    """A mixture of ``k`` softmax distributions with input-dependent mixture weights.

    ``p(y | h) = sum_i pi_i(h) * softmax(W_i tanh(U_i h))_y`` with ``pi(h) = softmax(P h)``. With
    ``k = 1`` it is a softmax layer over a tanh projection.

    Parameters
    ----------
    input_size : int
        Size of the input (last dimension).
    output_size : int
        Number of classes (vocabulary size for language modelling).
    k : int
        Number of mixture components.
    take_log : bool
        Return log-probabilities (computed stably with logsumexp) instead of probabilities.
    dropout : float
        Dropout on each component's latent (tanh) representation.

    Attributes
    ----------
    pi : torch.nn.Linear
        Scores of the ``k`` mixture weights (``input_size -> k``), normalised with a softmax.
    projections : torch.nn.ModuleList
        ``k`` latent projections ``input_size -> input_size`` (followed by tanh).
    layers : torch.nn.ModuleList
        ``k`` softmax layers ``input_size -> output_size``.

    Notes
    -----
    forward(data ``[* x input_size]``, e.g. ``[B x S x H]``) -> ``[* x output_size]``.

    """

    def __init__(self, input_size: int, output_size: int, k: int = 1, take_log: bool = True,
                 dropout: float = 0) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.input_size = input_size
        self.output_size = output_size
        self.k = k
        self.take_log = take_log
        self.pi = nn.Linear(input_size, k)
        self.projections = nn.ModuleList(nn.Linear(input_size, input_size) for _ in range(k))
        self.layers = nn.ModuleList(nn.Linear(input_size, output_size) for _ in range(k))
        self.drop = nn.Dropout(dropout)

    def forward(self, data: Tensor) -> Tensor:
        """(Log-)probabilities ``[* x output_size]`` for ``data`` ``[* x input_size]``."""
        log_pi = torch.log_softmax(self.pi(data), dim=-1)
        components = [torch.log_softmax(layer(self.drop(torch.tanh(proj(data)))), dim=-1)
                      for proj, layer in zip(self.projections, self.layers)]
        log_probs = torch.logsumexp(torch.stack(components, dim=-1) + log_pi.unsqueeze(-2), dim=-1)
        return log_probs if self.take_log else log_probs.exp()
