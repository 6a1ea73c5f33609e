"""A runnable of the example extension: builds components from YAML, saves one, loads it back."""

import os

import torch

import flambe
from flambe.compile import FlambeError
from flambe.runnable import Runnable


class WriteReport(Runnable):
    """Build a greeter and a model, save the model, load it back, and write what happened.

    Parameters
    ----------
    output_dir : str
        Where the report and the saved model go.
    greeter : Schema
        A ``Greeter`` (built when the runnable runs).
    model : Schema, optional
        A ``flambe.nn.Module`` taking ``[batch, in_features]`` inputs.
    secret_section : str, optional
        A section of the ``--secrets`` file whose ``TOKEN`` length is reported (never its value).
    """

    def __init__(self, output_dir: str, greeter, model=None, secret_section: str = "") -> None:
        self.output_dir = output_dir
        self.greeter = greeter
        self.model = model
        self.secret_section = secret_section

    def run(self, force: bool = False, debug: bool = False, **kwargs) -> None:
        report_path = os.path.join(self.output_dir, "report.txt")
        if os.path.exists(report_path) and not force:
            raise FlambeError(f"'{report_path}' already exists", hint="run again with --force to overwrite it")
        os.makedirs(self.output_dir, exist_ok=True)
        lines = [self.greeter().greeting]
        if self.model is not None:
            model = self.model()
            save_dir = os.path.join(self.output_dir, "model")
            flambe.save(model, save_dir, overwrite=True)
            loaded = flambe.load(save_dir)
            data = torch.ones(2, model.linear.in_features)
            same = torch.equal(model(data), loaded(data))
            lines.append(f"model: {type(model).__name__} with {model.num_parameters()} parameters")
            lines.append(f"saved to {os.path.abspath(save_dir)}; loaded back identical: {same}")
        if self.secret_section:
            token = self.config[self.secret_section]["TOKEN"]
            lines.append(f"secret TOKEN has {len(token)} characters")
        with open(report_path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        print("\n".join(lines))
        print(f"report written to {os.path.abspath(report_path)}")
