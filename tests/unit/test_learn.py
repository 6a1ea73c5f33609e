"""Unit tests for flambe.learn: Trainer (steps, checkpoints, best model, clipping, schedulers, logging),
Evaluator, DistillationTrainer, and a Trainer built from YAML."""

from __future__ import annotations

import copy
import math
import textwrap
from collections import defaultdict
from typing import Dict, List

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import flambe
from flambe.compile import yaml
from flambe.dataset import TabularDataset
from flambe.learn import DistillationTrainer, Evaluator, Trainer
from flambe.logging import TrialLogging, read_scalars
from flambe.metric import Accuracy, Metric
from flambe.nn.module import Module
from flambe.sampler import BaseSampler

# A fixed linear "truth": labels are argmax(x @ TRUE_W), so a linear student can learn them.
TRUE_W = np.array([[2.0, -1.0, 0.0], [0.0, 2.0, -1.5], [1.0, 0.5, 2.0], [-1.0, 0.0, 1.0]], dtype=np.float32)
N_TRAIN, N_VAL, N_TEST = 40, 12, 12  # batch 8 → 5 training batches per epoch


def _features(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def _rows(n: int, seed: int) -> List[list]:
    xs = _features(n, seed)
    ys = (xs @ TRUE_W).argmax(axis=1)
    return [[x, int(y)] for x, y in zip(xs, ys)]


def _dataset() -> TabularDataset:
    return TabularDataset(_rows(N_TRAIN, 0), _rows(N_VAL, 1), _rows(N_TEST, 2))


def _split(split) -> tuple:
    """A whole split as ``(X [N x 4], y [N])``."""
    xs, ys = zip(*split)
    return torch.stack(xs), torch.stack(ys)


# ---------------------------------------------------------------------- models, metrics, optimizers
class LrnNet(Module):
    """MLP with dropout; log-probabilities out."""

    def __init__(self, dim: int = 4, hidden: int = 8, classes: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(dim, hidden)
        self.drop = torch.nn.Dropout(dropout)
        self.l2 = torch.nn.Linear(hidden, classes)

    def forward(self, x, target=None):
        out = torch.log_softmax(self.l2(self.drop(torch.relu(self.l1(x)))), dim=-1)
        return out if target is None else (out, target)


class LrnLinear(Module):
    """One linear layer: log-probabilities or raw logits. Records the batch sizes it trains on."""

    def __init__(self, dim: int = 4, classes: int = 3, logits: bool = False) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(dim, classes)
        self.logits = logits
        self.train_sizes: List[int] = []

    def forward(self, x, target=None):
        if self.training:
            self.train_sizes.append(x.shape[0])
        out = self.lin(x) if self.logits else torch.log_softmax(self.lin(x), dim=-1)
        return out if target is None else (out, target)


class LrnPair(Module):
    """Raw logits from two input columns."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, z, target=None):
        out = self.lin(torch.cat([x, z], dim=-1))
        return out if target is None else (out, target)


class LrnKnob(Module):
    """Predicts its single parameter for every example (the metric LrnMeanPred then reads it back)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, target=None):
        pred = self.w.expand(x.shape[0])
        return pred if target is None else (pred, target)


class LrnBare(Module):
    """Wrong: returns only the prediction, even when given a target."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x, target=None):
        return torch.log_softmax(self.lin(x), dim=-1)


class LrnNLL(Metric):
    """Mean negative log-likelihood of log-probabilities (continuous, so any drift shows)."""

    def compute(self, pred, target):
        return F.nll_loss(pred, target)


class LrnMeanPred(Metric):
    def compute(self, pred, target):
        return pred.float().mean()


def _knob_loss(pred, target):
    return (pred - target.float()).pow(2).mean()


class LrnRecordingSGD(torch.optim.SGD):
    """SGD that records, at every update, the gradients and the learning rate it was given."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self.grads: List[List[torch.Tensor]] = []
        self.lrs: List[float] = []

    def step(self, closure=None):
        self.grads.append([p.grad.detach().clone() for g in self.param_groups for p in g["params"]])
        self.lrs.append(self.param_groups[0]["lr"])
        return super().step(closure)


class LrnScriptedOpt(torch.optim.SGD):
    """Ignores gradients: each update sets every parameter to the next scripted value."""

    def __init__(self, params, values: List[float]) -> None:
        super().__init__(params, lr=0.0)
        self.values = list(values)

    @torch.no_grad()
    def step(self, closure=None):
        value = self.values.pop(0)
        for group in self.param_groups:
            for p in group["params"]:
                p.fill_(value)


class LrnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    def __init__(self, optimizer, **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        self.seen: List[float] = []

    def step(self, metrics, *args, **kwargs):
        self.seen.append(metrics)
        return super().step(metrics, *args, **kwargs)


class LrnRecLoss:
    """NLL loss that records the value of every training batch (validation runs without grad)."""

    def __init__(self) -> None:
        self.train_values: List[float] = []

    def __call__(self, pred, target):
        value = F.nll_loss(pred, target)
        if torch.is_grad_enabled():
            self.train_values.append(value.item())
        return value


def _trainer(model=None, dataset=None, batch_size: int = 8, shuffle: bool = False, seed=0, optimizer=None,
             loss_fn=None, metric_fn=None, **kwargs) -> Trainer:
    model = model if model is not None else LrnLinear()
    kwargs.setdefault("max_steps", 3)
    kwargs.setdefault("device", "cpu")
    return Trainer(dataset if dataset is not None else _dataset(),
                   BaseSampler(batch_size=batch_size, shuffle=shuffle, seed=seed),
                   BaseSampler(batch_size=5, shuffle=False), model,
                   loss_fn if loss_fn is not None else torch.nn.NLLLoss(),
                   metric_fn if metric_fn is not None else Accuracy(),
                   optimizer if optimizer is not None else torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def _params(model) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_params(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------------- 1. checkpoint / restore
def _checkpoint_trainer(seed) -> Trainer:
    torch.manual_seed(0)
    model = LrnNet(dropout=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    return Trainer(_dataset(), BaseSampler(batch_size=8, seed=seed), BaseSampler(batch_size=5, shuffle=False),
                   model, torch.nn.NLLLoss(), LrnNLL(), optimizer,
                   scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5),
                   iter_scheduler=torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.97),
                   device="cpu", max_steps=5, epoch_per_step=0.6, lower_is_better=True)


@pytest.mark.parametrize("seed", [3, None], ids=["seeded-sampler", "unseeded-sampler"])
def test_checkpoint_restore_continues_identically(tmp_path, seed):
    # 0.6 epoch of 5 batches = 3 updates per step, so steps and epochs do not line up.
    straight = _checkpoint_trainer(seed)
    straight_metrics = []
    while straight.run():
        straight_metrics.append(straight.last_metric)
    straight_metrics.append(straight.last_metric)
    assert len(straight_metrics) == 5

    first = _checkpoint_trainer(seed)
    resumed_metrics = []
    for _ in range(2):
        assert first.run()
        resumed_metrics.append(first.last_metric)
    flambe.save(first, str(tmp_path / "ckpt"))
    del first
    torch.manual_seed(12345)  # whatever the process did since, the checkpoint's RNG state wins
    torch.rand(17)
    restored = flambe.load(str(tmp_path / "ckpt"))
    assert isinstance(restored, Trainer)
    assert restored.metric() == min(resumed_metrics)
    while restored.run():
        resumed_metrics.append(restored.last_metric)
    resumed_metrics.append(restored.last_metric)

    assert resumed_metrics == straight_metrics
    assert restored.metric() == straight.metric() == min(straight_metrics)
    _assert_same_params(_params(restored.model), _params(straight.model))
    assert restored.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    # the training actually happened on the restored model's own parameters
    assert restored.optimizer.param_groups[0]["params"][0] is next(restored.model.parameters())


def test_restore_sets_the_rng_state(tmp_path):
    """Control for the test above: dropout draws from torch's RNG, and loading a checkpoint resets it."""
    first = _checkpoint_trainer(3)
    first.run()
    flambe.save(first, str(tmp_path / "ckpt"))
    runs = []
    for scramble_after_load in (False, True, False):
        trainer = flambe.load(str(tmp_path / "ckpt"))
        if scramble_after_load:
            torch.manual_seed(7)
        trainer.run()
        runs.append(trainer.model.l1.weight.detach().clone())
    assert torch.equal(runs[0], runs[2])
    assert not torch.equal(runs[0], runs[1])


# ---------------------------------------------------------------------- 2. step semantics
def test_iter_per_step_counts_optimizer_updates():
    model = LrnLinear()
    opt = LrnRecordingSGD(model.parameters())
    loss = LrnRecLoss()
    trainer = _trainer(model, optimizer=opt, loss_fn=loss, iter_per_step=3, batches_per_iter=2, epoch_per_step=7.0)
    trainer.run()
    assert len(opt.grads) == 3
    assert len(loss.train_values) == 6
    assert trainer.iterations_per_step == 3
    trainer.run()
    assert len(opt.grads) == 6
    assert len(loss.train_values) == 12


@pytest.mark.parametrize("epochs, per_iter, updates", [
    (1.0, 1, 5), (0.5, 1, 3), (0.5, 2, 2), (2.0, 2, 5), (0.1, 1, 1), (1.5, 3, 3)])
def test_epoch_per_step_updates(epochs, per_iter, updates):
    model = LrnLinear()
    opt = LrnRecordingSGD(model.parameters())
    loss = LrnRecLoss()
    trainer = _trainer(model, optimizer=opt, loss_fn=loss, epoch_per_step=epochs, batches_per_iter=per_iter)
    assert updates == max(1, math.ceil(epochs * 5 / per_iter))
    trainer.run()
    assert len(opt.grads) == updates
    assert len(loss.train_values) == updates * per_iter


def test_batches_per_iter_accumulates_like_a_bigger_batch():
    torch.manual_seed(0)
    small = LrnLinear()
    big = copy.deepcopy(small)
    start = _params(small)
    accumulated = _trainer(small, batch_size=8, batches_per_iter=2, iter_per_step=2,
                           optimizer=torch.optim.SGD(small.parameters(), lr=0.5))
    whole = _trainer(big, batch_size=16, batches_per_iter=1, iter_per_step=2,
                     optimizer=torch.optim.SGD(big.parameters(), lr=0.5))
    accumulated.run()
    whole.run()
    for key, value in _params(small).items():
        assert not torch.allclose(value, start[key])
        assert torch.allclose(value, _params(big)[key], atol=1e-6)


def test_max_steps_is_the_number_of_runs():
    trainer = _trainer(max_steps=3, iter_per_step=1)
    assert [trainer.run(), trainer.run(), trainer.run()] == [True, True, False]


# ---------------------------------------------------------------------- 3. best model, direction
@pytest.mark.parametrize("lower, values, best_so_far, best", [
    (False, [0.2, 0.5, 0.3], [0.2, 0.5, 0.5], 0.5),
    (True, [0.5, 0.2, 0.4], [0.5, 0.2, 0.2], 0.2),
    (False, [float("nan"), 0.1, 0.05], [None, 0.1, 0.1], 0.1),
])
def test_best_metric_and_best_model_restored(lower, values, best_so_far, best):
    model = LrnKnob()
    trainer = _trainer(model, optimizer=LrnScriptedOpt(model.parameters(), values), loss_fn=_knob_loss,
                       metric_fn=LrnMeanPred(), lower_is_better=lower, max_steps=3, iter_per_step=1)
    assert trainer.metric() is None
    seen_best, seen_last = [], []
    for _ in values:
        trainer.run()
        seen_best.append(trainer.metric())
        seen_last.append(trainer.last_metric)
    for got, want in zip(seen_last, values):
        assert got == pytest.approx(want, nan_ok=True)
    if best_so_far[0] is None:  # a NaN first step is kept only until a real value comes
        assert math.isnan(seen_best[0])
        seen_best, best_so_far = seen_best[1:], best_so_far[1:]
    assert seen_best == pytest.approx(best_so_far)
    # the last step was worse: the model holds the best step's weights, not the last ones
    assert model.w.item() == pytest.approx(best)
    assert trainer.best_model_state["w"].item() == pytest.approx(best)


def test_best_model_survives_save_load(tmp_path):
    model = LrnKnob()
    trainer = _trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0), loss_fn=_knob_loss,
                       metric_fn=LrnMeanPred(), max_steps=3, iter_per_step=1)
    with torch.no_grad():
        model.w.fill_(0.7)
    trainer.run()
    with torch.no_grad():
        model.w.fill_(0.1)
    trainer.run()
    assert trainer.metric() == pytest.approx(0.7)
    flambe.save(trainer, str(tmp_path / "t"))
    loaded = flambe.load(str(tmp_path / "t"))
    assert loaded.metric() == pytest.approx(0.7)
    assert loaded.last_metric == pytest.approx(0.1)
    assert loaded.model.w.item() == pytest.approx(0.1)
    assert loaded.run() is False  # third and last step (lr 0: still 0.1, worse) → back to the best weights
    assert loaded.model.w.item() == pytest.approx(0.7)


# ---------------------------------------------------------------------- 4. gradient clipping
def _first_batch_grads(model) -> List[torch.Tensor]:
    """The gradients of the NLL loss of the first (unshuffled) training batch of 8."""
    ref = copy.deepcopy(model)
    x, y = _split(_dataset().train)
    F.nll_loss(ref(x[:8]), y[:8]).backward()
    return [p.grad for p in ref.parameters()]


@pytest.mark.parametrize("kind", ["none", "norm", "value", "both"])
def test_gradient_clipping(kind):
    torch.manual_seed(0)
    model = LrnLinear()
    expected = _first_batch_grads(model)
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in expected])).item()
    top = max(g.abs().max().item() for g in expected)
    max_norm = norm / 4 if kind in ("norm", "both") else None
    max_val = top / 3 if kind in ("value", "both") else None
    opt = LrnRecordingSGD(model.parameters())
    _trainer(model, optimizer=opt, iter_per_step=1, max_grad_norm=max_norm, max_grad_abs_val=max_val).run()
    seen = opt.grads[0]
    seen_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in seen])).item()
    if kind == "none":
        for g, e in zip(seen, expected):
            assert torch.allclose(g, e)
    elif kind == "norm":  # same direction, total norm cut to max_norm
        assert seen_norm == pytest.approx(max_norm, rel=1e-4)
        for g, e in zip(seen, expected):
            assert torch.allclose(g, e * (max_norm / norm), atol=1e-6)
    elif kind == "value":  # every value clamped, the others untouched
        for g, e in zip(seen, expected):
            assert torch.allclose(g, e.clamp(-max_val, max_val))
        assert max(g.abs().max().item() for g in seen) == pytest.approx(max_val)
    else:  # both bounds hold
        assert seen_norm <= max_norm * (1 + 1e-4)
        assert max(g.abs().max().item() for g in seen) <= max_val * (1 + 1e-6)


