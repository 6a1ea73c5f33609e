"""Components of the example extension."""

import torch

from flambe.compile import Component, registrable_factory
from flambe.nn import Module


class Greeter(Component):
    """Builds a greeting; ``!flambe_example_ext.Greeter.shouting`` is a factory."""

    def __init__(self, name: str, punctuation: str = "!") -> None:
        self.name = name
        self.punctuation = punctuation

    @property
    def greeting(self) -> str:
        return f"Hello, {self.name}{self.punctuation}"

    @registrable_factory
    @classmethod
    def shouting(cls, name: str) -> "Greeter":
        return cls(name.upper(), "!!!")


class ScaledLinear(Module):
    """A linear layer whose output is multiplied by a registered, saved ``scale``."""

    def __init__(self, in_features: int, out_features: int, scale: float = 1.0) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features)
        self.scale = scale
        self.register_attrs("scale")

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.linear(data) * self.scale


def _linear_data(in_features: int, out_features: int, rows: int, seed: int):
    """A noisy linear problem (the same for the same seed)."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(in_features, out_features, generator=torch.Generator().manual_seed(1234))
    inputs = torch.randn(rows, in_features, generator=gen)
    return inputs, inputs @ weight + 0.1 * torch.randn(rows, out_features, generator=gen)


class FitLinear(Component):
    """Fits ``model`` to a noisy linear target with SGD; each ``run()`` is one epoch.

    ``metric()`` is the validation mean squared error, so lower is better.

    Parameters
    ----------
    model : Module
        Maps ``[batch, in_features]`` to ``[batch, out_features]`` and has ``linear``.
    lr : float
        SGD learning rate.
    epochs : int
        How many ``run()`` calls there are.
    batch_size : int
        Rows per SGD step (512 training rows in all).
    seed : int
        Seeds the data.
    """

    lower_is_better = True

    def __init__(self, model: Module, lr: float = 0.05, epochs: int = 5, batch_size: int = 32,
                 seed: int = 0) -> None:
        self.model = model
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        shape = (model.linear.in_features, model.linear.out_features)
        self.train_data = _linear_data(*shape, rows=512, seed=seed)
        self.val_data = _linear_data(*shape, rows=256, seed=seed + 1)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        self.epoch = 0
        self.val_loss = float("inf")
        self.register_attrs("epoch", "val_loss")

    def run(self) -> bool:
        inputs, targets = self.train_data
        self.model.train()
        for start in range(0, len(inputs), self.batch_size):
            batch = slice(start, start + self.batch_size)
            loss = torch.nn.functional.mse_loss(self.model(inputs[batch]), targets[batch])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.epoch += 1
        self.model.eval()
        with torch.no_grad():
            self.val_loss = torch.nn.functional.mse_loss(self.model(self.val_data[0]), self.val_data[1]).item()
        print(f"epoch {self.epoch}: validation MSE {self.val_loss:.4f}")
        return self.epoch < self.epochs

    def metric(self) -> float:
        return self.val_loss

    def _state(self, state_dict, prefix, local_metadata):
        state_dict[prefix + "optimizer"] = self.optimizer.state_dict()
        return state_dict

    def _load_state(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        if prefix + "optimizer" in state_dict:
            self.optimizer.load_state_dict(state_dict[prefix + "optimizer"])


class Evaluate(Component):
    """Mean squared error of ``model`` on held-out data (lower is better)."""

    lower_is_better = True

    def __init__(self, model: Module, seed: int = 100) -> None:
        self.model = model
        self.seed = seed
        self.test_loss = float("inf")
        self.register_attrs("test_loss")

    def run(self) -> bool:
        inputs, targets = _linear_data(self.model.linear.in_features, self.model.linear.out_features, 256,
                                       self.seed)
        with torch.no_grad():
            self.test_loss = torch.nn.functional.mse_loss(self.model(inputs), targets).item()
        print(f"test MSE {self.test_loss:.4f}")
        return False

    def metric(self) -> float:
        return self.test_loss
