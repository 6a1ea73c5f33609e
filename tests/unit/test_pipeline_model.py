"""Model: components (given, defaulted, required, replaced), freezing, state, and use as a pipe or a torch module."""

import pickle

import numpy as np
import pytest
import torch

from flambe.compile.registry import current_registry
from flambe.pipeline.batching import BatchingPipe
from flambe.pipeline.message import Message
from flambe.pipeline.model import MissingComponentError, Model, as_component
from flambe.pipeline.pipes import ShufflerPipe


class LinearModel(Model):
    """y = m * x + b; b defaults to 0."""

    required_components = ["m", "b"]

    def init_default_components(self):
        self.calls = getattr(self, "calls", 0) + 1
        if "b" not in self.components:
            self.update_components({"b": [0.0]})

    def forward(self, x, target=None):
        if isinstance(x, Message):
            return x.merge({"y": self.m * x["x"] + self.b})
        y = self.m * x + self.b
        return y if target is None else (y, target)


class SquareModel(Model):
    """z = y ** 2, from the 'y' column its input model makes."""

    def forward(self, message):
        return {"z": message["y"] ** 2}


class Strict(Model):
    required_components = ["w", "v"]

    def forward(self, message):
        return message


class NoForward(Model):
    pass


class BadOutput(Model):
    def forward(self, message):
        return message["x"]


def msg(n=10):
    return Message({"x": torch.arange(n, dtype=torch.float32), "name": [f"r{i}" for i in range(n)]})


# ------------------------------------------------------------------------------------------- components
def test_components_given_and_defaulted():
    m = LinearModel(components={"m": [2.0]})
    assert LinearModel.required_components == ["m", "b"]
    assert list(m.components) == ["m", "b"] and m.calls == 1
    assert isinstance(m.m, torch.nn.Parameter) and m.m.tolist() == [2.0] and m.b.tolist() == [0.0]
    assert dict(m.named_parameters()).keys() == {"m", "b"}
    given = LinearModel({"m": [2.0], "b": [5.0]})
    assert not hasattr(given, "calls") and given.b.tolist() == [5.0]


def test_missing_required_components_raise_naming_them():
    with pytest.raises(MissingComponentError, match=r"\['w', 'v'\]") as info:
        Strict()
    assert isinstance(info.value, KeyError) and "init_default_components" in str(info.value)
    with pytest.raises(MissingComponentError, match=r"\['v'\]"):
        Strict({"w": 1.0})
    s = Strict({"w": 1.0, "v": 2.0})
    assert s.missing_components() == [] and s.missing_components(["w"]) == ["v"]
    s.check_components()
    with pytest.raises(MissingComponentError, match="'w'"):
        s.check_components(["v"])


def test_component_kinds_are_registered_with_torch():
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    layer = torch.nn.Linear(2, 1)
    m = LinearModel({"m": frozen, "b": torch.zeros(1), "idx": torch.tensor([1, 2]), "layer": layer,
                     "vocab": {"a": 0}, "k": 3, "names": ["a", "b"], "arr": np.ones(3)})
    assert m.m is frozen and not m.m.requires_grad
    assert isinstance(m.b, torch.nn.Parameter) and m.b.requires_grad
    assert not isinstance(m.idx, torch.nn.Parameter) and "idx" in dict(m.named_buffers())
    assert m.layer is layer and "layer.weight" in dict(m.named_parameters())
    assert m.vocab == {"a": 0} and m.k == 3 and m.names == ["a", "b"]
    assert isinstance(m.arr, torch.nn.Parameter) and m.arr.dtype == torch.float64
    assert set(m.state_dict()) == {"m", "b", "arr", "idx", "layer.weight", "layer.bias"}
    assert isinstance(as_component(1.5), torch.nn.Parameter) and as_component("s") == "s"


@pytest.mark.parametrize("name", ["_x", "forward", "input", "training", "1x", 3])
def test_bad_component_names(name):
    with pytest.raises(ValueError, match="component"):
        LinearModel({"m": [1.0], name: [1.0]})


def test_update_components_replaces_and_trains():
    m = LinearModel({"m": [1.0]})
    m.update_components({"m": torch.tensor([3.0]), "b": torch.nn.Parameter(torch.tensor([1.0]))})
    assert list(m.components) == ["m", "b"] and m.m.tolist() == [3.0] and m.b.tolist() == [1.0]
    m.update_components({"m": torch.nn.Linear(1, 1)})  # a parameter replaced by a module
    assert isinstance(m.m, torch.nn.Linear) and "m.weight" in dict(m.named_parameters())
    with pytest.raises(TypeError, match="dict"):
        m.update_components([("m", 1.0)])


# ------------------------------------------------------------------------------------------- freezing
def test_freeze_and_unfreeze():
    m = LinearModel({"m": [1.0], "layer": torch.nn.Linear(2, 2)})
    assert m.freeze("m") is m
    assert not m.m.requires_grad and m.b.requires_grad
    m.freeze()
    assert not any(p.requires_grad for p in m.parameters())
    m.unfreeze(["m", "layer"])
    assert m.m.requires_grad and all(p.requires_grad for p in m.layer.parameters()) and not m.b.requires_grad
    m.unfreeze()
    assert all(p.requires_grad for p in m.parameters())
    with pytest.raises(KeyError, match="nope"):
        m.freeze(["nope"])


