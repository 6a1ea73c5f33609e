"""The Metric interface: compute a value on a batch, or aggregate it exactly over many batches."""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from flambe.compile import Component

#: The running state of :meth:`Metric.aggregate`: a small dict of sums, counts or tensors.
MetricState = Dict[str, Any]


class Metric(Component):
    """Base Metric interface.

    A metric maps model predictions and targets to one number. Subclasses implement
    :meth:`compute`; calling the metric is the same as calling :meth:`compute`, so a metric whose
    computation is differentiable (the multi-label losses) also works as a loss function.

    For evaluation over many batches, :meth:`aggregate` folds batches into a running state and
    :meth:`finalize` turns that state into a float equal (up to float rounding) to :meth:`compute` on
    all the predictions and targets concatenated::

        state = None
        for pred, target in batches:
            state = metric.aggregate(state, pred, target)
        value = metric.finalize(state)

    The base implementation is an exact weighted mean: each batch contributes ``compute(pred, target)``
    weighted by its number of examples (``len(target)``). That is right for every metric that is a mean
    over examples; metrics that are not (AUC, precision, recall, perplexity) override both methods and
    keep the counts they need.

    ``str(metric)`` is the name used when logging (the class name by default).
    """

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the metric over the given predictions and targets.

        Parameters
        ----------
        pred : torch.Tensor
            The model predictions.
        target : torch.Tensor
            The ground truth targets.

        Returns
        -------
        torch.Tensor
            The computed metric (a 0-d tensor).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute(pred, target)")

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Same as :meth:`compute`."""
        return self.compute(*args, **kwargs)

    def __str__(self) -> str:
        """The name of the metric, for logging."""
        return type(self).__name__

    # ------------------------------------------------------------------ running aggregation
    def aggregate(self, state: Optional[MetricState], pred: torch.Tensor, target: torch.Tensor) -> MetricState:
        """Fold one batch into the running state (``None`` before the first batch); return the new state.

        Gradients are never tracked here. The default keeps ``total`` (the sum of batch values, each
        times the batch size) and ``count`` (the number of examples).
        """
        with torch.no_grad():
            value = float(self.compute(pred, target))
        n = int(target.shape[0]) if target.dim() > 0 else 1
        total, count = (0.0, 0) if state is None else (state["total"], state["count"])
        return {"total": total + value * n, "count": count + n}

    def finalize(self, state: Optional[MetricState]) -> float:
        """The metric over every batch folded into ``state``.

        Raises
        ------
        ValueError
            If no example was aggregated.
        """
        count = _require_state(self, state)["count"]
        if count == 0:
            raise ValueError(f"{self}: no example was aggregated")
        return float(state["total"]) / count  # type: ignore[index]


def _require_state(metric: Metric, state: Optional[MetricState]) -> MetricState:
    """``state``, or a clear error when nothing was aggregated."""
    if state is None:
        raise ValueError(f"{metric}: finalize() needs the state returned by aggregate(); no batch was aggregated")
    return state
