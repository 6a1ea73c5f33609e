"""Unit tests for Component: run/metric contract, registered attributes, state hooks, versions, dumping."""

from __future__ import annotations

import copy
import textwrap
import warnings

import pytest
import torch

from flambe.compile import Component, LoadError, State, yaml
from flambe.compile.component import (
    FLAMBE_ATTRS_KEY,
    FLAMBE_CLASS_KEY,
    FLAMBE_DIRECTORIES_KEY,
    FLAMBE_VERSION_KEY,
    check_version,
)
from flambe.nn import Module


class CmpPlain(Component):
    def __init__(self, x: int = 1) -> None:
        self.x = x


class CmpCounter(Component):
    def __init__(self, start: int = 0) -> None:
        self.count = start
        self.label = "fresh"
        self.history = [start]
        self.register_attrs("count", "label", "history")


class CmpHooked(Component):
    def __init__(self) -> None:
        self.secret = 0

    def _state(self, state_dict, prefix, local_metadata):
        state_dict[prefix + "secret_value"] = self.secret * 10
        local_metadata["hooked"] = True
        return state_dict

    def _load_state(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        self.secret = state_dict[prefix + "secret_value"] // 10
        self.saw_metadata = local_metadata.get("hooked")


class CmpEncoder(Module):
    def __init__(self, dim: int = 3) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(dim, dim)
        self.calls = 0
        self.register_attrs("calls")


class CmpNet(Module):
    def __init__(self, encoder: CmpEncoder, out: int = 2) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.proj.out_features, out)
        self.register_buffer("scale", torch.ones(out))


class CmpTrainer(Component):
    def __init__(self, model, optimizer, tag: str = "t") -> None:
        self.model = model
        self.optimizer = optimizer
        self.tag = tag
        self.steps = 0
        self.register_attrs("steps")

    def run(self) -> bool:
        self.optimizer.zero_grad()
        self.model.head(self.model.encoder.proj(torch.ones(2, 3))).pow(2).sum().backward()
        self.optimizer.step()
        self.steps += 1
        return self.steps < 2

    def metric(self) -> float:
        return float(self.steps)


class CmpV1(Component):
    _flambe_version = "1.0.0"


class CmpV2(Component):
    _flambe_version = "2.0.0"


class CmpV11(Component):
    _flambe_version = "1.1.0"


class CmpV102(Component):
    _flambe_version = "1.0.2"


TRAINER_YAML = textwrap.dedent("""
    !CmpTrainer
    model: !CmpNet
      encoder: !CmpEncoder {dim: 3}
      out: 2
    optimizer: !torch.Adam
      params: !@ model.trainable_params
      lr: 0.1
""")


def _state_with_version(obj: Component, version: str) -> State:
    state = obj.get_state()
    state._metadata[""][FLAMBE_VERSION_KEY] = version
    return state


# ---------------------------------------------------------------------- run contract
def test_run_default_false_and_metric_none():
    obj = CmpPlain()
    assert obj.run() is False
    assert obj.metric() is None


def test_component_subclass_run_and_metric():
    trainer = yaml.load(TRAINER_YAML)()
    assert trainer.run() is True
    assert trainer.run() is False
    assert trainer.metric() == 2.0


# ---------------------------------------------------------------------- registered attributes
def test_register_attrs_saved_and_restored():
    obj = CmpCounter(start=3)
    obj.count = 7
    obj.label = "trained"
    obj.history.append(9)
    state = obj.get_state()
    assert state["count"] == 7
    assert state["label"] == "trained"
    assert state["history"] == [3, 9]
    assert state._metadata[""][FLAMBE_ATTRS_KEY] == ["count", "label", "history"]

    fresh = CmpCounter()
    assert (fresh.count, fresh.label) == (0, "fresh")
    fresh.load_state(state)
    assert fresh.count == 7
    assert fresh.label == "trained"
    assert fresh.history == [3, 9]


def test_register_attrs_unknown_name_raises():
    class CmpBadAttrs(Component):
        def __init__(self) -> None:
            self.present = 1
            self.register_attrs("present", "absent")

    with pytest.raises(AttributeError) as info:
        CmpBadAttrs()
    assert "absent" in str(info.value)


def test_register_attrs_is_per_instance_and_deduplicated():
    obj = CmpCounter()
    obj.register_attrs("count")
    assert obj._flambe_registered_attrs == ("count", "label", "history")
    assert CmpCounter._flambe_registered_attrs == ()


