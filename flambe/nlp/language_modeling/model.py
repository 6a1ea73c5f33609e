"""LanguageModel: per-token predictions over a vocabulary, with optional weight tying."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from flambe.nlp.classification.model import first_output
from flambe.nn.module import Module


def _token_embedding(embedder: torch.nn.Module) -> Optional[torch.nn.Embedding]:
    """The token embedding table of an embedder (its ``embedding`` attribute first, else the first found)."""
    preferred = getattr(embedder, "embedding", None)
    for root in (preferred, embedder):
        if isinstance(root, torch.nn.Module):
            for module in root.modules():
                if isinstance(module, torch.nn.Embedding):
                    return module
    return None


class LanguageModel(Module):
    """A language model (or any per-token classifier): embedder, dropout, output layer at every position.

    Parameters
    ----------
    embedder : Module
        Maps ``[B x S]`` ids to ``[B x S x H]`` (an ``Embedder`` without pooling). An ``(output, state)``
        result is accepted; the state is ignored.
    output_layer : Module
        Maps ``[... x H]`` to ``[... x V]``, e.g. ``SoftmaxLayer(H, V)`` (log-probabilities).
    dropout : float
        Dropout probability applied between the embedder and the output layer.
    pad_index : int
        Target id of padding; those positions are left out of the flattened output.
    tie_weights : bool
        Share the token embedding matrix ``[V x E]`` with the weight of the output layer's linear map
        (which must then have the same shape, i.e. ``H == E``); a ``ValueError`` says what did not match.

    Notes
    -----
    Batch-first throughout: without a target the output is ``[B x S x V]``. With a target ``[B x S]`` the
    output is ``(pred [N x V], target [N])`` over the N non-pad target positions, so ``NLLLoss`` and
    ``Perplexity`` apply directly.

    """

    def __init__(self, embedder: Module, output_layer: Module, dropout: float = 0, pad_index: int = 0,
                 tie_weights: bool = False) -> None:
        super().__init__()
        self.embedder = embedder
        self.output_layer = output_layer
        self.drop = torch.nn.Dropout(dropout)
        self.pad_index = pad_index
        self.tie_weights = tie_weights
        if tie_weights:
            self._tie()

    def _tie(self) -> None:
        embedding = _token_embedding(self.embedder)
        if embedding is None:
            raise ValueError("tie_weights=True but the embedder has no torch.nn.Embedding to share")
        shape = tuple(embedding.weight.shape)
        linears = [m for m in self.output_layer.modules() if isinstance(m, torch.nn.Linear)]
        matching = [m for m in linears if tuple(m.weight.shape) == shape]
        if not matching:
            found = [tuple(m.weight.shape) for m in linears] or "none"
            raise ValueError(
                f"tie_weights=True needs a torch.nn.Linear in the output layer whose weight has the embedding's "
                f"shape [vocab x embedding_dim] = {list(shape)}; linear weight shapes found: {found}. "
                f"Make the output layer's input size equal the embedding dimension and its output size the "
                f"vocabulary size")
        matching[-1].weight = embedding.weight

    def forward(self, data: Tensor, target: Optional[Tensor] = None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Predict the next token at every position.

        Parameters
        ----------
        data : Tensor
            Input ids ``[B x S]``.
        target : Tensor, optional
            Target ids ``[B x S]`` (the input shifted by one).

        Returns
        -------
        Union[Tensor, Tuple[Tensor, Tensor]]
            ``[B x S x V]`` without a target; with one, ``(pred [N x V], target [N])`` over non-pad targets.

        """
        encoding = first_output(self.embedder(data))
        pred = self.output_layer(self.drop(encoding))
        if target is None:
            return pred
        mask = target != self.pad_index
        return pred[mask], target[mask]
