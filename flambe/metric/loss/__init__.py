"""Multi-label losses (also usable as metrics)."""

from flambe.metric.loss.cross_entropy import MultiLabelCrossEntropy
from flambe.metric.loss.nll_loss import MultiLabelNLLLoss

__all__ = ["MultiLabelCrossEntropy", "MultiLabelNLLLoss"]