# ---------------------------------------------------------------------- 5. schedulers
def test_scheduler_steps_once_per_run_and_iter_scheduler_per_update():
    model = LrnLinear()
    opt = LrnRecordingSGD(model.parameters(), lr=0.8)
    trainer = _trainer(model, optimizer=opt, iter_per_step=3, max_steps=3,
                       scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    trainer.run()
    trainer.run()
    assert opt.lrs == pytest.approx([0.8] * 3 + [0.4] * 3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)

    model = LrnLinear()
    opt = LrnRecordingSGD(model.parameters(), lr=0.8)
    trainer = _trainer(model, optimizer=opt, iter_per_step=3,
                       iter_scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    trainer.run()
    assert opt.lrs == pytest.approx([0.8, 0.4, 0.2])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_plateau_scheduler_gets_the_validation_metric():
    model = LrnKnob()
    opt = LrnScriptedOpt(model.parameters(), [0.5, 0.4, 0.3])
    plateau = LrnPlateau(opt, mode="max", patience=0, factor=0.5)
    trainer = _trainer(model, optimizer=opt, loss_fn=_knob_loss, metric_fn=LrnMeanPred(), iter_per_step=1,
                       scheduler=plateau)
    for _ in range(3):
        trainer.run()
    assert plateau.seen == pytest.approx([0.5, 0.4, 0.3])


# ---------------------------------------------------------------------- 6. logged values
def test_logged_values(tmp_path):
    torch.manual_seed(0)
    model = LrnNet(dropout=0.0)
    loss = LrnRecLoss()
    trainer = _trainer(model, loss_fn=loss, iter_per_step=3, max_steps=3, log_every=2,
                       extra_validation_metrics={"nll": LrnNLL()}, extra_training_metrics=[LrnNLL()])
    with TrialLogging(str(tmp_path / "trial")):
        trainer.run()
        trainer.run()
    logged: Dict[str, Dict[int, float]] = defaultdict(dict)
    for record in read_scalars(str(tmp_path / "trial")):
        logged[record["tag"]][record["step"]] = record["value"]
    for tag in ("Train/loss", "Train/Accuracy", "Train/LrnNLL", "Train/lr", "Validation/loss",
                "Validation/Accuracy", "Validation/nll"):
        assert sorted(logged[tag]) == [1, 2], tag
    assert set(logged) == {"Train/loss", "Train/Accuracy", "Train/LrnNLL", "Train/lr", "Validation/loss",
                           "Validation/Accuracy", "Validation/nll", "Train/running_loss"}

    values = loss.train_values  # 6 batches, one per update
    assert len(values) == 6
    assert logged["Train/loss"][1] == pytest.approx(np.mean(values[:3]), rel=1e-5)
    assert logged["Train/loss"][2] == pytest.approx(np.mean(values[3:]), rel=1e-5)
    assert logged["Train/LrnNLL"][2] == pytest.approx(np.mean(values[3:]), rel=1e-5)  # same value, batches of 8
    assert logged["Train/lr"][2] == pytest.approx(0.1)
    # running loss every 2 iterations, at the iteration number, the mean of the last 2 batches
    assert sorted(logged["Train/running_loss"]) == [2, 4, 6]
    for it in (2, 4, 6):
        assert logged["Train/running_loss"][it] == pytest.approx(np.mean(values[it - 2:it]), rel=1e-5), it
    # validation values by hand on the current model (after step 2, no best-model restore yet)
    x, y = _split(trainer.dataset.val)
    with torch.no_grad():
        pred = model.eval()(x)
    assert logged["Validation/loss"][2] == pytest.approx(F.nll_loss(pred, y).item(), rel=1e-5)
    assert logged["Validation/nll"][2] == pytest.approx(F.nll_loss(pred, y).item(), rel=1e-5)
    assert logged["Validation/Accuracy"][2] == pytest.approx((pred.argmax(-1) == y).float().mean().item())


# ---------------------------------------------------------------------- 7. errors
def test_model_returning_bare_tensor_is_a_type_error():
    trainer = _trainer(LrnBare(), iter_per_step=1)
    with pytest.raises(TypeError, match=r"LrnBare.*must return \(prediction, target\)"):
        trainer.run()


@pytest.mark.parametrize("kwargs", [{"max_steps": 0}, {"iter_per_step": 0}, {"batches_per_iter": 0},
                                    {"epoch_per_step": 0.0}, {"max_steps": 2.5}])
def test_bad_step_arguments(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        _trainer(**kwargs)


def test_empty_train_split_is_an_error():
    dataset = TabularDataset([], _rows(N_VAL, 1), _rows(N_TEST, 2))
    with pytest.raises(ValueError, match="train split empty"):
        _trainer(dataset=dataset)


# ---------------------------------------------------------------------- 8. Evaluator
def test_evaluator_matches_hand_computation_on_test_and_val(tmp_path):
    torch.manual_seed(0)
    model = LrnNet(dropout=0.5)
    dataset = _dataset()
    hand = {}
    for split in ("test", "val"):
        x, y = _split(getattr(dataset, split))
        with torch.no_grad():
            pred = model.eval()(x)
        hand[split] = {"Accuracy": (pred.argmax(-1) == y).float().mean().item(), "nll": F.nll_loss(pred, y).item()}
    model.train()

    # batches of 5 over 12 examples: the last batch is smaller, so the aggregation must weight by size
    evaluator = Evaluator(dataset, model, Accuracy(), eval_sampler=BaseSampler(batch_size=5, shuffle=False),
                          device="cpu", extra_metrics={"nll": LrnNLL()})
    assert evaluator.metric() is None
    assert evaluator.run() is False
    assert evaluator.results == pytest.approx(hand["test"])
    assert evaluator.metric() == pytest.approx(hand["test"]["Accuracy"])

    on_val = Evaluator(dataset, model, LrnNLL(), eval_data="val", device="cpu")
    on_val.run()
    assert on_val.metric() == pytest.approx(hand["val"]["nll"], rel=1e-6)
    assert on_val.metric() != pytest.approx(hand["test"]["nll"])

    flambe.save(evaluator, str(tmp_path / "ev"))
    loaded = flambe.load(str(tmp_path / "ev"))
    assert loaded.results == evaluator.results
    assert loaded.metric() == evaluator.metric()
    _assert_same_params(_params(loaded.model), _params(model))


def test_evaluator_errors():
    with pytest.raises(ValueError, match="eval_data"):
        Evaluator(_dataset(), LrnNet(), Accuracy(), eval_data="dev")
    dataset = TabularDataset(_rows(N_TRAIN, 0), _rows(N_VAL, 1), [])
    with pytest.raises(ValueError, match="empty"):
        Evaluator(dataset, LrnNet(), Accuracy(), device="cpu").run()


# ---------------------------------------------------------------------- 10. DistillationTrainer
def _teacher() -> LrnLinear:
    """A teacher that knows the truth (its logits are x @ TRUE_W, the labels' arg-max)."""
    teacher = LrnLinear(logits=True)
    with torch.no_grad():
        teacher.lin.weight.copy_(torch.from_numpy(TRUE_W.T.copy()))
        teacher.lin.bias.zero_()
    return teacher


def _distiller(student, teacher, lr: float = 1.0, **kwargs) -> DistillationTrainer:
    kwargs.setdefault("max_steps", 3)
    kwargs.setdefault("device", "cpu")
    return DistillationTrainer(_dataset(), BaseSampler(batch_size=8, shuffle=False),
                               BaseSampler(batch_size=5, shuffle=False), teacher, student,
                               torch.nn.CrossEntropyLoss(), Accuracy(),
                               torch.optim.SGD(student.parameters(), lr=lr), **kwargs)


def _hand_kl(student_logits, teacher_logits, t: float) -> torch.Tensor:
    p_teacher = torch.softmax(teacher_logits / t, dim=-1)
    log_p_student = torch.log_softmax(student_logits / t, dim=-1)
    return (p_teacher * (p_teacher.log() - log_p_student)).sum(-1).mean() * t * t


@pytest.mark.parametrize("with_unlabeled", [False, True])
def test_distillation_loss_by_hand(with_unlabeled):
    torch.manual_seed(0)
    teacher, student = _teacher(), LrnLinear(logits=True)
    ref = copy.deepcopy(student)
    alpha, t = 0.3, 2.0
    extra = {}
    unlabeled = _features(10, 5)
    if with_unlabeled:
        extra = dict(unlabel_dataset=TabularDataset([[x] for x in unlabeled]),
                     unlabel_sampler=BaseSampler(batch_size=6, shuffle=False))
    trainer = _distiller(student, teacher, alpha_kl=alpha, temperature=t, iter_per_step=1, **extra)
    trainer.run()

    x, y = _split(trainer.dataset.train)
    x, y = x[:8], y[:8]
    logits = ref(x)
    loss = alpha * _hand_kl(logits, teacher(x).detach(), t) + (1 - alpha) * F.cross_entropy(logits, y)
    if with_unlabeled:
        u = torch.from_numpy(unlabeled[:6])
        loss = loss + alpha * _hand_kl(ref(u), teacher(u).detach(), t)
    loss.backward()
    for p, q in zip(ref.parameters(), student.parameters()):
        assert torch.allclose(p - 1.0 * p.grad, q, atol=1e-6)


def test_distillation_unlabeled_batch_after_each_training_batch():
    teacher, student = _teacher(), LrnLinear(logits=True)
    unlabeled = TabularDataset([[x] for x in _features(10, 5)])
    trainer = _distiller(student, teacher, iter_per_step=3, unlabel_dataset=unlabeled,
                         unlabel_sampler=BaseSampler(batch_size=6, shuffle=False))
    trainer.run()
    # labeled batches of 8, then unlabeled ones of 6 and 4 (10 examples: the stream wraps around)
    assert student.train_sizes == [8, 6, 8, 4, 8, 6]
    assert teacher.train_sizes == []


def test_distillation_teacher_frozen_and_student_improves():
    torch.manual_seed(0)
    teacher, student = _teacher(), LrnLinear(logits=True)
    teacher_before = _params(teacher)
    x, y = _split(_dataset().val)

    def val_loss() -> float:
        with torch.no_grad():
            return F.cross_entropy(student.eval()(x), y).item()

    before = val_loss()
    trainer = _distiller(student, teacher, lr=0.5, alpha_kl=0.5, temperature=2.0, max_steps=4)
    while trainer.run():
        pass
    assert val_loss() < 0.7 * before
    assert trainer.metric() > 0.5
    _assert_same_params(_params(teacher), teacher_before)
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert trainer.model is student


def test_distillation_columns():
    """Teacher and student may read different input columns, in training and in validation."""
    def rows(n, seed):
        xs, zs = _features(n, seed), _features(n, seed + 100)
        return [[x, z, int(y)] for x, z, y in zip(xs, zs, (xs @ TRUE_W).argmax(axis=1))]

    dataset = TabularDataset(rows(N_TRAIN, 0), rows(N_VAL, 1))
    teacher, student = LrnPair(), LrnLinear(logits=True)
    trainer = DistillationTrainer(dataset, BaseSampler(batch_size=8, seed=0), BaseSampler(batch_size=5),
                                  teacher, student, torch.nn.CrossEntropyLoss(), Accuracy(),
                                  torch.optim.SGD(student.parameters(), lr=0.1), teacher_columns=[0, 1],
                                  student_columns=[0], iter_per_step=2, max_steps=2, device="cpu")
    trainer.run()
    assert student.train_sizes == [8, 8]
    assert 0.0 <= trainer.metric() <= 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha_kl": 1.5}, "alpha_kl"), ({"alpha_kl": -0.1}, "alpha_kl"), ({"temperature": 0.0}, "temperature"),
    ({"unlabel_dataset": TabularDataset([[1.0]])}, "unlabel_sampler")])
def test_distillation_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _distiller(LrnLinear(logits=True), _teacher(), **kwargs)


def test_distillation_save_load(tmp_path):
    torch.manual_seed(0)
    teacher, student = _teacher(), LrnLinear(logits=True)
    unlabeled = TabularDataset([[x] for x in _features(10, 5)])
    trainer = _distiller(student, teacher, lr=0.3, alpha_kl=0.7, temperature=3.0, iter_per_step=2,
                         unlabel_dataset=unlabeled, unlabel_sampler=BaseSampler(batch_size=6, seed=1))
    trainer.run()
    flambe.save(trainer, str(tmp_path / "d"))
    loaded = flambe.load(str(tmp_path / "d"))
    assert isinstance(loaded, DistillationTrainer)
    assert (loaded.alpha_kl, loaded.temperature) == (0.7, 3.0)
    assert loaded.model is loaded.student_model
    _assert_same_params(_params(loaded.student_model), _params(student))
    _assert_same_params(_params(loaded.teacher_model), _params(teacher))
    assert all(not p.requires_grad for p in loaded.teacher_model.parameters())
    assert loaded.metric() == trainer.metric()
    trainer.run()
    loaded.run()
    _assert_same_params(_params(loaded.student_model), _params(student))
    _assert_same_params(_params(loaded.teacher_model), _params(teacher))


# ---------------------------------------------------------------------- 11. from YAML
QUICKSTART = "configs/data/quickstart"

TRAINER_YAML = textwrap.dedent("""
    !Trainer
    dataset: !TabularDataset.from_path
      train_path: {train}
      val_path: {val}
      transform:
        text: !TextField {{}}
        label: !LabelField {{}}
    train_sampler: !BaseSampler {{batch_size: 16, seed: 1}}
    val_sampler: !BaseSampler {{batch_size: 32, shuffle: false}}
    model: !TextClassifier
      embedder: !Embedder
        embedding: !Embeddings {{num_embeddings: !@ dataset.text.vocab_size, embedding_dim: 8}}
        encoder: null
        pooling: !AvgPooling {{}}
      output_layer: !SoftmaxLayer {{input_size: 8, output_size: !@ dataset.label.vocab_size}}
      dropout: 0.3
    loss_fn: !torch.NLLLoss {{}}
    metric_fn: !Accuracy {{}}
    optimizer: !torch.Adam
      params: !@ model.trainable_params
      lr: 0.05
    scheduler: !torch.StepLR {{optimizer: !@ optimizer, step_size: 1, gamma: 0.5}}
    max_steps: 3
    epoch_per_step: 0.5
    device: cpu
""")


def test_trainer_from_yaml(tmp_path):
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / QUICKSTART
    for name, n in (("train", 80), ("val", 30)):
        lines = (root / f"{name}.tsv").read_text(encoding="utf-8").splitlines()[:n + 1]
        (tmp_path / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = TRAINER_YAML.format(train=tmp_path / "train.tsv", val=tmp_path / "val.tsv")

    torch.manual_seed(0)
    trainer = yaml.load(text)()
    assert isinstance(trainer, Trainer)
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    assert trainer.optimizer.param_groups[0]["params"][0] is next(trainer.model.parameters())
    assert trainer.scheduler.optimizer is trainer.optimizer
    assert trainer.model.output_layer.output_size == 4  # 4 topics
    assert trainer.iterations_per_step == 3  # ceil(0.5 * 5 batches of 16)
    assert trainer.run() is True
    assert 0.0 <= trainer.metric() <= 1.0
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)

    flambe.save(trainer, str(tmp_path / "saved"))
    assert trainer.run() is True  # the original goes on; then a copy restored from the save does the same
    loaded = flambe.load(str(tmp_path / "saved"))
    assert loaded.optimizer.param_groups[0]["params"][0] is next(loaded.model.parameters())
    assert loaded.run() is True
    assert loaded.last_metric == trainer.last_metric
    _assert_same_params(_params(loaded.model), _params(trainer.model))
    assert loaded.optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)
    assert trainer.run() is False
