"""Unit tests for flambe.sampler: padding, seeded order, resuming a stream, workers, episodes."""

from __future__ import annotations

import os
from itertools import islice

import pytest
import torch

import flambe
from flambe.compile import yaml
from flambe.sampler import BaseSampler, EpisodicSampler, Sampler, collate_fn, pad_column
from flambe.sampler.sampler import mix_seed, seeded_generator

T = torch.tensor


def _data(n: int = 50):
    """n examples: (a 1-D sequence [i, i, ...] of length 1 + i % 7, label i % 3), so rows are traceable."""
    return [(torch.full((1 + i % 7,), i, dtype=torch.long), T(i % 3)) for i in range(n)]


def _ids(batch) -> list:
    return batch[0][:, 0].tolist()


def _stream(sampler, data, **kwargs) -> list:
    return [_ids(b) for b in sampler.sample(data, **kwargs)]


# ---------------------------------------------------------------------- padding
def test_batches_are_padded_batch_first():
    data = [(T([1, 2, 3]), T(0)), (T([4]), T(1)), (T([5, 6]), T(1))]
    (tokens, labels), = list(BaseSampler(batch_size=3, shuffle=False).sample(data))
    assert tokens.tolist() == [[1, 2, 3], [4, 0, 0], [5, 6, 0]]
    assert labels.tolist() == [0, 1, 1] and labels.shape == (3,)
    (tokens, labels), = list(BaseSampler(batch_size=3, shuffle=False, pad_index=[-1, 0]).sample(data))
    assert tokens.tolist() == [[1, 2, 3], [4, -1, -1], [5, 6, -1]]
    with pytest.raises(ValueError, match="2 columns"):
        next(BaseSampler(pad_index=[1, 2, 3]).sample(data))


def test_nested_columns_pad_along_every_dimension():
    data = [(torch.ones(2, 3, dtype=torch.long),), (torch.full((1, 4), 2),)]
    (batch,), = list(BaseSampler(batch_size=2, shuffle=False, pad_index=9).sample(data))
    assert batch.shape == (2, 2, 4)
    assert batch.tolist() == [[[1, 1, 1, 9], [1, 1, 1, 9]], [[2, 2, 2, 2], [9, 9, 9, 9]]]
    # The docs' example: lists of sequences, sizes [2, 3] and [3, 2, 4] -> [2 x 3 x 4].
    col = [[T([1, 2]), T([3, 4, 5])], [T([5, 6, 7]), T([4, 5]), T([5, 6, 7, 8])]]
    assert pad_column(col, 0).tolist() == [[[1, 2, 0, 0], [3, 4, 5, 0], [0, 0, 0, 0]],
                                           [[5, 6, 7, 0], [4, 5, 0, 0], [5, 6, 7, 8]]]
    with pytest.raises(ValueError, match="different numbers of dimensions"):
        pad_column([T([1, 2]), T(3)])
    with pytest.raises(ValueError, match="non-numeric"):
        collate_fn([("raw text", T(1)), ("more", T(0))])
    assert pad_column([3, 4.5]).tolist() == [3.0, 4.5]


def test_single_tensor_examples_and_collate_fn():
    data = [T([1.0, 2.0]), T([3.0])]
    (batch,), = list(BaseSampler(batch_size=2, shuffle=False).sample(data))
    assert batch.tolist() == [[1.0, 2.0], [3.0, 0.0]] and batch.dtype == torch.float32
    tokens, labels = collate_fn([(T([7]), T(1)), (T([8, 9]), T(0))], pad=5)
    assert tokens.tolist() == [[7, 5], [8, 9]] and labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="numbers of columns"):
        collate_fn([(T([7]), T(1)), (T([8]),)])


# ---------------------------------------------------------------------- length, epochs, order
def test_length_drop_last_and_epoch_counts():
    data = _data(50)
    assert BaseSampler(batch_size=16).length(data) == 4
    assert BaseSampler(batch_size=16, drop_last=True).length(data) == 3
    assert len(list(BaseSampler(batch_size=16, seed=0).sample(data, n_epochs=3))) == 12
    sizes = [len(b[0]) for b in BaseSampler(batch_size=16, drop_last=True, seed=0).sample(data, n_epochs=2)]
    assert sizes == [16] * 6
    assert list(BaseSampler().sample(data, n_epochs=0)) == []
    with pytest.raises(ValueError, match="n_epochs"):
        BaseSampler().sample(data, n_epochs=-2)


def test_each_epoch_is_a_permutation_and_epochs_differ():
    data = _data(50)
    sampler = BaseSampler(batch_size=16, seed=3)
    epochs = [sum(_stream(sampler, data, start_epoch=e), []) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(50))
    assert epochs[0] != epochs[1] != epochs[2]
    assert _stream(BaseSampler(batch_size=16, shuffle=False), data)[0] == list(range(16))


