"""Metrics of binary predictions: accuracy, precision and recall at a threshold."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from flambe.metric.metric import Metric, MetricState, _require_state


def binary_inputs(pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flatten binary predictions and targets to ``[N]`` scores and ``[N]`` 0/1 long labels.

    ``pred`` is ``[N]`` or ``[N x 1]`` scores of the positive class, or ``[N x 2]`` scores of both classes
    (column 1 is the positive one). ``target`` is ``[N]`` or ``[N x 1]`` labels in {0, 1}, or ``[N x 2]``
    one-hot (column 1 marks the positives).
    """
    scores = _positive_column(pred, "predictions")
    labels = _positive_column(target, "targets")
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.numel()} predictions for {labels.numel()} targets")
    if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("binary targets must be 0 or 1")
    return scores, labels.long()


def _positive_column(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dim() == 2 and x.shape[1] == 2:
        return x[:, 1]
    if x.dim() == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() == 1:
        return x
    raise ValueError(f"binary {what} must have shape [N], [N x 1] or [N x 2], not {tuple(x.shape)}")


class BinaryMetric(Metric):
    """Base of metrics on binary predictions thresholded at ``threshold``.

    An example is predicted positive when its score is at least ``threshold`` and negative when it is
    below. Subclasses implement :meth:`compute_binary`; :meth:`compute` first brings the inputs to
    ``[N]`` scores and ``[N]`` 0/1 labels (see :func:`binary_inputs`).

    Parameters
    ----------
    threshold : float
        The score at and above which an example is predicted positive (default 0.5).
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the metric given predictions and targets.

        Parameters
        ----------
        pred : torch.Tensor
            Scores of the positive class, ``[N]`` (or ``[N x 2]``, column 1).
        target : torch.Tensor
            The binary targets ``[N]``.

        Returns
        -------
        torch.Tensor
            The computed binary metric (0-d).
        """
        scores, labels = binary_inputs(pred, target)
        return self.compute_binary(scores, labels)

    def compute_binary(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute a binary-input metric.

        Parameters
        ----------
        pred : torch.Tensor
            ``[N]`` scores; ``pred >= threshold`` is a positive prediction.
        target : torch.Tensor
            ``[N]`` ground truth labels, each 0 or 1.

        Returns
        -------
        torch.Tensor
            The computed binary metric (0-d).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_binary(pred, target)")

    def __str__(self) -> str:
        """The class name, with ``_t<threshold>`` when the threshold is not 0.5."""
        name = type(self).__name__
        return name if self.threshold == 0.5 else f"{name}_t{self.threshold:g}"


class BinaryAccuracy(BinaryMetric):
    """Binary accuracy: ``|true positives + true negatives| / N``.

    Aggregation over batches uses the exact weighted mean of the base class.
    """

    def compute_binary(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The fraction of thresholded predictions equal to the target (0-d float tensor)."""
        if target.numel() == 0:
            raise ValueError("BinaryAccuracy of an empty batch is undefined")
        return ((pred >= self.threshold).long() == target).float().mean()


class _PositiveLabelMetric(BinaryMetric, should_register=False):
    """Shared counting of precision and recall: predicted, actual and true positives of one label.

    ``positive_label`` chooses the class that counts as positive: with 0, precision and recall are
    those of the negative class (a prediction is 0 when its score is below the threshold).
    """

    def __init__(self, threshold: float = 0.5, positive_label: int = 1) -> None:
        super().__init__(threshold)
        if positive_label not in (0, 1):
            raise ValueError(f"positive_label must be 0 or 1, not {positive_label!r}")
        self.positive_label = int(positive_label)

    def _counts(self, pred: torch.Tensor, target: torch.Tensor) -> Tuple[int, int, int]:
        """(true positives, predicted positives, actual positives)."""
        predicted = (pred >= self.threshold).long() == self.positive_label
        actual = target == self.positive_label
        return int((predicted & actual).sum()), int(predicted.sum()), int(actual.sum())

    def _ratio(self, true_pos: int, predicted: int, actual: int) -> float:
        raise NotImplementedError

    def compute_binary(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the metric of one batch (0-d float tensor; 0.0 when its denominator is 0)."""
        return torch.tensor(self._ratio(*self._counts(pred, target)))

    def aggregate(self, state: Optional[MetricState], pred: torch.Tensor, target: torch.Tensor) -> MetricState:
        """Keep the true, predicted and actual positive counts."""
        with torch.no_grad():
            tp, predicted, actual = self._counts(*binary_inputs(pred, target))
        old = state or {"true_pos": 0, "predicted": 0, "actual": 0}
        return {"true_pos": old["true_pos"] + tp, "predicted": old["predicted"] + predicted,
                "actual": old["actual"] + actual}

    def finalize(self, state: Optional[MetricState]) -> float:
        state = _require_state(self, state)
        return self._ratio(state["true_pos"], state["predicted"], state["actual"])

    def __str__(self) -> str:
        """The class name, with ``_t<threshold>`` and ``_label<positive_label>`` when not the defaults."""
        name = super().__str__()
        return name if self.positive_label == 1 else f"{name}_label{self.positive_label}"


class BinaryPrecision(_PositiveLabelMetric):
    """Binary precision: ``|true positives| / (|true positives| + |false positives|)``.

    An example is predicted negative when its score is below ``threshold``. With no predicted
    positive the precision is defined as 0.0.

    Parameters
    ----------
    threshold : float
        The score at and above which an example is predicted positive (default 0.5).
    positive_label : int
        The label (0 or 1) whose precision is measured (default 1).
    """

    def _ratio(self, true_pos: int, predicted: int, actual: int) -> float:
        return true_pos / predicted if predicted else 0.0


class BinaryRecall(_PositiveLabelMetric):
    """Binary recall: ``|true positives| / (|true positives| + |false negatives|)``.

    An example is predicted negative when its score is below ``threshold``. With no actual positive
    the recall is defined as 0.0. Parameters: as in :class:`BinaryPrecision` (``positive_label`` is
    the label whose recall is measured).
    """

    def _ratio(self, true_pos: int, predicted: int, actual: int) -> float:
        return true_pos / actual if actual else 0.0
