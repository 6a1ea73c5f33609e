"""PipeDataset / PipeSplit / PipeSampler: Messages and indexable pipes as Trainer datasets, batched column-wise."""

import itertools
import pickle

import numpy as np
import pytest
import torch

from flambe.compile.registry import current_registry
from flambe.learn import Trainer
from flambe.learn.trainer import evaluate
from flambe.metric import Accuracy
from flambe.nn.module import Module
from flambe.pipeline.batching import BatchingPipe
from flambe.pipeline.bridge import PipeDataset, PipeSampler, PipeSplit, column_to_tensor
from flambe.pipeline.message import Message
from flambe.pipeline.model import Model
from flambe.pipeline.pipe import HookedPassThroughPipe, Pipe
from flambe.pipeline.pipes import ShufflerPipe
from flambe.sampler import BaseSampler

W = np.array([[2.0, -1.0, 0.0], [0.0, 2.0, -1.5], [1.0, 0.5, 2.0], [-1.0, 0.0, 1.0]], dtype=np.float32)


def data(n=600, seed=0):
    feats = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return Message({"features": torch.from_numpy(feats), "label": (feats @ W).argmax(axis=1),
                    "name": [f"r{i}" for i in range(n)]})


def ragged(n=23):
    rng = np.random.default_rng(1)
    seqs = [torch.arange(int(k)) + 1 for k in rng.integers(1, 7, size=n)]
    return Message({"seq": seqs, "x": torch.arange(n, dtype=torch.float32), "y": np.arange(n) % 3})


class Counting(HookedPassThroughPipe):
    """Counts the row selections that reach it."""

    def __init__(self, input):
        super().__init__(input)
        self.selections = 0

    def _getitem_hook(self, message):
        self.selections += 1
        return message


class PipeClf(Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x, target=None):
        out = torch.log_softmax(self.lin(x), dim=-1)
        return out if target is None else (out, target)


class Doubler(Model):
    def forward(self, message):
        return message.merge({"double": message["x"] * 2})


def batches_equal(a, b):
    a, b = list(a), list(b)
    return len(a) == len(b) and all(len(x) == len(y) and all(torch.equal(s, t) for s, t in zip(x, y))
                                    for x, y in zip(a, b))


# ------------------------------------------------------------------------------------------- PipeSplit
def test_split_over_a_message():
    m = data(10)
    split = PipeSplit(m, ["features", "label"])
    assert len(split) == 10 and split.columns == ["features", "label"] and not split.batched
    x, y = split[3]
    assert torch.equal(x, m["features"][3]) and y.dtype == torch.int64 and int(y) == m["label"][3]
    assert torch.equal(split[-1][0], m["features"][9])
    rows = split.__getitems__([4, 0, -2])
    assert [int(r[1]) for r in rows] == [m["label"][i] for i in (4, 0, 8)]
    assert batches_equal(split[2:5], [split[2], split[3], split[4]])
    assert batches_equal(split, [split[i] for i in range(10)])
    for bad in (10, -11):
        with pytest.raises(IndexError):
            split[bad]
    with pytest.raises(IndexError):
        split.__getitems__([0, 10])
    with pytest.raises(TypeError, match="'name'.*strings"):
        PipeSplit(m)[0]  # default columns: all of them, and strings have no tensor form
    assert PipeSplit(m).columns == ["features", "label", "name"]
    assert split.with_columns(["label"]) is split.with_columns(["label"]) and split.with_columns(split.columns) is split
    (labels,) = next(iter(PipeSampler(batch_size=4, columns=["label"], shuffle=False).sample(split)))
    assert labels.tolist() == m["label"][:4].tolist()
    with pytest.raises(KeyError, match="nope"):
        PipeSplit(m, ["nope"])[0]


