"""Training and evaluation components: Trainer, Evaluator, Script, DistillationTrainer."""

from flambe.learn.distillation import DistillationTrainer
from flambe.learn.evaluator import Evaluator
from flambe.learn.script import Script
from flambe.learn.trainer import Trainer

__all__ = ["Trainer", "Evaluator", "Script", "DistillationTrainer"]
