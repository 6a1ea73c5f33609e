"""TextClassifier: an embedder, dropout, and an output layer."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from flambe.nn.module import Module


def first_output(output: Union[Tensor, Tuple[Tensor, ...]]) -> Tensor:
    """The main output of a module that may return ``(output, state)``."""
    return output[0] if isinstance(output, (tuple, list)) else output


class TextClassifier(Module):
    """A standard text classifier: embedder, then dropout, then an output layer.

    Parameters
    ----------
    embedder : Module
        Maps ``[B x S]`` token ids to one vector per example, ``[B x H]`` (an ``Embedder`` with a pooling
        module or a pooled encoder). An ``(output, state)`` result is accepted; the state is ignored.
    output_layer : Module
        Maps ``[B x H]`` to ``[B x C]``, e.g. ``SoftmaxLayer`` (log-probabilities, use ``NLLLoss``).
    dropout : float
        Dropout probability applied between the embedder and the output layer.

    Attributes
    ----------
    embedder : Module
    output_layer : Module
    drop : torch.nn.Dropout

    """

    def __init__(self, embedder: Module, output_layer: Module, dropout: float = 0) -> None:
        super().__init__()
        self.embedder = embedder
        self.output_layer = output_layer
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, data: Tensor, target: Optional[Tensor] = None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Classify a batch.

        Parameters
        ----------
        data : Tensor
            Token ids ``[B x S]``.
        target : Tensor, optional
            Labels ``[B]``, returned unchanged beside the predictions.

        Returns
        -------
        Union[Tensor, Tuple[Tensor, Tensor]]
            The predictions ``[B x C]``, or ``(predictions, target)`` when a target is given.

        """
        encoding = first_output(self.embedder(data))
        pred = self.output_layer(self.drop(encoding))
        return pred if target is None else (pred, target)
