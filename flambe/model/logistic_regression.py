"""LogisticRegression: ``sigmoid(W v + b)``, a probability per example."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from flambe.nn.module import Module


class LogisticRegression(Module):
    """Binary logistic regression: ``p = sigmoid(W v + b)`` for each input vector ``v``.

    Parameters
    ----------
    input_size : int
        Number of features of each input vector.

    Attributes
    ----------
    input_size : int
    linear : torch.nn.Linear
        ``input_size -> 1`` (W and b).

    Notes
    -----
    forward(data ``[B x input_size]``, target ``[B]`` or None) -> probabilities ``[B]``, or
    ``(probabilities [B], target as float [B])`` with a target (pair with ``!torch.BCELoss``).

    """

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.linear = nn.Linear(input_size, 1)

    def forward(self, data: Tensor, target: Optional[Tensor] = None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Probabilities ``[B]`` for ``data`` ``[B x input_size]`` (and the target, cast to float)."""
        pred = torch.sigmoid(self.linear(data.to(self.linear.weight.dtype))).squeeze(-1)
        if target is None:
            return pred
        return pred, target.to(pred.dtype).reshape(pred.shape)
