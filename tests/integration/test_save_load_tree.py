"""Saving and loading a nested model tree, whole and by parts, and surviving a kill mid-save."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import flambe
from flambe.compile import yaml
from flambe.nn import Module

pytestmark = pytest.mark.integration


class TreeEncoder(Module):
    def __init__(self, vocab: int, dim: int, layers: int = 2) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, dim)
        self.rnn = torch.nn.LSTM(dim, dim, num_layers=layers, batch_first=True)
        self.norm = torch.nn.BatchNorm1d(dim)
        self.vocab_words = {"<pad>": 0, "<unk>": 1}
        self.register_attrs("vocab_words")

    def forward(self, tokens):
        out, _ = self.rnn(self.embedding(tokens))
        return self.norm(out[:, -1])


class TreeHead(Module):
    def __init__(self, input_size: int, classes: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(input_size, classes)
        self.seen = 0
        self.register_attrs("seen")

    def forward(self, data):
        return self.proj(data)


class TreeModel(Module):
    def __init__(self, encoder: TreeEncoder, head: TreeHead, temperature: float = 1.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.temperature = temperature

    def forward(self, tokens):
        return self.head(self.encoder(tokens)) / self.temperature


CONFIG = """
!TreeModel
encoder: !TreeEncoder
  vocab: 50
  dim: 8
head: !TreeHead
  input_size: !@ encoder.rnn.hidden_size
  classes: 3
temperature: 2.0
"""


def _trained_model():
    model = yaml.load(CONFIG)()
    model.train()
    tokens = torch.randint(0, 50, (4, 5))
    model(tokens).sum().backward()  # BatchNorm running stats move; grads exist
    model.encoder.vocab_words["flambe"] = 2
    model.head.seen = 11
    model.eval()
    return model, tokens


def _assert_same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    assert list(sa.keys()) == list(sb.keys())
    for key in sa:
        if isinstance(sa[key], torch.Tensor):
            assert torch.equal(sa[key], sb[key]), key
        else:
            assert sa[key] == sb[key], key


def test_nested_tree_round_trip_and_parts_load_alone(tmp_path):
    model, tokens = _trained_model()
    path = tmp_path / "tree"
    flambe.save(model, str(path))
    for sub in ("", "encoder", "head"):
        for name in ("state.pt", "config.yaml", "version.txt", "source.py", "protocol_version.txt"):
            assert (path / sub / name).exists(), f"{sub}/{name}"
    assert (path / "version.txt").read_text().strip() == "TreeModel:0.0.0"
    assert (path / "requirements.txt").read_text().startswith("flambe==")

    loaded = flambe.load(str(path))
    assert isinstance(loaded, TreeModel)
    _assert_same_state(model, loaded)
    loaded.eval()
    assert torch.equal(model(tokens), loaded(tokens))
    assert loaded.encoder.vocab_words == {"<pad>": 0, "<unk>": 1, "flambe": 2}

    encoder = flambe.load(str(path / "encoder"))
    assert isinstance(encoder, TreeEncoder)
    _assert_same_state(model.encoder, encoder)
    head = flambe.load(str(path / "head"))
    assert head.seen == 11 and torch.equal(head.proj.weight, model.head.proj.weight)
    # The head's link to the encoder became a value in its standalone config.
    assert "input_size: 8" in (path / "head" / "config.yaml").read_text()
    assert "!@ encoder.rnn.hidden_size" in (path / "config.yaml").read_text()


def test_python_built_tree_saves_like_yaml_built(tmp_path):
    model = TreeModel(TreeEncoder(20, 4, layers=1), TreeHead(4, 2), temperature=0.5)
    flambe.save(model, str(tmp_path / "py"), compress=False)
    loaded = flambe.load(str(tmp_path / "py"))
    _assert_same_state(model, loaded)
    assert loaded.temperature == 0.5 and loaded.encoder.rnn.num_layers == 1


def test_tar_gz_and_pickle_forms(tmp_path):
    model, tokens = _trained_model()
    flambe.save(model, str(tmp_path / "tree.tar.gz"), compress=True)
    flambe.save(model, str(tmp_path / "tree.pkl"), pickle_only=True)
    for name in ("tree.tar.gz", "tree.pkl"):
        loaded = flambe.load(str(tmp_path / name))
        loaded.eval()
        assert torch.equal(loaded(tokens), model(tokens)), name


BIG_MODULE = textwrap.dedent("""
    import torch
    from flambe.nn import Module

    class Big(Module):
        def __init__(self, n: int, fill: float = 0.0):
            super().__init__()
            self.a = torch.nn.Linear(n, n)
            self.b = torch.nn.Linear(n, n)
            self.fill = fill
            self.register_attrs("fill")
""")

KILLER = textwrap.dedent("""
    import sys, torch, flambe
    from killtest_model import Big

    path = sys.argv[1]
    i = 0
    while True:
        i += 1
        model = Big(1024, float(i))
        torch.nn.init.constant_(model.a.weight, float(i))
        torch.nn.init.constant_(model.b.weight, float(i))
        flambe.save(model, path, overwrite=True)
        print(i, flush=True)
""")


def test_kill_during_overwrite_never_leaves_a_broken_save(tmp_path, monkeypatch):
    """SIGKILL a process that keeps overwriting a save; what is left always loads whole."""
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    (tmp_path / "killtest_model.py").write_text(BIG_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("killtest_model")  # a config only builds classes that are imported or declared
    path = tmp_path / "ckpt"
    for delay in (1.5, 1.9, 2.3, 2.7):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "1"  # at least one complete save exists
        time.sleep(delay - 1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        loaded = flambe.load(str(path))
        i = loaded.fill
        assert i >= 1
        # Every tensor comes from the same save as the registered attribute.
        assert torch.all(loaded.a.weight == i) and torch.all(loaded.b.weight == i)
        assert loaded.a.weight.shape == (1024, 1024)
        # The next save clears whatever the killed one left beside the path.
        flambe.save(loaded, str(path), overwrite=True)
        leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".ckpt.")]
        assert leftovers == [], leftovers