def test_missing_registered_attr_strict():
    obj = CmpCounter()
    state = obj.get_state()
    del state["label"]
    fresh = CmpCounter()
    fresh.load_state(state)  # not strict: fine, label untouched
    assert fresh.label == "fresh"
    with pytest.raises(LoadError) as info:
        CmpCounter().load_state(state, strict=True)
    assert "label" in str(info.value)


# ---------------------------------------------------------------------- hooks
def test_state_and_load_state_hooks():
    obj = CmpHooked()
    obj.secret = 4
    state = obj.get_state()
    assert state["secret_value"] == 40
    assert state._metadata[""]["hooked"] is True
    fresh = CmpHooked()
    fresh.load_state(state)
    assert fresh.secret == 4
    assert fresh.saw_metadata is True


def test_hooks_get_prefix_when_nested():
    class CmpHookHolder(Component):
        def __init__(self) -> None:
            self.inner = CmpHooked()

    obj = CmpHookHolder()
    obj.inner.secret = 2
    state = obj.get_state()
    assert state["inner.secret_value"] == 20
    fresh = CmpHookHolder()
    fresh.load_state(state)
    assert fresh.inner.secret == 2


# ---------------------------------------------------------------------- get_state layout
def test_get_state_keys_and_metadata():
    net = CmpNet(CmpEncoder(dim=3))
    net.encoder.calls = 5
    state = net.get_state()
    assert isinstance(state, State)
    assert set(state.keys()) == {
        "encoder.proj.weight", "encoder.proj.bias", "encoder.calls", "head.weight", "head.bias", "scale",
    }
    assert state["encoder.calls"] == 5
    root = state._metadata[""]
    assert root[FLAMBE_CLASS_KEY] == "CmpNet"
    assert root[FLAMBE_VERSION_KEY] == "0.0.0"
    assert root[FLAMBE_DIRECTORIES_KEY] == ["encoder"]
    enc = state._metadata["encoder"]
    assert enc[FLAMBE_CLASS_KEY] == "CmpEncoder"
    assert enc[FLAMBE_DIRECTORIES_KEY] == []
    assert enc[FLAMBE_ATTRS_KEY] == ["calls"]


def test_get_state_prefix_and_destination():
    net = CmpEncoder()
    dest = State()
    out = net.get_state(destination=dest, prefix="m.")
    assert out is dest
    assert set(out) == {"m.proj.weight", "m.proj.bias", "m.calls"}
    assert out._metadata["m"][FLAMBE_CLASS_KEY] == "CmpEncoder"


def test_load_state_into_fresh_object_gives_equal_tensors():
    torch.manual_seed(0)
    a = CmpNet(CmpEncoder(dim=3))
    torch.manual_seed(1)
    b = CmpNet(CmpEncoder(dim=3))
    assert not torch.equal(a.head.weight, b.head.weight)
    with torch.no_grad():
        a.scale.mul_(3)
    a.encoder.calls = 11
    b.load_state(a.get_state())
    for key, value in a.get_state().items():
        other = b.get_state()[key]
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, other), key
        else:
            assert value == other, key
    assert b.encoder.calls == 11
    assert torch.equal(b.scale, torch.full((2,), 3.0))


def test_state_deepcopy_keeps_metadata():
    state = CmpEncoder().get_state()
    again = copy.deepcopy(state)
    assert isinstance(again, State)
    assert again._metadata == state._metadata


def test_load_state_strict_unexpected_tensor():
    net = CmpEncoder()
    state = net.get_state()
    state["proj.extra"] = torch.zeros(1)
    with pytest.raises(LoadError):
        CmpEncoder().load_state(state, strict=True)


def test_state_survives_pickle():
    import pickle

    state = CmpEncoder().get_state()
    again = pickle.loads(pickle.dumps(state))
    assert isinstance(again, State)
    assert again._metadata[""][FLAMBE_CLASS_KEY] == "CmpEncoder"
    assert list(again.keys()) == list(state.keys())


