"""Evaluator: compute metrics of a model on one split of a dataset, once."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from flambe.compile.component import Component
from flambe.dataset import Dataset
from flambe.learn.trainer import _named_metrics, evaluate
from flambe.learn.utils import batch_to_device, resolve_device
from flambe.logging import log
from flambe.metric import Metric
from flambe.nn.module import Module
from flambe.sampler import BaseSampler, Sampler

logger = logging.getLogger(__name__)


class Evaluator(Component):
    """Evaluate ``model`` on ``dataset.<eval_data>`` with ``metric_fn`` in one :meth:`run`.

    Parameters
    ----------
    dataset : Dataset
        The dataset holding the split to evaluate.
    model : Module
        Called as ``model(*batch)``, returning ``(pred, target)``.
    metric_fn : Metric
        The metric :meth:`metric` reports.
    eval_sampler : Sampler, optional
        Makes the batches; default an unshuffled ``BaseSampler`` of 64.
    eval_data : str
        The split: ``'test'`` (default), ``'val'`` or ``'train'``.
    device : str, optional
        Default ``cuda`` when available, else ``cpu``.
    extra_metrics : list of Metric or dict of name → Metric, optional
        Also computed and logged; all values are in :attr:`results`.
    """

    def __init__(self, dataset: Dataset, model: Module, metric_fn: Metric, eval_sampler: Optional[Sampler] = None,
                 eval_data: str = "test", device: Optional[str] = None, extra_metrics: Optional[Any] = None) -> None:
        if eval_data not in ("train", "val", "test"):
            raise ValueError(f"Evaluator: eval_data must be 'train', 'val' or 'test', got {eval_data!r}")
        self.dataset = dataset
        self.model = model
        self.metric_fn = metric_fn
        self.eval_sampler = eval_sampler if eval_sampler is not None else BaseSampler(shuffle=False)
        self.eval_data = eval_data
        self.device = resolve_device(device)
        self.extra_metrics = _named_metrics(extra_metrics)
        self.results: Dict[str, float] = {}
        self.model.to(self.device)
        self.register_attrs("results")

    def run(self, block_name: Optional[str] = None) -> bool:
        """Evaluate once; there is never a second step."""
        metrics = {str(self.metric_fn): self.metric_fn, **self.extra_metrics}
        _, self.results = evaluate(self.model, self.eval_sampler, getattr(self.dataset, self.eval_data),
                                   lambda batch: batch_to_device(batch, self.device), metrics)
        prefix = f"{block_name}/" if block_name else ""
        for name, value in self.results.items():
            log(f"{prefix}Eval/{self.eval_data}/{name}", value, 0)
        logger.info("%s on %s: %s", type(self.model).__name__, self.eval_data,
                    ", ".join(f"{k} = {v:.4f}" for k, v in self.results.items()))
        return False

    def metric(self) -> Optional[float]:
        """``metric_fn`` on the evaluated split (None before :meth:`run`)."""
        return self.results.get(str(self.metric_fn))
