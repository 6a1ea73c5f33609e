"""Perplexity of a language model's token predictions."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from flambe.metric.metric import Metric, MetricState, _require_state


class Perplexity(Metric):
    """``exp`` of the mean negative log-likelihood of the target tokens.

    ``pred`` is ``[N x C]`` (or ``[B x S x C]``) log-probabilities or logits over ``C`` tokens: the
    log-softmax of the last dimension is taken, which leaves log-probabilities unchanged.
    ``target`` holds the token ids, ``[N]`` (or ``[B x S]``). Tokens equal to ``ignore_index`` (padding)
    are left out of the mean; over batches the mean is taken over all non-ignored tokens, so
    :meth:`finalize` is the perplexity of the whole corpus, not a mean of batch perplexities.

    Parameters
    ----------
    ignore_index : int, optional
        A target id that does not count (e.g. the padding index). Default: every token counts.
    """

    def __init__(self, ignore_index: Optional[int] = None) -> None:
        self.ignore_index = ignore_index

    def _nll(self, pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, int]:
        """(sum of the negative log-likelihoods of the counted tokens, number of counted tokens)."""
        if pred.shape[:-1] != target.shape:
            raise ValueError(f"Perplexity needs pred [... x C] for target [...]; got {tuple(pred.shape)} "
                             f"and {tuple(target.shape)}")
        log_probs = torch.log_softmax(pred, dim=-1)
        if self.ignore_index is None:
            keep = torch.ones_like(target, dtype=torch.bool)
            ids = target
        else:
            keep = target != self.ignore_index
            ids = target.masked_fill(~keep, 0)
        token_ll = log_probs.gather(-1, ids.long().unsqueeze(-1)).squeeze(-1)
        return -(token_ll * keep).sum(), int(keep.sum())

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the perplexity given the input and target.

        Parameters
        ----------
        pred : torch.Tensor
            Log-probabilities (or logits) ``[N x C]`` or ``[B x S x C]``.
        target : torch.LongTensor
            Token ids ``[N]`` or ``[B x S]``.

        Returns
        -------
        torch.Tensor
            The perplexity (0-d).
        """
        nll, count = self._nll(pred, target)
        if count == 0:
            raise ValueError("Perplexity: no token to count (all are ignore_index or the batch is empty)")
        return torch.exp(nll / count)

    def aggregate(self, state: Optional[MetricState], pred: torch.Tensor, target: torch.Tensor) -> MetricState:
        """Keep the summed negative log-likelihood and the number of counted tokens."""
        with torch.no_grad():
            nll, count = self._nll(pred, target)
        old = state or {"nll": 0.0, "count": 0}
        return {"nll": old["nll"] + float(nll), "count": old["count"] + count}

    def finalize(self, state: Optional[MetricState]) -> float:
        """``exp(total NLL / counted tokens)``."""
        state = _require_state(self, state)
        if state["count"] == 0:
            raise ValueError("Perplexity: no token was aggregated")
        return math.exp(state["nll"] / state["count"])