def test_same_seed_same_batches_other_seed_other_batches():
    data = _data(50)
    first = _stream(BaseSampler(batch_size=8, seed=11), data, n_epochs=2)
    assert _stream(BaseSampler(batch_size=8, seed=11), data, n_epochs=2) == first
    assert _stream(BaseSampler(batch_size=8, seed=12), data, n_epochs=2) != first
    # A seeded sampler ignores torch's global generator.
    torch.manual_seed(123)
    assert _stream(BaseSampler(batch_size=8, seed=11), data, n_epochs=2) == first
    # Unseeded samplers draw their seed from torch's global generator.
    torch.manual_seed(5)
    a = _stream(BaseSampler(batch_size=8), data)
    torch.manual_seed(5)
    assert _stream(BaseSampler(batch_size=8), data) == a


def test_epoch_seeds_are_a_pure_function_of_seed_and_epoch():
    # No per-process state (hash randomization, global RNG) enters the derivation: the values are fixed.
    assert mix_seed(7, 2) == 5090977316425868581
    assert mix_seed(0, 1) == 627405149472732430 and mix_seed(1, 0) == 6791897765849424158
    data = [(T([i]),) for i in range(40)]
    expected = torch.arange(40)[torch.randperm(40, generator=seeded_generator(7, 2))].tolist()
    torch.manual_seed(0)
    assert BaseSampler(seed=7).epoch_order(data, 2) == expected


# ---------------------------------------------------------------------- infinite streams and resuming
def test_infinite_stream_and_resume_from_any_batch():
    data = _data(50)  # 4 batches of 16 per epoch
    sampler = BaseSampler(batch_size=16, seed=0)
    full = [_ids(b) for b in islice(sampler.sample(data, n_epochs=-1), 12)]
    assert full[:8] == _stream(sampler, data, n_epochs=2)
    for k in (0, 3, 4, 6, 10):
        resumed = [_ids(b) for b in islice(sampler.sample(data, n_epochs=-1, skip_batches=k), 12 - k)]
        assert resumed == full[k:]
    from_epoch = [_ids(b) for b in islice(sampler.sample(data, n_epochs=-1, start_epoch=1, skip_batches=2), 3)]
    assert from_epoch == full[6:9]
    # A finite stream counts its epochs from start_epoch; skipped batches come out of them.
    assert _stream(sampler, data, n_epochs=2, start_epoch=1, skip_batches=5) == full[9:12]
    with pytest.raises(ValueError, match="forever"):
        BaseSampler(batch_size=16, drop_last=True).sample(_data(10), n_epochs=-1)
    assert list(BaseSampler().sample([], n_epochs=1)) == []


def test_restored_sampler_replays_the_same_stream(tmp_path):
    data = _data(50)
    sampler = BaseSampler(batch_size=8)  # no seed: one is drawn and saved with the state
    flambe.save(sampler, str(tmp_path / "sampler"))
    torch.manual_seed(999)
    loaded = flambe.load(str(tmp_path / "sampler"))
    assert isinstance(loaded, BaseSampler) and loaded.base_seed == sampler.base_seed
    assert _stream(loaded, data, n_epochs=2) == _stream(sampler, data, n_epochs=2)


# ---------------------------------------------------------------------- downsampling, workers, tags
def test_downsample_keeps_a_seeded_fraction():
    data = _data(50)
    sampler = BaseSampler(batch_size=100, shuffle=False, downsample=0.5, downsample_seed=1)
    kept = _stream(sampler, data)[0]
    assert len(kept) == 25 and kept == sorted(kept) and sampler.length(data) == 1
    assert _stream(BaseSampler(batch_size=100, shuffle=False, downsample=0.5, downsample_seed=1), data)[0] == kept
    assert _stream(BaseSampler(batch_size=100, shuffle=False, downsample=0.5, downsample_seed=2), data)[0] != kept
    shuffled = _stream(BaseSampler(batch_size=100, seed=4, downsample=0.5, downsample_seed=1), data, n_epochs=2)
    assert sorted(shuffled[0]) == kept and sorted(shuffled[1]) == kept and shuffled[0] != shuffled[1]
    with pytest.raises(ValueError, match="downsample"):
        BaseSampler(downsample=1.5)


class PidData:
    """A sequence whose examples record the process that read them."""

    def __init__(self, n: int) -> None:
        self.examples = _data(n)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        return (*self.examples[i], T(os.getpid()))


def test_two_workers_give_the_same_batches():
    data = PidData(60)
    here = list(BaseSampler(batch_size=7, seed=2).sample(data, n_epochs=2, skip_batches=3))
    there = list(BaseSampler(batch_size=7, seed=2, n_workers=2).sample(data, n_epochs=2, skip_batches=3))
    assert len(here) == len(there) == 15
    for a, b in zip(here, there):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert {int(p) for b in here for p in b[2]} == {os.getpid()}
    worker_pids = {int(p) for b in there for p in b[2]}
    assert os.getpid() not in worker_pids and len(worker_pids) == 2