def test_split_ragged_rows_and_padding():
    m = ragged()
    split = PipeSplit(m, ["seq", "y"], pad_index=-1)
    assert torch.equal(split[5][0], m["seq"][5])  # unpadded row
    assert all(torch.equal(r[0], m["seq"][i]) for r, i in zip(split.__getitems__([7, 2]), (7, 2)))
    seq, y = split.batch(torch.tensor([0, 1, 2]))
    width = max(len(m["seq"][i]) for i in range(3))
    assert seq.shape == (3, width) and (seq == -1).sum() == sum(width - len(m["seq"][i]) for i in range(3))
    padded, lengths = column_to_tensor("seq", m["seq"], pad=0)
    assert padded.shape == (23, 6) and lengths.tolist() == [len(s) for s in m["seq"]]
    assert column_to_tensor("x", m["x"])[1] is None
    pipe_split = PipeSplit(Pipe([m[:10], m[10:]]), ["seq", "y"], pad_index=-1)  # same through a pipe
    assert batches_equal([pipe_split.batch([0, 1, 2])], [(seq, y)])


def test_split_over_pipes_and_models():
    m = data(20)
    shuffled = ShufflerPipe(m, seed=3)
    split = PipeSplit(shuffled, ["features", "label"])
    assert len(split) == 20 and torch.equal(split[0][0], shuffled[0]["features"][0])
    blocks = PipeSplit([m[:7], m[7:]], ["label"])
    assert [int(r[0]) for r in blocks.__getitems__([6, 7, 19])] == [m["label"][i] for i in (6, 7, 19)]
    doubled = PipeSplit(Doubler(input=Message(x=torch.arange(5.0))), ["double"])
    assert doubled.columns == ["double"] and float(doubled[4][0]) == 8.0
    assert PipeSplit(shuffled).columns == ["features", "label", "name"]  # read from the first row
    empty = PipeSplit(None)
    assert len(empty) == 0 and empty.columns == [] and list(empty) == []


def test_split_rejects_what_it_cannot_index():
    with pytest.raises(TypeError, match="LoopingPipe"):
        PipeSplit(Pipe(iter([data(3)])))
    with pytest.raises(TypeError, match="Messages"):
        PipeSplit([(1, 2)])


# ------------------------------------------------------------------------------------------- PipeDataset
def test_pipe_dataset_splits():
    m = data(30)
    ds = PipeDataset(m[:20], test=ShufflerPipe(m[20:], seed=0), columns=["features", "label"])
    assert (len(ds.train), len(ds.val), len(ds.test)) == (20, 0, 10)
    assert ds.train.columns == ds.test.columns == ["features", "label"]
    with pytest.raises(TypeError, match="immutable"):
        ds["train"] = None
    clone = pickle.loads(pickle.dumps(ds))
    assert batches_equal(clone.train, ds.train)
    for tag, cls in (("PipeDataset", PipeDataset), ("PipeSampler", PipeSampler)):
        assert current_registry().lookup(tag).cls is cls


# ------------------------------------------------------------------------------------------- PipeSampler
@pytest.mark.parametrize("shuffle, drop_last", [(True, False), (False, False), (True, True)])
def test_pipe_sampler_matches_base_sampler(shuffle, drop_last):
    ds = PipeDataset(ragged(), columns=["seq", "x", "y"])
    pipe = PipeSampler(batch_size=5, shuffle=shuffle, seed=7, drop_last=drop_last)
    base = BaseSampler(batch_size=5, shuffle=shuffle, seed=7, drop_last=drop_last)
    assert pipe.length(ds.train) == base.length(ds.train) == (4 if drop_last else 5)
    assert batches_equal(pipe.sample(ds.train, n_epochs=3), base.sample(ds.train, n_epochs=3))
    order = pipe.epoch_order(ds.train, 1)
    assert order.tolist() == (base.epoch_order(ds.train, 1) if shuffle else list(range(23)))


