"""ImageClassifier: an image encoder followed by an output layer."""

from __future__ import annotations

from typing import Optional, Tuple, Union

from torch import Tensor

from flambe.nn.module import Module


class ImageClassifier(Module):
    """An encoder (e.g. ``!CNNEncoder``), flattened, then an output layer (e.g. ``!SoftmaxLayer``).

    Parameters
    ----------
    encoder : Module
        Maps images ``[B x C x H x W]`` to features of any shape ``[B x ...]`` (an ``(output, state)``
        result is accepted; the state is ignored).
    output_layer : Module
        Maps the flattened features ``[B x F]`` to predictions ``[B x n_classes]``.

    Attributes
    ----------
    encoder, output_layer : Module

    Notes
    -----
    forward(data ``[B x C x H x W]``, target ``[B]`` or None) -> predictions, or ``(predictions, target)``.

    """

    def __init__(self, encoder: Module, output_layer: Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.output_layer = output_layer

    def forward(self, data: Tensor, target: Optional[Tensor] = None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Classify a batch of images."""
        encoding = self.encoder(data)
        if isinstance(encoding, (tuple, list)):
            encoding = encoding[0]
        pred = self.output_layer(encoding.flatten(start_dim=1))
        return pred if target is None else (pred, target)
