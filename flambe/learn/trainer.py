"""Trainer: step-wise supervised training with one validation pass per step."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from flambe.compile.component import Component, State
from flambe.dataset import Dataset
from flambe.learn.utils import batch_to_device, model_output, resolve_device
from flambe.logging import log
from flambe.metric import Metric
from flambe.nn.module import Module
from flambe.sampler import Sampler

logger = logging.getLogger(__name__)

_STATEFUL = ("optimizer", "scheduler", "iter_scheduler")


class Trainer(Component):
    """Train a model on a dataset, one step per :meth:`run`, validating after every step.

    One call to :meth:`run` is one **step**: a fixed amount of training (``iter_per_step`` iterations, or
    ``epoch_per_step`` epochs of the training sampler), then one validation pass over ``dataset.val``.
    :meth:`metric` is the best validation metric seen so far, so schedulers, search algorithms and
    ``reduce`` compare variants by it. After the last step the model holds the weights of its best
    step, which is what a downstream stage linking ``!@ train.model`` gets.

    Parameters
    ----------
    dataset : Dataset
        Its ``train`` split is trained on and its ``val`` split validated on.
    train_sampler : Sampler
        Makes training batches. It is drawn as one endless, seeded stream, so steps need not align
        with epochs and a restored trainer continues the stream exactly where it was.
    val_sampler : Sampler
        Makes validation batches (one full pass per step).
    model : Module
        Called as ``model(*batch)``; it returns ``(pred, target)`` when given a target.
    loss_fn : callable
        ``loss_fn(pred, target)`` → a scalar tensor to minimize (e.g. ``!torch.NLLLoss``).
    metric_fn : Metric
        The validation metric that :meth:`metric` reports and that decides the best model.
    optimizer : torch.optim.Optimizer
        Built on the model's parameters (``params: !@ train[model].trainable_params``).
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped once per step, after validation. ``ReduceLROnPlateau`` is given the validation metric.
    iter_scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped after every optimizer update (warm-up, linear decay, one-cycle).
    device : str, optional
        Where the model and batches live; default ``cuda`` when available, else ``cpu``.
    max_steps : int
        How many steps (calls to :meth:`run`) training lasts. Default 10.
    epoch_per_step : float
        Training per step, in epochs of ``train_sampler`` (may be fractional). Default 1.0. Ignored
        when ``iter_per_step`` is given.
    iter_per_step : int, optional
        Training per step, in iterations (optimizer updates). Takes precedence over ``epoch_per_step``.
    batches_per_iter : int
        Batches whose gradients are accumulated into one optimizer update. Default 1. The loss of each
        batch is divided by it, so the update equals one over a batch that many times larger.
    lower_is_better : bool
        True when a smaller validation metric is better (loss, perplexity). Default False.
    max_grad_norm : float, optional
        Gradients are rescaled so their total 2-norm is at most this, before each update.
    max_grad_abs_val : float, optional
        Every gradient value is clamped into ``[-v, v]`` before each update.
    extra_validation_metrics : list of Metric or dict of name → Metric, optional
        Also computed on every validation pass and logged (``Validation/<name>``).
    extra_training_metrics : list of Metric or dict of name → Metric, optional
        Computed on the training batches of each step and logged (``Train/<name>``); the training loss
        and ``metric_fn`` are always logged.
    log_every : int, optional
        Also log the running training loss every this many iterations (default: once per step).

    Notes
    -----
    Logged values (``flambe.log``, so they reach TensorBoard and the trial log): ``Train/loss``,
    ``Train/<metric_fn>``, ``Train/lr``, ``Validation/loss``, ``Validation/<metric_fn>`` and each extra
    metric, all at ``global_step`` = the step number. A checkpoint holds the model, the optimizer and
    schedulers, the best model's weights, the position in the training stream and the RNG state, so a
    trainer restored from it continues exactly as the one that saved it would have.
    """

    def __init__(self,
                 dataset: Dataset,
                 train_sampler: Sampler,
                 val_sampler: Sampler,
                 model: Module,
                 loss_fn: Any,
                 metric_fn: Metric,
                 optimizer: torch.optim.Optimizer,
                 scheduler: Optional[Any] = None,
                 iter_scheduler: Optional[Any] = None,
                 device: Optional[str] = None,
                 max_steps: int = 10,
                 epoch_per_step: float = 1.0,
                 iter_per_step: Optional[int] = None,
                 batches_per_iter: int = 1,
                 lower_is_better: bool = False,
                 max_grad_norm: Optional[float] = None,
                 max_grad_abs_val: Optional[float] = None,
                 extra_validation_metrics: Optional[Any] = None,
                 extra_training_metrics: Optional[Any] = None,
                 log_every: Optional[int] = None) -> None:
        _check_positive("max_steps", max_steps)
        _check_positive("batches_per_iter", batches_per_iter)
        if iter_per_step is not None:
            _check_positive("iter_per_step", iter_per_step)
        elif not epoch_per_step > 0:
            raise ValueError(f"Trainer: epoch_per_step must be > 0, got {epoch_per_step}")
        self.dataset = dataset
        self.train_sampler = train_sampler
        self.val_sampler = val_sampler
        self.model = model
        self.loss_fn = loss_fn
        self.metric_fn = metric_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.iter_scheduler = iter_scheduler
        self.device = resolve_device(device)
        self.max_steps = max_steps
        self.epoch_per_step = epoch_per_step
        self.iter_per_step = iter_per_step
        self.batches_per_iter = batches_per_iter
        self.lower_is_better = lower_is_better
        self.max_grad_norm = max_grad_norm
        self.max_grad_abs_val = max_grad_abs_val
        self.extra_validation_metrics = _named_metrics(extra_validation_metrics)
        self.extra_training_metrics = _named_metrics(extra_training_metrics)
        self.log_every = log_every

        self.model.to(self.device)
        n_batches = self.train_sampler.length(self.dataset.train)
        if n_batches < 1:
            raise ValueError("Trainer: the training sampler makes no batch from dataset.train "
                             "(is the train split empty, or drop_last set with fewer examples than batch_size?)")
        self._batches_per_epoch = n_batches
        self._step = 0
        self._iteration = 0
        self._batches_seen = 0
        self._best_metric: Optional[float] = None
        self._last_metric: Optional[float] = None
        self._best_model: Optional[Dict[str, torch.Tensor]] = None
        self._stream: Optional[Iterator[Tuple[torch.Tensor, ...]]] = None
        # the running-loss window of ``log_every`` may span steps: its sum and size carry over
        self._window_loss = 0.0
        self._window_batches = 0
        self.register_attrs("_step", "_iteration", "_batches_seen", "_best_metric", "_last_metric",
                            "_window_loss", "_window_batches")

    # ------------------------------------------------------------------ the run contract
    @property
    def iterations_per_step(self) -> int:
        """Optimizer updates per step (from ``iter_per_step``, else ``epoch_per_step``)."""
        if self.iter_per_step is not None:
            return self.iter_per_step
        return max(1, math.ceil(self.epoch_per_step * self._batches_per_epoch / self.batches_per_iter))

    def run(self) -> bool:
        """Train for one step, validate, and return whether more steps remain."""
        self._train_step()
        self._eval_step()
        self._step += 1
        done = self._step >= self.max_steps
        if done and self._best_model is not None:
            self.model.load_state_dict(self._best_model)
        return not done

    def metric(self) -> Optional[float]:
        """The best validation metric so far (None before the first step)."""
        return self._best_metric

    @property
    def last_metric(self) -> Optional[float]:
        """The validation metric of the latest step."""
        return self._last_metric

    @property
    def best_model_state(self) -> Optional[Dict[str, torch.Tensor]]:
        """The model's ``state_dict`` at its best step so far."""
        return self._best_model

    # ------------------------------------------------------------------ hooks (override these)
    def _batch_to_device(self, batch: Sequence[Any]) -> Tuple[Any, ...]:
        """Move a batch to the trainer's device (override for batches of dicts)."""
        return batch_to_device(batch, self.device)

    def _model_output(self, batch: Sequence[Any]) -> Tuple[Any, Any]:
        """``(pred, target)`` of the model on one batch, in training and in validation."""
        return model_output(self.model, batch)

    def _compute_loss(self, batch: Sequence[Any]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, pred, target)`` of one training batch."""
        pred, target = self._model_output(batch)
        return self.loss_fn(pred, target), pred, target

    # ------------------------------------------------------------------ training
    def _batches(self) -> Iterator[Tuple[torch.Tensor, ...]]:
        """The endless training stream, positioned after the batches already trained on."""
        if self._stream is None:
            epoch, skip = divmod(self._batches_seen, self._batches_per_epoch)
            self._stream = iter(self.train_sampler.sample(self.dataset.train, n_epochs=-1,
                                                          start_epoch=epoch, skip_batches=skip))
        return self._stream

    def _train_step(self) -> None:
        self.model.train()
        stream = self._batches()
        metrics = {str(self.metric_fn): self.metric_fn, **self.extra_training_metrics}
        states: Dict[str, Any] = {name: None for name in metrics}
        loss_sum = torch.zeros((), device=self.device)
        window_sum = torch.full((), self._window_loss, device=self.device)
        window_batches = self._window_batches
        n_batches = 0
        every = self.log_every
        for _ in range(self.iterations_per_step):
            self.optimizer.zero_grad(set_to_none=True)
            for _ in range(self.batches_per_iter):
                batch = self._batch_to_device(next(stream))
                self._batches_seen += 1
                loss, pred, target = self._compute_loss(batch)
                (loss / self.batches_per_iter if self.batches_per_iter > 1 else loss).backward()
                detached = loss.detach()
                loss_sum += detached
                window_sum += detached
                window_batches += 1
                n_batches += 1
                with torch.no_grad():
                    pred = pred.detach()
                    for name, fn in metrics.items():
                        states[name] = fn.aggregate(states[name], pred, target)
            self._clip_gradients()
            self.optimizer.step()
            self._iteration += 1
            if self.iter_scheduler is not None:
                self.iter_scheduler.step()
            if every and self._iteration % every == 0:
                log("Train/running_loss", (window_sum / window_batches).item(), self._iteration)
                window_sum.zero_()
                window_batches = 0
        if every:
            self._window_loss, self._window_batches = window_sum.item(), window_batches
        step = self._step + 1
        log("Train/loss", (loss_sum / max(n_batches, 1)).item(), step)
        for name, fn in metrics.items():
            log(f"Train/{name}", fn.finalize(states[name]), step)
        log("Train/lr", self.optimizer.param_groups[0]["lr"], step)

    def _clip_gradients(self) -> None:
        if self.max_grad_norm is None and self.max_grad_abs_val is None:
            return
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.max_grad_abs_val is not None:
            torch.nn.utils.clip_grad_value_(params, self.max_grad_abs_val)
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)

    # ------------------------------------------------------------------ validation
    def _eval_step(self) -> None:
        loss, values = evaluate(self.model, self.val_sampler, self.dataset.val, self._batch_to_device,
                                {str(self.metric_fn): self.metric_fn, **self.extra_validation_metrics},
                                loss_fn=self.loss_fn, output_fn=self._model_output)
        step = self._step + 1
        value = values[str(self.metric_fn)]
        if loss is not None:
            log("Validation/loss", loss, step)
        for name, metric_value in values.items():
            log(f"Validation/{name}", metric_value, step)
        self._last_metric = value
        if self._is_better(value):
            self._best_metric = value
            self._best_model = {k: t.detach().clone() for k, t in self.model.state_dict().items()}
        if self.scheduler is not None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(value)
            else:
                self.scheduler.step()
        logger.info("step %d/%d: validation %s = %.4f (best %.4f)", step, self.max_steps, self.metric_fn,
                    value, self._best_metric)

    def _is_better(self, value: float) -> bool:
        if math.isnan(value):
            return self._best_metric is None
        if self._best_metric is None or math.isnan(self._best_metric):
            return True
        return value < self._best_metric if self.lower_is_better else value > self._best_metric

    # ------------------------------------------------------------------ state
    def _state(self, state_dict: State, prefix: str, local_metadata: Dict[str, Any]) -> State:
        # Optimizers and schedulers built from YAML (``!torch.Adam``) are Components and save their own
        # state in their own directory; ones built in Python are saved here.
        for name in _STATEFUL:
            target = getattr(self, name)
            if target is not None and not isinstance(target, Component):
                state_dict[f"{prefix}{name}_state"] = target.state_dict()
        # Which model parameter each optimizer slot holds: an optimizer built in Python is saved as a
        # pickle whose parameters are copies; loading binds the slots back to the model's own tensors.
        names = {id(p): name for name, p in self.model.named_parameters()}
        state_dict[prefix + "optimizer_params"] = [[names.get(id(p)) for p in group["params"]]
                                                   for group in self.optimizer.param_groups]
        if self._best_model is not None:
            state_dict[prefix + "best_model"] = self._best_model
        state_dict[prefix + "rng"] = torch.get_rng_state()
        if self.device.type == "cuda":
            state_dict[prefix + "cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state_dict

    def _load_state(self, state_dict: State, prefix: str, local_metadata: Dict[str, Any],
                    strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                    error_msgs: List[str]) -> None:
        self._bind_optimizer(state_dict.get(prefix + "optimizer_params"))
        for name in _STATEFUL:
            target, key = getattr(self, name), f"{prefix}{name}_state"
            if target is None or isinstance(target, Component):
                continue
            if key in state_dict:
                target.load_state_dict(copy.deepcopy(state_dict[key]))
            else:
                missing_keys.append(key)
        self._best_model = state_dict.get(prefix + "best_model")
        if prefix + "rng" in state_dict:
            torch.set_rng_state(state_dict[prefix + "rng"])
        if prefix + "cuda_rng" in state_dict and self.device.type == "cuda":
            torch.cuda.set_rng_state(state_dict[prefix + "cuda_rng"], self.device)
        self._stream = None  # restart the training stream at the restored position

    def _bind_optimizer(self, names: Optional[List[List[Optional[str]]]]) -> None:
        """Put the model's parameters back into the optimizer slots that held them when it was saved."""
        if not names:
            return
        params = dict(self.model.named_parameters())
        rebound = False
        for group, group_names in zip(self.optimizer.param_groups, names):
            for i, name in enumerate(group_names):
                if name in params and group["params"][i] is not params[name]:
                    group["params"][i] = params[name]
                    rebound = True
        if rebound:
            self.optimizer.state.clear()  # keyed by the stale copies; the saved state is loaded next