# ---------------------------------------------------------------------- optimizer inside a component
def test_optimizer_state_survives_get_state_load_state():
    torch.manual_seed(0)
    trainer = yaml.load(TRAINER_YAML)()
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    params = list(trainer.model.parameters())
    assert trainer.optimizer.param_groups[0]["params"] == params
    trainer.run()
    state = trainer.get_state()
    assert state._metadata[""][FLAMBE_DIRECTORIES_KEY] == ["model", "optimizer"]
    assert state._metadata["optimizer"][FLAMBE_CLASS_KEY] == "Adam"
    assert state["steps"] == 1

    fresh = yaml.load(TRAINER_YAML)()
    assert fresh.optimizer.state_dict()["state"] == {}
    # (a deep copy: like torch's own optimizer state_dict, the state holds the live tensors)
    fresh.load_state(copy.deepcopy(state))
    assert fresh.steps == 1
    saved = trainer.optimizer.state_dict()["state"]
    loaded = fresh.optimizer.state_dict()["state"]
    assert set(loaded) == set(saved) and len(saved) == len(params)
    for idx in saved:
        assert torch.equal(saved[idx]["exp_avg"], loaded[idx]["exp_avg"])
        assert torch.equal(saved[idx]["exp_avg_sq"], loaded[idx]["exp_avg_sq"])
        assert float(saved[idx]["step"]) == float(loaded[idx]["step"]) == 1.0
    for p, q in zip(trainer.model.parameters(), fresh.model.parameters()):
        assert torch.equal(p, q)
    # the restored optimizer still drives the restored model's parameters
    assert fresh.optimizer.param_groups[0]["params"][0] is next(fresh.model.parameters())
    # and the two continue identically
    trainer.run()
    fresh.run()
    for p, q in zip(trainer.model.parameters(), fresh.model.parameters()):
        assert torch.allclose(p, q)


# ---------------------------------------------------------------------- versions
def test_version_zero_zero_zero_is_off():
    obj = CmpPlain()
    state = obj.get_state()
    assert state._metadata[""][FLAMBE_VERSION_KEY] == "0.0.0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CmpPlain().load_state(state)


def test_major_version_mismatch_is_load_error():
    state = _state_with_version(CmpV1(), "1.0.0")
    with pytest.raises(LoadError) as info:
        CmpV2().load_state(state)
    assert "1.0.0" in str(info.value) and "2.0.0" in str(info.value)


def test_minor_version_mismatch_warns():
    state = _state_with_version(CmpV1(), "1.0.0")
    with pytest.warns(UserWarning, match="1.0.0"):
        CmpV11().load_state(state)


def test_patch_version_difference_is_silent():
    state = _state_with_version(CmpV1(), "1.0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CmpV102().load_state(state)


def test_same_version_is_silent():
    state = CmpV1().get_state()
    assert state._metadata[""][FLAMBE_VERSION_KEY] == "1.0.0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CmpV1().load_state(state)


def test_check_version_direct():
    check_version(CmpPlain, "0.0.0")
    check_version(CmpPlain, None)
    with pytest.raises(LoadError):
        check_version(CmpV2, "1.0.0")
    with pytest.raises(LoadError):
        check_version(CmpV1, "not-a-version")


def test_nested_version_mismatch_names_location():
    class CmpVHolder(Component):
        def __init__(self) -> None:
            self.inner = CmpV2()

    obj = CmpVHolder()
    state = obj.get_state()
    state._metadata["inner"][FLAMBE_VERSION_KEY] = "1.0.0"
    with pytest.raises(LoadError) as info:
        CmpVHolder().load_state(state)
    assert "inner" in str(info.value)


# ---------------------------------------------------------------------- Python-built components dump
def test_python_built_component_dumps_and_rebuilds():
    net = CmpNet(CmpEncoder(dim=5), out=4)
    text = yaml.dump(net)
    rebuilt = yaml.load(text)()
    assert type(rebuilt) is CmpNet
    assert type(rebuilt.encoder) is CmpEncoder
    assert rebuilt.encoder.proj.in_features == 5
    assert rebuilt.head.out_features == 4
    assert yaml.dump(rebuilt) == text


def test_python_built_positional_args_dump():
    obj = CmpCounter(6)
    rebuilt = yaml.load(yaml.dump(obj))()
    assert rebuilt.count == 6


def test_config_str_is_yaml():
    obj = CmpPlain(x=3)
    assert yaml.load(obj._config_str)().x == 3


def test_plain_torch_module_inside_component_is_state():
    class CmpHoldsLinear(Component):
        def __init__(self) -> None:
            self.lin = torch.nn.Linear(2, 2)
            self.not_state = "x"

    torch.manual_seed(0)
    a = CmpHoldsLinear()
    state = a.get_state()
    assert set(state) == {"lin.weight", "lin.bias"}
    assert state._metadata[""][FLAMBE_DIRECTORIES_KEY] == []
    torch.manual_seed(1)
    b = CmpHoldsLinear()
    b.load_state(state)
    assert torch.equal(a.lin.weight, b.lin.weight)
    assert torch.equal(a.lin.bias, b.lin.bias)


def test_shared_child_appears_once():
    class CmpShares(Component):
        def __init__(self) -> None:
            self.first = CmpCounter(1)
            self.second = self.first

    state = CmpShares().get_state()
    assert "first.count" in state
    assert "second.count" not in state
