"""Cross-entropy loss for multi-label targets."""

from __future__ import annotations

import torch

from flambe.metric.loss.nll_loss import _MultiLabelLoss


class MultiLabelCrossEntropy(_MultiLabelLoss):
    """Cross-entropy between the softmax of logits and the normalized multi-label targets.

    Exactly :class:`~flambe.metric.loss.nll_loss.MultiLabelNLLLoss` applied to
    ``log_softmax(pred, dim=1)``: with ``q_i = t_i / sum_c t_ic``::

        loss_i = - sum_c w_c * q_ic * log_softmax(pred_i)_c

    ``pred`` is ``[N x C]`` logits (log-probabilities give the same result, the log-softmax leaves them
    unchanged); ``target`` is multi-hot ``[N x C]`` or ``[N]`` class ids (then, without weights, this is
    ``torch.nn.CrossEntropyLoss``). It is differentiable, so it works as a loss function.

    Parameters: ``weight``, ``ignore_index`` and ``reduction``, as in
    :class:`~flambe.metric.loss.nll_loss.MultiLabelNLLLoss`.
    """

    def _log_probs(self, pred: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(pred, dim=1)
