"""Evaluation metrics: accuracy, AUC, binary metrics, perplexity."""

from flambe.metric.dev.accuracy import Accuracy
from flambe.metric.dev.auc import AUC
from flambe.metric.dev.binary import BinaryAccuracy, BinaryMetric, BinaryPrecision, BinaryRecall
from flambe.metric.dev.perplexity import Perplexity

__all__ = ["Accuracy", "AUC", "BinaryMetric", "BinaryAccuracy", "BinaryPrecision", "BinaryRecall", "Perplexity"]
