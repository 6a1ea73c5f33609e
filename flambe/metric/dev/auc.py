"""Area under the ROC curve (binary), with the standardized partial AUC up to a maximum FPR."""

from __future__ import annotations

from typing import Optional

import torch

from flambe.metric.dev.binary import binary_inputs
from flambe.metric.metric import Metric, MetricState, _require_state


def roc_auc(scores: torch.Tensor, labels: torch.Tensor, max_fpr: float = 1.0) -> torch.Tensor:
    """The area under the ROC curve of ``[N]`` scores for ``[N]`` 0/1 labels.

    The ROC curve has one point per distinct score (tied scores move the curve diagonally, which is the
    same as counting a tied positive/negative pair as half a correct ordering, i.e. averaged ranks). With
    ``max_fpr < 1`` the area is taken up to ``max_fpr`` (the curve is interpolated linearly at
    ``max_fpr``) and standardized with the McClish correction, as scikit-learn does::

        0.5 * (1 + (partial - max_fpr**2 / 2) / (max_fpr - max_fpr**2 / 2))

    so that a random classifier scores 0.5 and a perfect one 1.0.

    Raises
    ------
    ValueError
        If the labels hold only one class (the AUC is undefined).
    """
    scores = scores.detach().reshape(-1).double()
    positive = labels.detach().reshape(-1).bool()
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when the targets hold only one class "
                         f"({n_pos} positives, {n_neg} negatives)")
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_scores = scores[order]
    hits = positive[order].double()
    true_pos = torch.cumsum(hits, 0)
    false_pos = torch.cumsum(1.0 - hits, 0)
    # One ROC point after the last example of each group of equal scores.
    group_end = torch.ones_like(positive)
    group_end[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    zero = scores.new_zeros(1)
    tpr = torch.cat([zero, true_pos[group_end] / n_pos])
    fpr = torch.cat([zero, false_pos[group_end] / n_neg])
    x0, x1, y0, y1 = fpr[:-1], fpr[1:], tpr[:-1], tpr[1:]
    if max_fpr >= 1.0:
        area = ((x1 - x0) * (y0 + y1) / 2).sum()
    else:
        x1_cut = x1.clamp(max=max_fpr)
        x0_cut = x0.clamp(max=max_fpr)
        width = x1 - x0
        # tpr where the segment leaves [0, max_fpr] (its own end when it ends inside)
        y1_cut = torch.where(width > 0, y0 + (y1 - y0) * (x1_cut - x0) / width.clamp(min=1e-300), y1)
        partial = ((x1_cut - x0_cut) * (y0 + y1_cut) / 2).sum()
        min_area = max_fpr ** 2 / 2
        area = 0.5 * (1 + (partial - min_area) / (max_fpr - min_area))
    return area.to(torch.get_default_dtype())


class AUC(Metric):
    """Area under the ROC curve of a binary classifier.

    ``pred`` is ``[N]`` scores of the positive class (probabilities, logits: any monotonic score) or
    ``[N x 2]`` scores (column 1 is used); ``target`` is ``[N]`` labels in {0, 1} (or ``[N x 2]``
    one-hot). Ties count as half-correct orderings (averaged ranks). AUC is undefined, and
    :meth:`compute`/:meth:`finalize` raise ``ValueError``, when the targets hold only one class.

    Parameters
    ----------
    max_fpr : float
        In (0, 1]. Below 1, the standardized partial AUC over false positive rates ``[0, max_fpr]``
        (McClish correction, as ``sklearn.metrics.roc_auc_score(max_fpr=...)``).
    """

    def __init__(self, max_fpr: float = 1.0) -> None:
        if not 0.0 < float(max_fpr) <= 1.0:
            raise ValueError(f"max_fpr must be in (0, 1], not {max_fpr!r}")
        self.max_fpr = float(max_fpr)

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute AUC at the given max false positive rate.

        Parameters
        ----------
        pred : torch.Tensor
            The model's scores, ``[N]`` or ``[N x 2]``.
        target : torch.Tensor
            The binary targets, ``[N]``.

        Returns
        -------
        torch.Tensor
            The computed AUC (0-d).
        """
        scores, labels = binary_inputs(pred, target)
        return roc_auc(scores, labels, self.max_fpr)

    def aggregate(self, state: Optional[MetricState], pred: torch.Tensor, target: torch.Tensor) -> MetricState:
        """Keep every batch's scores and labels (on the CPU); they are concatenated by :meth:`finalize`."""
        scores, labels = binary_inputs(pred.detach(), target.detach())
        state = state if state is not None else {"scores": [], "labels": []}
        state["scores"].append(scores.cpu())
        state["labels"].append(labels.cpu())
        return state

    def finalize(self, state: Optional[MetricState]) -> float:
        """The AUC of all aggregated scores."""
        state = _require_state(self, state)
        return float(roc_auc(torch.cat(state["scores"]), torch.cat(state["labels"]), self.max_fpr))

    def __str__(self) -> str:
        """``AUC``, or ``AUC_fpr<max_fpr>`` for a partial AUC."""
        return "AUC" if self.max_fpr == 1.0 else f"AUC_fpr{self.max_fpr:g}"