def test_pipe_sampler_stream_placement():
    m = data(50)
    s = PipeSampler(batch_size=8, seed=1, columns=["features", "label"])
    assert s.length(m) == 7
    full = list(s.sample(m, n_epochs=3))
    assert len(full) == 21
    assert batches_equal(s.sample(m, n_epochs=2, start_epoch=1), full[7:])
    assert batches_equal(s.sample(m, n_epochs=3, skip_batches=10), full[10:])
    assert batches_equal(itertools.islice(s.sample(m, n_epochs=-1, skip_batches=17), 4), full[17:21])
    assert not batches_equal(full[:7], full[7:14])  # epochs differ
    again = PipeSampler(batch_size=8, seed=1, columns=["features", "label"])
    assert batches_equal(again.sample(m, 1), full[:7])
    unseeded = PipeSampler(batch_size=8, columns=["label"])
    assert unseeded.get_state()["base_seed"] == unseeded.base_seed
    assert list(PipeSampler(batch_size=99, drop_last=True).sample(m, 1)) == []
    with pytest.raises(ValueError, match="forever"):
        PipeSampler(batch_size=99, drop_last=True).sample(m, -1)
    with pytest.raises(ValueError):
        PipeSampler(batch_size=0)
    with pytest.raises(TypeError, match="BaseSampler"):
        s.length([(torch.ones(1),)])


def test_pipe_sampler_one_selection_per_batch():
    m = data(40)
    counting = Counting(m)
    s = PipeSampler(batch_size=16, seed=0, columns=["features", "label"])
    batches = list(s.sample(counting, n_epochs=1))
    assert [len(b[0]) for b in batches] == [16, 16, 8] and counting.selections == 3
    counting.selections = 0
    rows = PipeSplit(counting, ["features", "label"]).__getitems__(list(range(10)))
    assert len(rows) == 10 and counting.selections == 1
    labels = torch.cat([b[1] for b in batches]).sort().values  # every row once
    assert torch.equal(labels, torch.as_tensor(np.sort(m["label"].to_numpy())))


def test_pipe_sampler_over_a_batched_split():
    m = data(20)
    batching = BatchingPipe(m, batch_size=6)
    split = PipeSplit(batching, ["features", "label"])
    assert split.batched and len(split) == 4 and split[1][0].shape == (6, 4)
    s = PipeSampler(batch_size=100, seed=2)  # a batched split keeps the pipe's batches
    assert s.length(split) == 4
    got = list(s.sample(split, 1))
    assert sorted(len(b[0]) for b in got) == [2, 6, 6, 6]
    expect = [split.item(int(i)) for i in s.epoch_order(split, 0)]
    assert batches_equal(got, expect)
    shuffled_batches = PipeSplit(ShufflerPipe(batching, seed=0), ["label"])
    assert shuffled_batches.batched and len(shuffled_batches) == 4


# ------------------------------------------------------------------------------------------- end to end
def _train(dataset, train_sampler, val_sampler):
    torch.manual_seed(0)
    model = PipeClf()
    before = evaluate(model, val_sampler, dataset.val, lambda b: b, {"acc": Accuracy()})[1]["acc"]
    trainer = Trainer(dataset, train_sampler, val_sampler, model, torch.nn.NLLLoss(), Accuracy(),
                      torch.optim.SGD(model.parameters(), lr=0.5), device="cpu", max_steps=2)
    while trainer.run():
        pass
    assert trainer._step == 2
    return before, trainer.metric()


@pytest.mark.parametrize("sampler", ["pipe", "base"])
@pytest.mark.parametrize("source", ["message", "shuffler"])
def test_trainer_end_to_end(sampler, source):
    m = data(600)
    train = m[:480] if source == "message" else ShufflerPipe(m[:480], seed=4)
    ds = PipeDataset(train, val=m[480:], columns=["features", "label"])
    if sampler == "pipe":
        samplers = PipeSampler(batch_size=32, seed=0), PipeSampler(batch_size=50, shuffle=False)
    else:
        samplers = BaseSampler(batch_size=32, seed=0), BaseSampler(batch_size=50, shuffle=False)
    before, after = _train(ds, *samplers)
    assert after > before + 0.2 and after > 0.8


def test_trainer_on_a_batched_split():
    m = data(600)
    ds = PipeDataset(BatchingPipe(m[:480], batch_size=32), val=m[480:], columns=["features", "label"])
    before, after = _train(ds, PipeSampler(seed=0), PipeSampler(batch_size=50, shuffle=False))
    assert after > before + 0.2
