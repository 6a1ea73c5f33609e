"""The README's quickstart: a real text classifier trained, reduced and evaluated offline."""

import json
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAMBE = os.path.join(os.path.dirname(sys.executable), "flambe")


def test_quickstart_trains_reduces_evaluates_and_the_best_model_predicts(tmp_path):
    import flambe

    env = dict(os.environ, FLAMBE_HOME=str(tmp_path / "home"))
    result = subprocess.run([FLAMBE, os.path.join(ROOT, "configs", "quickstart.yaml"), "--force"],
                            capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Experiment quickstart" in result.stdout and "4 (kept 1)" in result.stdout
    assert "train: train/" in result.stdout  # where the best trainer's checkpoint is

    output = tmp_path / "flambe-output" / "output__quickstart"
    trains = {}
    for name in os.listdir(output / "train"):
        trains[name] = json.loads((output / "train" / name / "variant.json").read_text())
    assert len(trains) == 4 and all(v["status"] == "done" for v in trains.values())
    best = max(trains.values(), key=lambda v: v["metric"])  # accuracy: higher is better
    assert best["metric"] > 0.8
    (evaluated,) = os.listdir(output / "evaluate")
    evaluation = json.loads((output / "evaluate" / evaluated / "variant.json").read_text())
    kept = next(v for v in trains.values() if v["id"] == evaluation["parents"]["train"])
    assert kept["metric"] == best["metric"]  # reduce kept the best trainer (or one tied with it)
    assert evaluation["metric"] > 0.75

    # Every step logged training and validation values to TensorBoard in the trial's folder.
    best_dir = os.path.dirname(os.path.dirname(kept["checkpoint"]))
    assert os.listdir(os.path.join(best_dir, "tensorboard"))
    assert "Validation/Accuracy" in open(os.path.join(best_dir, "log.txt"), encoding="utf-8").read()

    # The saved model and dataset load on their own and predict.
    model = flambe.load(os.path.join(kept["checkpoint"], "model"))
    dataset = flambe.load(os.path.join(kept["checkpoint"], "dataset"))
    sentences = ["the chef baked a delicious soup for dinner", "the server crashed after the software update"]
    batch = torch.nn.utils.rnn.pad_sequence([dataset.text.process(s) for s in sentences], batch_first=True)
    model.eval()
    with torch.no_grad():
        predicted = model(batch).argmax(-1).tolist()
    labels = {i: label for label, i in dataset.label.vocab.items()}
    assert [labels[i] for i in predicted] == ["food", "technology"]
