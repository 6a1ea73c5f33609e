"""Negative log-likelihood loss for multi-label targets."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from flambe.metric.metric import Metric, MetricState, _require_state

REDUCTIONS = ("mean", "sum", "none")


class _MultiLabelLoss(Metric, should_register=False):
    """Shared multi-label loss over log-probabilities (see :class:`MultiLabelNLLLoss` for the formula)."""

    def __init__(self, weight: Optional[Union[torch.Tensor, Sequence[float]]] = None,
                 ignore_index: Optional[int] = None, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
        if weight is not None and not isinstance(weight, torch.Tensor):
            weight = torch.tensor(list(weight), dtype=torch.float)
        if weight is not None and weight.dim() != 1:
            raise ValueError(f"weight must be a 1-D tensor of class weights, not of shape {tuple(weight.shape)}")
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction

    def _log_probs(self, pred: torch.Tensor) -> torch.Tensor:
        """The log-probabilities the loss is computed on."""
        return pred

    def row_losses(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The ``[N]`` unreduced losses (differentiable with respect to ``pred``)."""
        if pred.dim() != 2:
            raise ValueError(f"{type(self).__name__} needs pred of shape [N x C], not {tuple(pred.shape)}")
        n_classes = pred.shape[1]
        if target.dim() == 1:
            target = torch.nn.functional.one_hot(target.long(), n_classes)
        if target.shape != pred.shape:
            raise ValueError(f"target of shape {tuple(target.shape)} does not match pred {tuple(pred.shape)}; "
                             "expected multi-hot [N x C] (or [N] class ids)")
        log_probs = self._log_probs(pred)
        target = target.to(log_probs.dtype)
        if self.ignore_index is not None:
            target = target.clone()
            target[:, self.ignore_index] = 0
        dist = target / target.sum(dim=1, keepdim=True).clamp(min=torch.finfo(target.dtype).tiny)
        if self.weight is not None:
            if self.weight.numel() != n_classes:
                raise ValueError(f"weight has {self.weight.numel()} entries for {n_classes} classes")
            dist = dist * self.weight.to(log_probs)
        return -(dist * log_probs).sum(dim=1)

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the loss of ``pred`` ``[N x C]`` (log-probabilities, or logits for cross-entropy) against
        ``target`` (multi-hot ``[N x C]`` or ``[N]`` class ids), reduced as ``reduction`` says: 0-d for
        ``'mean'``/``'sum'``, ``[N]`` for ``'none'``.
        """
        losses = self.row_losses(pred, target)
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        if losses.numel() == 0:
            raise ValueError(f"{type(self).__name__}: the mean loss of an empty batch is undefined")
        return losses.mean()

    def aggregate(self, state: Optional[MetricState], pred: torch.Tensor, target: torch.Tensor) -> MetricState:
        """Keep the summed per-example losses and the number of examples."""
        with torch.no_grad():
            losses = self.row_losses(pred, target)
        old = state or {"total": 0.0, "count": 0}
        return {"total": old["total"] + float(losses.sum()), "count": old["count"] + losses.numel()}

    def finalize(self, state: Optional[MetricState]) -> float:
        """The total loss for ``reduction='sum'``, the mean loss per example otherwise (``'none'`` too)."""
        state = _require_state(self, state)
        if self.reduction == "sum":
            return float(state["total"])
        if state["count"] == 0:
            raise ValueError(f"{self}: no example was aggregated")
        return state["total"] / state["count"]


class MultiLabelNLLLoss(_MultiLabelLoss):
    """Negative log-likelihood for multi-label targets; usable as a loss (it is differentiable).

    ``pred`` is ``[N x C]`` log-probabilities (e.g. the output of ``SoftmaxLayer(take_log=True)``);
    ``target`` is multi-hot ``[N x C]`` (1 for each correct class; non-negative weights work too) or
    ``[N]`` class ids (then this equals ``torch.nn.NLLLoss`` without weights). Each target row is
    normalized into a distribution ``q_i = t_i / sum_c t_ic`` and the loss of example ``i`` is::

        loss_i = - sum_c w_c * q_ic * pred_ic

    where ``w`` is ``weight`` (ones by default). A row with no correct class (after ``ignore_index``)
    has loss 0. ``reduction='mean'`` averages ``loss_i`` over the N examples (not normalized by the
    weights, unlike ``torch.nn.NLLLoss``), ``'sum'`` sums them, ``'none'`` returns the ``[N]`` losses.

    Parameters
    ----------
    weight : torch.Tensor or list of float, optional
        ``[C]`` per-class weights.
    ignore_index : int, optional
        A class (column) whose target is always treated as 0.
    reduction : str
        ``'mean'`` (default), ``'sum'`` or ``'none'``.
    """