def test_frozen_component_does_not_train():
    torch.manual_seed(0)
    m = LinearModel({"m": [1.0], "b": [0.0]}).freeze("m")
    opt = torch.optim.SGD(m.trainable_params, lr=0.1)
    x, y = torch.randn(16), torch.randn(16) * 3 + 2
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
    assert m.m.item() == 1.0 and m.b.item() != 0.0


def test_state_keeps_values_and_frozen_flags(tmp_path):
    import flambe
    m = LinearModel({"m": [2.0], "b": [1.0], "layer": torch.nn.Linear(2, 2)}).freeze(["m", "layer"])
    other = LinearModel({"m": [0.0], "b": [0.0], "layer": torch.nn.Linear(2, 2)})
    other.load_state(m.get_state(), strict=True)
    assert other.m.tolist() == [2.0] and other.b.tolist() == [1.0]
    assert not other.m.requires_grad and other.b.requires_grad and not other.layer.weight.requires_grad
    assert torch.equal(other.layer.weight, m.layer.weight)
    flambe.save(m, str(tmp_path / "model"))
    loaded = flambe.load(str(tmp_path / "model"))
    assert type(loaded).__name__ == "LinearModel" and loaded.m.tolist() == [2.0]
    assert not loaded.m.requires_grad and loaded.b.requires_grad
    clone = pickle.loads(pickle.dumps(m))
    assert clone.b.tolist() == [1.0] and not clone.m.requires_grad


# ------------------------------------------------------------------------------------------- computation
def test_call_on_message_returns_message():
    m = LinearModel({"m": [2.0], "b": [1.0]})
    x = msg(4)
    out = m(x)
    assert isinstance(out, Message) and out["y"].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert out["name"].tolist() == x["name"].tolist() and "y" not in x  # the input is left alone
    sq = SquareModel(input=m)
    assert sq(x)["z"].tolist() == [1.0, 9.0, 25.0, 49.0]  # f(m(x)); a dict output becomes a Message
    assert {n for n, _ in sq.named_parameters()} == {"input.m", "input.b"}
    with pytest.raises(NotImplementedError, match="forward"):
        NoForward()(x)
    with pytest.raises(TypeError, match="must return a Message"):
        BadOutput()(x)


def test_call_on_tensors_is_a_torch_module():
    m = LinearModel({"m": [2.0], "b": [1.0]})
    assert m(torch.tensor([1.0, 2.0])).tolist() == [3.0, 5.0]
    pred, target = m(torch.tensor([1.0]), torch.tensor([0.0]))
    assert pred.tolist() == [3.0] and target.tolist() == [0.0]
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(type(out).__name__))
    m(torch.ones(1))
    m(msg(2))
    assert seen == ["Tensor", "Message"]


# ------------------------------------------------------------------------------------------- pipe-like
def test_model_over_a_message_input():
    x = msg(10)
    m = LinearModel({"m": [2.0]}, input=x)
    assert m.indexable and len(m) == 10 and bool(LinearModel({"m": [1.0]}))
    (block,) = list(m)
    assert block["y"].tolist() == (2 * torch.arange(10.0)).tolist()
    assert m[2:5]["y"].tolist() == [4.0, 6.0, 8.0]
    assert m[[7, 0]]["name"].tolist() == ["r7", "r0"] and m[-1]["y"].tolist() == [18.0]
    with pytest.raises(TypeError, match="selects rows"):
        m["y"]


def test_model_over_blocks_and_pipes():
    x = msg(10)
    blocks = [x[:4], x[4:]]
    m = LinearModel({"m": [1.0], "b": [1.0]}, input=blocks)
    assert [len(b) for b in m] == [4, 6] and len(m) == 10
    assert m[[3, 4, 9]]["y"].tolist() == [4.0, 5.0, 10.0]
    shuffled = ShufflerPipe(x, seed=1)
    m2 = LinearModel({"m": [1.0]}, input=shuffled)
    first = torch.cat([b["y"] for b in m2])
    assert sorted(first.tolist()) == list(range(10)) and m2.indexable
    m2.reset()
    assert torch.equal(m2[:]["y"], shuffled[:]["x"])  # indexing follows the shuffler's current order
    chained = SquareModel(input=m)  # a model reading from a model
    assert torch.cat([b["z"] for b in chained]).tolist() == [float((i + 1) ** 2) for i in range(10)]
    assert chained[[0, 9]]["z"].tolist() == [1.0, 100.0]
    downstream = BatchingPipe(m, batch_size=3)  # a pipe reading from a model (as a stream)
    assert [len(b) for b in downstream] == [3, 3, 3, 1]


def test_model_without_input_is_not_a_pipe():
    m = LinearModel({"m": [1.0]})
    assert not m.indexable
    m.reset()
    for use in (lambda: list(m), lambda: len(m), lambda: m[0]):
        with pytest.raises(TypeError, match="no input"):
            use()


def test_registered_as_component():
    assert current_registry().lookup("Model").cls is Model