def evaluate(model: torch.nn.Module, sampler: Sampler, data: Any, to_device: Any,
             metrics: Dict[str, Metric], loss_fn: Optional[Any] = None,
             output_fn: Optional[Any] = None) -> Tuple[Optional[float], Dict[str, float]]:
    """One pass over ``data``: the mean loss (when ``loss_fn`` is given) and each metric, aggregated by batch.

    The loss mean is weighted by batch size, so it equals the loss over the whole split for a
    mean-reduced loss function. ``output_fn(batch) -> (pred, target)`` replaces the default call
    ``model(*batch)`` (the DistillationTrainer gives its student only the student's columns).
    """
    model.eval()
    states: Dict[str, Any] = {name: None for name in metrics}
    loss_sum = 0.0
    count = 0
    with torch.no_grad():
        for batch in sampler.sample(data, n_epochs=1):
            batch = to_device(batch)
            pred, target = output_fn(batch) if output_fn is not None else model_output(model, batch)
            if loss_fn is not None:
                size = len(target) if hasattr(target, "__len__") else 1
                loss_sum += float(loss_fn(pred, target)) * size
                count += size
            for name, fn in metrics.items():
                states[name] = fn.aggregate(states[name], pred, target)
    if all(state is None for state in states.values()) and metrics:
        raise ValueError("evaluation data is empty: no batch to compute the metrics on")
    values = {name: float(fn.finalize(states[name])) for name, fn in metrics.items()}
    return (loss_sum / count if count else None), values


def _named_metrics(metrics: Any) -> Dict[str, Metric]:
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        return dict(metrics)
    return {str(m): m for m in metrics}


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Trainer: {name} must be a positive integer, got {value!r}")
