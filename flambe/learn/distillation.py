"""DistillationTrainer: train a student to match a teacher's softened outputs and the labels."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from flambe.dataset import Dataset
from flambe.learn.trainer import Trainer
from flambe.metric import Metric
from flambe.nn.module import Module
from flambe.sampler import Sampler


class DistillationTrainer(Trainer):
    """Knowledge distillation (Hinton et al., 2015) as a :class:`Trainer`.

    The loss of a batch is ``alpha_kl * T² * KL(softmax(teacher/T) || softmax(student/T))
    + (1 - alpha_kl) * loss_fn(student, target)``. Both models must output **raw logits** (for
    example ``SoftmaxLayer(take_log=False)``). The teacher is frozen and kept in eval mode; the
    student is what is trained, validated, saved as the best model, and exposed as ``model``.

    Parameters
    ----------
    teacher_model, student_model : Module
        Called as ``model(*columns)`` (no target) and returning logits ``[B x C]``; in validation the
        student is called the same way, on its own columns.
    teacher_columns, student_columns : sequence of int, optional
        Which input columns of a batch (the target excluded) each model receives; default all.
    alpha_kl : float
        Weight of the distillation term, in [0, 1]. Default 0.5.
    temperature : float
        Softening temperature ``T``. Default 1.
    unlabel_dataset : Dataset, optional
        Extra unlabeled examples (its ``train`` split; items hold input columns only). Each training
        batch is followed by one batch of it, trained on the distillation term alone.
    unlabel_sampler : Sampler, optional
        Sampler of ``unlabel_dataset`` (required with it).

    Every other parameter is the :class:`Trainer`'s; ``optimizer`` should hold the student's parameters.
    """

    def __init__(self, dataset: Dataset, train_sampler: Sampler, val_sampler: Sampler, teacher_model: Module,
                 student_model: Module, loss_fn: Any, metric_fn: Metric, optimizer: torch.optim.Optimizer,
                 teacher_columns: Optional[Sequence[int]] = None, student_columns: Optional[Sequence[int]] = None,
                 alpha_kl: float = 0.5, temperature: float = 1.0, unlabel_dataset: Optional[Dataset] = None,
                 unlabel_sampler: Optional[Sampler] = None, **kwargs: Any) -> None:
        if not 0.0 <= alpha_kl <= 1.0:
            raise ValueError(f"DistillationTrainer: alpha_kl must be in [0, 1], got {alpha_kl}")
        if temperature <= 0:
            raise ValueError(f"DistillationTrainer: temperature must be > 0, got {temperature}")
        if (unlabel_dataset is None) != (unlabel_sampler is None):
            raise ValueError("DistillationTrainer: give unlabel_dataset and unlabel_sampler together")
        super().__init__(dataset, train_sampler, val_sampler, student_model, loss_fn, metric_fn, optimizer, **kwargs)
        self.teacher_model = teacher_model.to(self.device)
        self.teacher_model.eval()
        for p in self.teacher_model.parameters():
            p.requires_grad_(False)
        self.student_model = self.model
        self.teacher_columns = list(teacher_columns) if teacher_columns is not None else None
        self.student_columns = list(student_columns) if student_columns is not None else None
        self.alpha_kl = alpha_kl
        self.temperature = temperature
        self.unlabel_dataset = unlabel_dataset
        self.unlabel_sampler = unlabel_sampler
        self._unlabeled: Optional[Any] = None
        self._unlabeled_seen = 0
        self.register_attrs("_unlabeled_seen")

    def _columns(self, inputs: Sequence[Any], chosen: Optional[Sequence[int]]) -> Tuple[Any, ...]:
        return tuple(inputs) if chosen is None else tuple(inputs[i] for i in chosen)

    def _logits(self, inputs: Sequence[Any]) -> Tuple[torch.Tensor, torch.Tensor]:
        student = self.student_model(*self._columns(inputs, self.student_columns))
        with torch.no_grad():
            teacher = self.teacher_model(*self._columns(inputs, self.teacher_columns))
        return student, teacher

    def _kl(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        return F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                        reduction="batchmean", log_target=True) * (t * t)

    def _model_output(self, batch: Sequence[Any]) -> Tuple[Any, Any]:
        """``(student logits, target)``: validation sees the student on ``student_columns`` only."""
        return self.student_model(*self._columns(batch[:-1], self.student_columns)), batch[-1]

    def _compute_loss(self, batch: Sequence[Any]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, target = batch[:-1], batch[-1]
        student, teacher = self._logits(inputs)
        loss = self.alpha_kl * self._kl(student, teacher) + (1 - self.alpha_kl) * self.loss_fn(student, target)
        if self.unlabel_dataset is not None:
            loss = loss + self.alpha_kl * self._kl(*self._logits(self._next_unlabeled()))
        return loss, student, target

    def _next_unlabeled(self) -> Tuple[Any, ...]:
        if self._unlabeled is None:
            length = self.unlabel_sampler.length(self.unlabel_dataset.train)
            epoch, skip = divmod(self._unlabeled_seen, max(length, 1))
            self._unlabeled = iter(self.unlabel_sampler.sample(self.unlabel_dataset.train, n_epochs=-1,
                                                               start_epoch=epoch, skip_batches=skip))
        self._unlabeled_seen += 1
        return self._batch_to_device(next(self._unlabeled))

    def _load_state(self, *args: Any, **kwargs: Any) -> None:
        super()._load_state(*args, **kwargs)
        self._unlabeled = None
