"""Unit tests for flambe.nn.Module helpers: trainable params, counts, norms and clipping."""

from __future__ import annotations

import math

import pytest
import torch

from flambe.compile import Component, yaml
from flambe.nn import Module


class NnTwoLayer(Module):
    def __init__(self, freeze_first: bool = True) -> None:
        super().__init__()
        self.first = torch.nn.Linear(4, 3)    # 12 + 3 = 15 parameters
        self.second = torch.nn.Linear(3, 2)   # 6 + 2 = 8 parameters
        self.register_buffer("running", torch.zeros(5))  # a buffer is not a parameter
        if freeze_first:
            for p in self.first.parameters():
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.tanh(self.first(x)))


class NnEmpty(Module):
    pass


def _loss(model: NnTwoLayer) -> torch.Tensor:
    torch.manual_seed(3)
    return model(torch.randn(6, 4)).pow(2).sum() * 10


def test_module_is_a_component_and_a_torch_module():
    model = NnTwoLayer()
    assert isinstance(model, Component)
    assert isinstance(model, torch.nn.Module)
    built = yaml.load("!NnTwoLayer {freeze_first: false}")()
    assert isinstance(built, NnTwoLayer)
    assert built.num_parameters(trainable=True) == 23


def test_trainable_params_exclude_frozen():
    model = NnTwoLayer()
    trainable = list(model.trainable_params)
    assert len(trainable) == 2
    assert trainable[0] is model.second.weight
    assert trainable[1] is model.second.bias
    assert all(p.requires_grad for p in trainable)


def test_named_trainable_params():
    model = NnTwoLayer()
    names = [name for name, _ in model.named_trainable_params]
    assert names == ["second.weight", "second.bias"]
    assert dict(model.named_trainable_params)["second.weight"] is model.second.weight
    unfrozen = NnTwoLayer(freeze_first=False)
    assert [n for n, _ in unfrozen.named_trainable_params] == [
        "first.weight", "first.bias", "second.weight", "second.bias"]


def test_trainable_params_is_reiterable_property():
    model = NnTwoLayer()
    assert len(list(model.trainable_params)) == len(list(model.trainable_params)) == 2


def test_num_parameters_exact():
    model = NnTwoLayer()
    assert model.num_parameters() == 23
    assert model.num_parameters(trainable=False) == 23
    assert model.num_parameters(trainable=True) == 8
    assert NnTwoLayer(freeze_first=False).num_parameters(trainable=True) == 23
    assert NnEmpty().num_parameters() == 0


def test_gradient_norm_zero_before_backward():
    model = NnTwoLayer(freeze_first=False)
    assert model.gradient_norm() == 0.0
    assert NnEmpty().gradient_norm() == 0.0


def test_gradient_norm_matches_torch():
    model = NnTwoLayer(freeze_first=False)
    _loss(model).backward()
    grads = [p.grad for p in model.parameters()]
    expected = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item()
    assert expected > 0
    assert model.gradient_norm() == pytest.approx(expected, rel=1e-6)
    # the same as what clip_grad_norm_ would report with an infinite threshold
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")).item()
    assert model.gradient_norm() == pytest.approx(total, rel=1e-6)


def test_gradient_norm_other_norm_types():
    model = NnTwoLayer(freeze_first=False)
    _loss(model).backward()
    flat = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert model.gradient_norm(1.0) == pytest.approx(flat.abs().sum().item(), rel=1e-5)
    assert model.gradient_norm(float("inf")) == pytest.approx(flat.abs().max().item(), rel=1e-6)


def test_gradient_norm_only_counts_params_with_grads():
    model = NnTwoLayer(freeze_first=True)
    _loss(model).backward()
    assert model.first.weight.grad is None
    expected = torch.linalg.vector_norm(
        torch.cat([model.second.weight.grad.flatten(), model.second.bias.grad.flatten()])).item()
    assert model.gradient_norm() == pytest.approx(expected, rel=1e-6)


def test_parameter_norm():
    model = NnTwoLayer()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    # all 23 parameters (frozen included) equal 0.5: norm = 0.5 * sqrt(23)
    assert model.parameter_norm() == pytest.approx(0.5 * math.sqrt(23), rel=1e-6)
    assert model.parameter_norm(1.0) == pytest.approx(0.5 * 23, rel=1e-6)
    assert NnEmpty().parameter_norm() == 0.0


def test_clip_params_clamps_trainable_only():
    model = NnTwoLayer(freeze_first=True)
    with torch.no_grad():
        model.first.weight.fill_(5.0)
        model.second.weight.copy_(torch.tensor([[3.0, -4.0, 0.05], [-0.2, 0.3, 7.0]]))
        model.second.bias.copy_(torch.tensor([-9.0, 0.1]))
    model.clip_params(0.25)
    assert torch.equal(model.second.weight, torch.tensor([[0.25, -0.25, 0.05], [-0.2, 0.25, 0.25]]))
    assert torch.equal(model.second.bias, torch.tensor([-0.25, 0.1]))
    # frozen parameters are left alone
    assert torch.all(model.first.weight == 5.0)
    assert model.second.weight.requires_grad


def test_clip_gradient_norm_returns_pre_clip_norm():
    model = NnTwoLayer(freeze_first=False)
    _loss(model).backward()
    before = model.gradient_norm()
    assert before > 0.5
    returned = model.clip_gradient_norm(0.5)
    assert isinstance(returned, float)
    assert returned == pytest.approx(before, rel=1e-6)
    after = model.gradient_norm()
    assert after <= 0.5 + 1e-6
    assert after == pytest.approx(0.5, rel=1e-4)


def test_clip_gradient_norm_below_threshold_unchanged():
    model = NnTwoLayer(freeze_first=False)
    _loss(model).backward()
    before = [p.grad.clone() for p in model.parameters()]
    norm = model.gradient_norm()
    assert model.clip_gradient_norm(norm * 10) == pytest.approx(norm, rel=1e-6)
    for old, p in zip(before, model.parameters()):
        assert torch.allclose(old, p.grad)
