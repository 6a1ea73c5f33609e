"""Metrics and multi-label losses: ``compute(pred, target)`` on a batch, ``aggregate``/``finalize`` over many."""

from flambe.metric.dev import (
    AUC,
    Accuracy,
    BinaryAccuracy,
    BinaryMetric,
    BinaryPrecision,
    BinaryRecall,
    Perplexity,
)
from flambe.metric.loss import MultiLabelCrossEntropy, MultiLabelNLLLoss
from flambe.metric.metric import Metric, MetricState

__all__ = ["Metric", "MetricState", "Accuracy", "AUC", "BinaryMetric", "BinaryAccuracy", "BinaryPrecision",
           "BinaryRecall", "Perplexity", "MultiLabelCrossEntropy", "MultiLabelNLLLoss"]