def test_batch_sampler_tag_builds_a_base_sampler():
    built = yaml.load("!BatchSampler {batch_size: 3, seed: 1}")()
    assert type(built) is BaseSampler and built.batch_size == 3
    assert isinstance(built, Sampler)
    assert yaml.dump(built).startswith("!BatchSampler")  # keeps the tag it was written with
    assert yaml.dump(BaseSampler(batch_size=3)).startswith("!BaseSampler")


# ---------------------------------------------------------------------- EpisodicSampler
def _episodic_data():
    """4 classes (10, 20, 30, 40) x 6 examples; the source [class, index, ...] has length 2 + index % 3."""
    data = []
    for label in (10, 20, 30, 40):
        for i in range(6):
            data.append((torch.tensor([label, i] + [label] * (i % 3)), torch.tensor(label)))
    return data


def _check_episode(episode, n_classes, n_support, n_query, balanced):
    q_src, q_tgt, s_src, s_tgt = episode
    assert s_src.shape[0] == n_classes * n_support and q_src.shape[0] == n_classes * n_query
    assert s_tgt.tolist() == [c for c in range(n_classes) for _ in range(n_support)]
    assert q_src.shape[1] <= 4 and s_src.shape[1] <= 4  # padded to the longest of the episode
    mapping = {}
    for src, tgt in ((q_src, q_tgt), (s_src, s_tgt)):
        for row, label in zip(src.tolist(), tgt.tolist()):
            assert mapping.setdefault(label, row[0]) == row[0]  # one original class per episode label
    assert sorted(mapping) == list(range(n_classes)) and len(set(mapping.values())) == n_classes
    support = {tuple(r[:2]) for r in s_src.tolist()}
    query = {tuple(r[:2]) for r in q_src.tolist()}
    assert len(support) == s_src.shape[0] and len(query) == q_src.shape[0] and not support & query
    if balanced:
        assert sorted(q_tgt.tolist()) == [c for c in range(n_classes) for _ in range(n_query)]
    return mapping


def test_episodes_have_remapped_disjoint_support_and_query():
    data = _episodic_data()
    sampler = EpisodicSampler(n_support=2, n_query=3, n_episodes=5, n_classes=3, balance_query=True, seed=0)
    episodes = list(sampler.sample(data, n_epochs=2))
    assert len(episodes) == 10 and sampler.length(data) == 5
    mappings = [_check_episode(e, 3, 2, 3, balanced=True) for e in episodes]
    assert len({tuple(sorted(m.items())) for m in mappings}) > 1  # classes and label ids vary by episode
    q_src = episodes[0][0]
    assert (q_src == 0).any()  # shorter sources are padded with pad_index 0
    unbalanced = EpisodicSampler(n_support=1, n_query=2, n_episodes=4, seed=1)  # all 4 classes
    for episode in unbalanced.sample(data):
        _check_episode(episode, 4, 1, 2, balanced=False)


def test_episodes_are_seeded_and_resumable():
    data = _episodic_data()

    def stream(sampler, **kwargs):
        return [[t.tolist() for t in e] for e in sampler.sample(data, **kwargs)]

    first = stream(EpisodicSampler(2, 2, 3, n_classes=2, seed=4), n_epochs=2)
    assert stream(EpisodicSampler(2, 2, 3, n_classes=2, seed=4), n_epochs=2) == first
    assert stream(EpisodicSampler(2, 2, 3, n_classes=2, seed=5), n_epochs=2) != first
    sampler = EpisodicSampler(2, 2, 3, n_classes=2, seed=4)
    assert stream(sampler, n_epochs=1, start_epoch=1) == first[3:]
    assert [[t.tolist() for t in e] for e in islice(sampler.sample(data, n_epochs=-1, skip_batches=2), 3)] \
        == first[2:5]


def test_episodic_errors_and_round_trip(tmp_path):
    data = _episodic_data()
    with pytest.raises(ValueError, match="at least n_support"):
        EpisodicSampler(n_support=4, n_query=3, n_episodes=1).sample(data)
    with pytest.raises(ValueError, match="only 4 classes"):
        EpisodicSampler(n_support=1, n_query=1, n_episodes=1, n_classes=5).sample(data)
    sampler = EpisodicSampler(n_support=1, n_query=1, n_episodes=2, n_classes=2)
    flambe.save(sampler, str(tmp_path / "episodic"))
    loaded = flambe.load(str(tmp_path / "episodic"))
    assert loaded.base_seed == sampler.base_seed
    mine = [t.tolist() for e in sampler.sample(data) for t in e]
    assert [t.tolist() for e in loaded.sample(data) for t in e] == mine
