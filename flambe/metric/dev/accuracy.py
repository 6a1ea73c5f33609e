"""Accuracy of class predictions."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from flambe.metric.metric import Metric, MetricState, _require_state


def predicted_labels(pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Turn ``pred`` and ``target`` into two label tensors of the same shape.

    - floating ``pred`` with one more dimension than ``target`` (``[N x C]`` scores, logits or
      log-probabilities for ``[N]`` ids; ``[B x S x C]`` for ``[B x S]``): the arg-max of its last dim;
    - floating ``pred`` with as many dimensions (at least 2) as ``target``: ``target`` is one-hot (or a
      distribution) and both take the arg-max of their last dim;
    - otherwise ``pred`` already holds labels of ``target``'s shape (floating labels must be integral).
    """
    if pred.is_floating_point() and pred.dim() == target.dim() + 1:
        return pred.argmax(dim=-1), target
    if pred.is_floating_point() and pred.dim() == target.dim() and pred.dim() >= 2:
        if pred.shape != target.shape:
            raise ValueError(f"one-hot target of shape {tuple(target.shape)} does not match predictions "
                             f"of shape {tuple(pred.shape)}")
        return pred.argmax(dim=-1), target.argmax(dim=-1)
    if pred.shape != target.shape:
        raise ValueError(f"cannot compare predictions of shape {tuple(pred.shape)} with targets of shape "
                         f"{tuple(target.shape)}: expected [N x C] scores for [N] ids, [N x C] for one-hot "
                         "[N x C] targets, or labels of the target's shape")
    if pred.is_floating_point() and not torch.equal(pred, pred.round()):
        raise ValueError("predictions with the target's shape must be labels, but they are not integral; "
                         "use BinaryAccuracy for probabilities")
    return pred, target


class Accuracy(Metric):
    """The fraction of predictions equal to the target.

    ``pred`` is ``[N x C]`` scores (logits, probabilities or log-probabilities: the arg-max is taken) or
    ``[N]`` labels; ``target`` is ``[N]`` class ids or one-hot ``[N x C]``. Extra leading dimensions are
    allowed (``[B x S x C]`` scores for ``[B x S]`` ids) and every position counts once.
    """

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Computes the accuracy.

        Parameters
        ----------
        pred : torch.Tensor
            Scores ``[N x C]`` or labels ``[N]``.
        target : torch.Tensor
            Class ids ``[N]`` or one-hot ``[N x C]``.

        Returns
        -------
        torch.Tensor
            A 0-d float tensor in [0, 1].
        """
        labels, gold = predicted_labels(pred, target)
        if labels.numel() == 0:
            raise ValueError("Accuracy of an empty batch is undefined")
        return (labels == gold.to(labels.dtype)).float().mean()

    def aggregate(self, state: Optional[MetricState], pred: torch.Tensor, target: torch.Tensor) -> MetricState:
        """Keep the number of correct predictions and of predictions."""
        with torch.no_grad():
            labels, gold = predicted_labels(pred, target)
            correct = int((labels == gold.to(labels.dtype)).sum())
        old = state or {"correct": 0, "count": 0}
        return {"correct": old["correct"] + correct, "count": old["count"] + labels.numel()}

    def finalize(self, state: Optional[MetricState]) -> float:
        """Correct predictions over predictions."""
        state = _require_state(self, state)
        if state["count"] == 0:
            raise ValueError("Accuracy: no example was aggregated")
        return state["correct"] / state["count"]
