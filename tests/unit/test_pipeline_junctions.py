"""Junctions: round-robin, random and clockwork hubs, the switch; order, state and pickling."""

import pickle

import numpy as np
import pytest

from flambe.pipeline.junction import ClockworkHubJunction, HubJunction, Junction, RandomHubJunction, SwitchJunction
from flambe.pipeline.message import Message
from flambe.pipeline.pipes import BatchingPipe, LoopingPipe, ShufflerPipe


def blocks(name, n):
    return [Message({"src": [name] * 2, "i": [k, k]}) for k in range(n)]


def comps():
    return {"a": blocks("a", 3), "b": blocks("b", 1), "c": blocks("c", 2)}


def order(junction):
    return [(b["src"][0], int(b["i"][0])) for b in junction]


def test_hub_round_robin_until_all_exhausted():
    hub = HubJunction(comps())
    expected = [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("a", 2)]
    assert order(hub) == expected
    assert order(hub) == expected  # iterating again resets
    assert isinstance(hub.components["a"], type(LoopingPipe(blocks("x", 1)).input))
    assert not hub.indexable
    with pytest.raises(TypeError):
        len(hub)
    with pytest.raises(AttributeError, match="'HubJunction' -> {a, b, c} has no attribute 'to_tensors'"):
        _ = hub.to_tensors
    with pytest.raises(ValueError):
        HubJunction({})


def test_clockwork_any_and_all():
    assert order(ClockworkHubJunction(comps())) == [("a", 0), ("b", 0), ("c", 0), ("a", 1)]
    assert order(ClockworkHubJunction(comps(), stop="all")) == order(HubJunction(comps()))
    clock = ClockworkHubJunction(comps())
    list(clock)
    with pytest.raises(StopIteration):
        next(clock)
    with pytest.raises(ValueError):
        ClockworkHubJunction(comps(), stop="never")


def test_random_hub_weighted_and_seeded():
    big = {"a": blocks("a", 400), "b": blocks("b", 400)}
    hub = RandomHubJunction(big, weights={"a": 3, "b": 1}, seed=1)
    first = order(hub)
    assert len(first) == 800
    head = [src for src, _ in first[:200]]
    assert 0.65 < head.count("a") / 200 < 0.85
    assert order(RandomHubJunction(big, weights=[3, 1], seed=1)) == first
    second = order(hub)
    assert second != first and sorted(second) == sorted(first)
    zero = RandomHubJunction(big, weights={"a": 1, "b": 0})
    assert {src for src, _ in order(zero)} == {"a"}
    with pytest.raises(ValueError):
        RandomHubJunction(big, weights=[0, 0])
    with pytest.raises(ValueError):
        RandomHubJunction(big, weights={"z": 1})


def test_random_hub_resume_mid_epoch():
    def build():
        return RandomHubJunction(comps(), weights=[1, 2, 3], seed=4)

    full = order(build())
    hub = build()
    it = iter(hub)
    head = [(b["src"][0], int(b["i"][0])) for b in (next(it), next(it), next(it))]
    state = pickle.loads(pickle.dumps(hub.get_state()))
    fresh = build()
    fresh.set_state(state)
    assert head + order(fresh) == full
    clone = pickle.loads(pickle.dumps(hub))
    assert order(clone) == order(hub)


def test_hub_state_keeps_components_state():
    m = Message({"x": np.arange(20)})
    t = [Message({"x": np.arange(100, 104)}), Message({"x": np.arange(104, 106)})]
    hub = HubJunction({"s": ShufflerPipe(m, seed=3, block_size=4), "t": t})
    batches = BatchingPipe(hub, batch_size=3)
    list(batches)
    full = [b["x"].tolist() for b in batches]
    list(batches)
    it = iter(batches)
    head = [next(it) for _ in range(2)]
    state = batches.get_state()
    assert any(k.startswith("input.components.s.") for k in state)
    fresh_hub = HubJunction({"s": ShufflerPipe(m, seed=3, block_size=4), "t": t})
    fresh = BatchingPipe(fresh_hub, batch_size=3)
    fresh.set_state(state)
    rest = list(fresh)
    assert len(head) + len(rest) == len(full) == 9
    ref_hub = HubJunction({"s": ShufflerPipe(m, seed=3, block_size=4), "t": t})
    ref = BatchingPipe(ref_hub, batch_size=3)
    for _ in range(3):
        list(ref)
    second = list(ref)  # the fourth epoch, like head + rest
    assert head + rest == second


def test_switch_junction_routes():
    m1 = Message({"x": np.arange(5)})
    m2 = Message({"x": np.arange(10, 13)})
    switch = SwitchJunction({"train": ShufflerPipe(m1, seed=0), "val": LoopingPipe(m2)}, key="val")
    assert switch.route == "val" and len(switch) == 3 and switch[-1]["x"].tolist() == [12]
    assert [b["x"].tolist() for b in switch] == [[10, 11, 12]]
    switch.route = "train"
    assert len(switch) == 5 and sorted(switch[:]["x"].tolist()) == list(range(5))
    assert switch.upcoming_indices(2).tolist() == switch[:2]["x"].tolist()  # routed attribute
    assert switch.component is switch.components["train"]
    with pytest.raises(AttributeError, match="route 'train'"):
        _ = switch.upcomming_indices
    with pytest.raises(KeyError):
        switch.route = "test"
    state = switch.get_state()
    other = SwitchJunction({"train": ShufflerPipe(m1, seed=0), "val": LoopingPipe(m2)}, key="val")
    other.set_state(state)
    assert other.route == "train"
    clone = pickle.loads(pickle.dumps(switch))
    assert clone.route == "train" and clone[:] == switch[:]


def test_junction_base_and_names():
    j = Junction({"a": blocks("a", 2)})
    assert [b["src"][0] for b in j.components["a"]] == ["a", "a"]
    with pytest.raises(ValueError):
        Junction({"a.b": blocks("a", 1)})
    with pytest.raises(TypeError):
        HubJunction({"a": 3})
