"""Pipes of the Fireworks data layer: delegation, indexing, shuffling, batching, readers, state and pickling."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from pipeline_helpers import Counting

from flambe.compile.component import State
from flambe.pipeline.message import Message, cat
from flambe.pipeline.pipe import HookedPassThroughPipe, Pipe
from flambe.pipeline.pipes import (
    BatchingPipe,
    BioSeqPipe,
    FastaPipe,
    FunctionPipe,
    IndexMapperPipe,
    LabelerPipe,
    LoopingPipe,
    Normalizer,
    RepeaterPipe,
    ShufflerPipe,
    TensorPipe,
    TextLinesPipe,
    Title2LabelPipe,
    block_permutation,
    train_test_split,
)


def make(n=50, block=7):
    m = Message({"x": np.arange(n), "y": torch.arange(n) * 10, "s": [f"r{i}" for i in range(n)]})
    return m, [m[i:i + block] for i in range(0, n, block)]


class Custom(Pipe):
    def custom(self, value):
        return ("custom", value)

    def reset_count(self):
        return "own"


def double_x(message):
    out = Message(message)
    out["x"] = message["x"] * 2
    return out


def xs(pipe):
    return [b["x"].tolist() for b in pipe]


def rest(pipe):
    """What is left of the current epoch (``next`` without the reset of ``iter``)."""
    out = []
    while True:
        try:
            out.append(next(pipe)["x"].tolist())
        except StopIteration:
            return out


def flat(batches):
    return [v for b in batches for v in b]


# ------------------------------------------------------------------------------------------------ Pipe
def test_pipe_over_message_and_list():
    m, blocks = make(20, 6)
    p = Pipe(m)
    assert xs(p) == [list(range(20))] and xs(p) == [list(range(20))]
    q = Pipe(blocks)
    assert [len(b) for b in q] == [6, 6, 6, 2]
    assert len(q) == 20 and q[-1]["x"].tolist() == [19]
    assert q[[19, 0, 7, 6]]["x"].tolist() == [19, 0, 7, 6]
    assert q[5:8]["s"].tolist() == ["r5", "r6", "r7"]
    with pytest.raises(IndexError):
        q[20]


def test_delegation_declared_and_direct():
    m, blocks = make(10, 5)
    shuffler = ShufflerPipe(Pipe(m))
    # 'to_tensors' is declared by every pipe: it reaches the Message two levels up
    assert shuffler.to_tensors(["x"])["x"].dtype == torch.int64
    # a name the direct input defines is forwarded
    looping = LoopingPipe(Counting(blocks))
    assert looping.marker() == "counting"
    # a name declared by an intermediate pipe travels further up
    top = LoopingPipe(Counting(Custom(blocks)))
    assert top.custom(3) == ("custom", 3)
    # a name only two levels up and not declared in between does not
    with pytest.raises(AttributeError, match="reset_count"):
        top.reset_count()


def test_typo_raises_with_chain():
    m, _ = make(10)
    pipe = ShufflerPipe(LoopingPipe(Pipe(m)))
    with pytest.raises(AttributeError) as err:
        pipe.reste()
    assert "'ShufflerPipe' -> 'LoopingPipe' -> 'Pipe' -> 'Message' has no attribute 'reste'" in str(err.value)
    with pytest.raises(AttributeError):
        _ = pipe._private
    assert not hasattr(pipe, "nothing_like_this")


def test_recursive_call():
    _, blocks = make(10, 5)
    pipe = FunctionPipe(Counting(Custom(blocks)), double_x)
    assert pipe.recursive_call("custom", 1) == ("custom", 1)
    assert pipe.recursive_call("marker") == "counting"
    # ignore_first=False finds the pipe's own method first
    assert pipe.recursive_call("recursive_call", "marker", ignore_first=False) == "counting"
    assert pipe.recursive_call("block_size") is None
    with pytest.raises(AttributeError, match="no pipe in 'FunctionPipe'"):
        pipe.recursive_call("missing")


def test_hooked_pass_through():
    class Hooked(HookedPassThroughPipe):
        def _next_hook(self, m):
            return m["x"].tolist()

        def _getitem_hook(self, m):
            return len(m)

        def _call_hook(self, result):
            return result + 1

    m, _ = make(6)
    assert list(Hooked(m)) == [list(range(6))]
    assert Hooked(m)[1:4] == 3
    assert Hooked(lambda v: v * 2)(5) == 11
    with pytest.raises(TypeError):
        Hooked(m)(1)


# ------------------------------------------------------------------------------------------ LoopingPipe
def test_looping_indexing_reads_only_needed_blocks():
    m, blocks = make(50, 7)
    stream = Counting(blocks)
    loop = LoopingPipe(stream)
    assert loop[3]["x"].tolist() == [3] and stream.reads == 1
    assert loop[8:10]["x"].tolist() == [8, 9] and stream.reads == 2
    assert len(loop) == 50
    assert loop[-1]["x"].tolist() == [49]
    assert loop[-3:]["x"].tolist() == [47, 48, 49]
    assert loop[45:]["x"].tolist() == [45, 46, 47, 48, 49]
    assert loop[:3]["x"].tolist() == [0, 1, 2]
    assert loop[::-10]["x"].tolist() == [49, 39, 29, 19, 9]
    assert loop[[40, 2, -1]]["x"].tolist() == [40, 2, 49]
    assert loop[torch.tensor([1, 0])]["x"].tolist() == [1, 0]
    mask = np.zeros(50, bool)
    mask[[4, 44]] = True
    assert loop[mask]["x"].tolist() == [4, 44]
    assert loop[10:1000]["x"].tolist() == list(range(10, 50))
    with pytest.raises(IndexError):
        loop[50]
    assert xs(loop) == [b["x"].tolist() for b in blocks]
    assert loop.block_offsets().tolist() == [0, 7, 14, 21, 28, 35, 42, 49, 50]


def test_looping_uses_reader_seek(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line {i}\n" for i in range(95)))
    loop = LoopingPipe(TextLinesPipe(str(path), block_size=10))
    assert len(loop) == 95 and loop.block_size == 10
    assert loop[[93, 5, 50]]["text"].tolist() == ["line 93", "line 5", "line 50"]
    assert loop[-1]["text"].tolist() == ["line 94"]


# ------------------------------------------------------------------------------------------ readers
def test_text_lines_reader(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("a\r\nb\n\nc é\nlast".encode())
    reader = TextLinesPipe(str(path), block_size=2, column="line")
    assert [b["line"].tolist() for b in reader] == [["a", "b"], ["", "c é"], ["last"]]
    assert [b["line"].tolist() for b in reader] == [["a", "b"], ["", "c é"], ["last"]]
    with pytest.raises(TypeError, match="LoopingPipe"):
        reader[0]
    with pytest.raises(FileNotFoundError):
        TextLinesPipe(str(tmp_path / "missing.txt"))


FASTA = """; a comment
>seq1 first sequence
ACGT
ACG
>seq2
TTTT
>seq3 third

GGCC
CC
>seq4
A
"""


def test_fasta_reader(tmp_path):
    path = tmp_path / "g.fasta"
    path.write_text(FASTA)
    reader = FastaPipe(str(path), block_size=3)
    blocks = list(reader)
    assert [len(b) for b in blocks] == [3, 1]
    out = cat(blocks)
    assert out["id"].tolist() == ["seq1", "seq2", "seq3", "seq4"]
    assert out["sequence"].tolist() == ["ACGTACG", "TTTT", "GGCCCC", "A"]
    alias = BioSeqPipe(str(path), block_size=2)
    assert cat(list(alias)) == out
    with pytest.raises(ValueError):
        BioSeqPipe(str(path), filetype="genbank")
    loop = LoopingPipe(FastaPipe(str(path), block_size=1))
    assert loop[-2]["id"].tolist() == ["seq3"] and len(loop) == 4


def test_reader_resume_and_pickle(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("".join(f"{i}\n" for i in range(25)))
    reader = TextLinesPipe(str(path), block_size=4)
    full = [b["text"].tolist() for b in reader]
    it = iter(reader)
    first = [next(it)["text"].tolist() for _ in range(3)]
    state = pickle.loads(pickle.dumps(reader.get_state()))
    clone = pickle.loads(pickle.dumps(reader))
    fresh = TextLinesPipe(str(path), block_size=4)
    fresh.set_state(state)
    assert first + [b["text"].tolist() for b in fresh] == full
    more = []
    while True:
        try:
            more.append(next(clone)["text"].tolist())
        except StopIteration:
            break
    assert first + more == full
    assert [b["text"].tolist() for b in clone] == full  # iterating again starts over


# ------------------------------------------------------------------------------------------ ShufflerPipe
def test_shuffler_seeded_epochs():
    m, _ = make(40)
    a, b = ShufflerPipe(m, seed=3), ShufflerPipe(m, seed=3)
    ea, eb = flat(xs(a)), flat(xs(b))
    assert ea == eb and sorted(ea) == list(range(40)) and ea != list(range(40))
    assert flat(xs(a)) != ea  # the next epoch is a new order
    assert a.epoch == 1
    a.set_epoch(0)
    assert flat(xs(a)) == ea
    assert flat(xs(ShufflerPipe(m, seed=4))) != ea
    # indexing follows the current order
    s = ShufflerPipe(m, seed=3)
    assert s[0:5]["x"].tolist() == ea[:5] and s[-1]["x"].tolist() == [ea[-1]] and len(s) == 40
    assert s.upcoming_indices(4).tolist() == ea[:4]
    s.shuffle(list(range(39, -1, -1)))
    assert flat(xs(s))[:3] == [39, 38, 37]
    with pytest.raises(ValueError):
        s.shuffle([0, 0, 1])


def test_shuffler_identical_across_processes():
    code = ("import numpy as np; from flambe.pipeline.message import Message; "
            "from flambe.pipeline.pipes import ShufflerPipe; "
            "s = ShufflerPipe(Message({'x': np.arange(100)}), seed=7); s.set_epoch(2); "
            "print(s[:]['x'].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    s = ShufflerPipe(Message({"x": np.arange(100)}), seed=7)
    s.set_epoch(2)
    assert out.strip() == str(s[:]["x"].tolist())


def test_shuffler_block_aware():
    m, blocks = make(50, 10)
    stream = Counting(blocks, block_size=10)
    s = ShufflerPipe(LoopingPipe(stream), seed=1)
    assert s.block_size == 10
    chunks = xs(s)
    assert [len(c) for c in chunks] == [10] * 5
    assert all(len({v // 10 for v in c}) == 1 for c in chunks)  # each step reads one block
    assert sorted(flat(chunks)) == list(range(50))
    s2 = ShufflerPipe(m, seed=1, block_size=10, window=2)
    chunks = xs(s2)
    assert [len(c) for c in chunks] == [20, 20, 10]
    assert all(len({v // 10 for v in c}) <= 2 for c in chunks)
    assert s2.upcoming_indices(5).tolist() == []
    full = xs(ShufflerPipe(LoopingPipe(Counting(blocks)), seed=1, block_size=0))
    assert len(full) == 1  # a full row shuffle of 50 rows is one chunk
    perm, bounds = block_permutation(np.random.default_rng(0), np.array([0, 3, 3, 8]), window=1)
    assert sorted(perm.tolist()) == list(range(8)) and bounds[-1] == 8


def test_shuffler_needs_indexable_input(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a\nb\n")
    with pytest.raises(TypeError, match="LoopingPipe"):
        ShufflerPipe(TextLinesPipe(str(path)))
    with pytest.raises(ValueError):
        ShufflerPipe(Message({"x": [1]}), seed=-1)


def test_shuffler_batching_resume_mid_epoch():
    m, blocks = make(53, 7)

    def build():
        return BatchingPipe(ShufflerPipe(LoopingPipe(Counting(blocks)), seed=5, block_size=0), batch_size=6)

    ref = build()
    list(ref)  # epoch 0
    full = xs(ref)  # epoch 1, uninterrupted
    pipe = build()
    list(pipe)
    it = iter(pipe)
    half = [next(it)["x"].tolist() for _ in range(4)]
    state = pickle.loads(pickle.dumps(pipe.get_state()))
    fresh = build()
    fresh.set_state(state)
    rest = xs(fresh)
    assert half + rest == full
    assert [len(b) for b in full] == [6] * 8 + [5]
    # the epoch after the restored one is the same as without the interruption
    assert xs(fresh) == xs(ref)


def test_state_is_weights_only_loadable(tmp_path):
    m, blocks = make(30, 7)
    pipe = ShufflerPipe(LoopingPipe(Counting(blocks)), seed=2, block_size=7)
    it = iter(pipe)
    next(it)
    state = pipe.get_state()
    torch.save(dict(state), tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)
    fresh = ShufflerPipe(LoopingPipe(Counting(blocks)), seed=2, block_size=7)
    fresh.set_state(State(loaded))
    expected = rest(pipe)
    assert len(expected) == 4 and xs(fresh) == expected


# ------------------------------------------------------------------------------------------ BatchingPipe
def test_batching_sizes_drop_last_and_indexing():
    m, blocks = make(23, 4)
    b = BatchingPipe(Counting(blocks), batch_size=5)
    assert [len(x) for x in b] == [5, 5, 5, 5, 3]
    assert flat(xs(b)) == list(range(23))
    assert [len(x) for x in BatchingPipe(Counting(blocks), batch_size=5, drop_last=True)] == [5] * 4
    assert [len(x) for x in BatchingPipe(m, batch_size=30)] == [23]
    assert list(BatchingPipe(m, batch_size=30, drop_last=True)) == []
    idx = BatchingPipe(blocks, batch_size=5)
    assert len(idx) == 5 and idx[-1]["x"].tolist() == [20, 21, 22]
    assert idx[1]["s"].tolist() == ["r5", "r6", "r7", "r8", "r9"]
    assert idx[[0, 4]]["x"].tolist() == [0, 1, 2, 3, 4, 20, 21, 22]
    assert len(BatchingPipe(blocks, batch_size=5, drop_last=True)) == 4
    with pytest.raises(ValueError):
        BatchingPipe(m, batch_size=0)


# ------------------------------------------------------------------------------------------ others
def test_repeater_index_mapper_and_split():
    m, blocks = make(10, 4)
    r = RepeaterPipe(blocks, repetitions=3)
    assert flat(xs(r)) == list(range(10)) * 3 and len(r) == 30
    assert r[[0, 10, 29]]["x"].tolist() == [0, 0, 9]
    assert list(RepeaterPipe(m, repetitions=0)) == []
    it = iter(RepeaterPipe(blocks, repetitions=2))
    head = [next(it)["x"].tolist() for _ in range(4)]
    rep = it
    state = rep.get_state()
    fresh = RepeaterPipe(blocks, repetitions=2)
    fresh.set_state(state)
    assert head + xs(fresh) == xs(RepeaterPipe(blocks, repetitions=2))

    mapper = IndexMapperPipe(m, [9, 8, 7], [2, 0, 1])
    assert mapper[:]["x"].tolist() == [8, 7, 9] and len(mapper) == 3 and mapper[-1]["x"].tolist() == [9]
    assert xs(mapper) == [[8, 7, 9]]
    with pytest.raises(ValueError):
        IndexMapperPipe(m, [1, 2], [0, 0])

    train, test = train_test_split(m, test=0.3, seed=1)
    tr, te = train[:]["x"].tolist(), test[:]["x"].tolist()
    assert len(te) == 3 and sorted(tr + te) == list(range(10)) and tr == sorted(tr)
    assert train_test_split(m, test=0.3, seed=1)[1][:]["x"].tolist() == te
    assert train_test_split(m, test=0.3, seed=2)[1][:]["x"].tolist() != te or True
    s_train, s_test = train_test_split(Counting(blocks), test=4, seed=1)
    assert len(s_test) == 4 and len(s_train) == 6


def test_function_title_labeler_tensor_pipes():
    m = Message({"x": np.arange(4), "label": ["b", "a", "b", "c"]})
    f = FunctionPipe(m, double_x)
    assert xs(f) == [[0, 2, 4, 6]] and f[1:3]["x"].tolist() == [2, 4]
    assert m["x"].tolist() == [0, 1, 2, 3]  # the source is never changed in place
    t = Title2LabelPipe(m, "pos", labels_column="title")
    assert list(t)[0]["title"].tolist() == ["pos"] * 4 and t[0]["title"].tolist() == ["pos"]
    assert "title" not in m
    lab = LabelerPipe(m, ["a", "b", "c"], labels_column="label")
    assert lab.to_tensor(m)["label"].tolist() == [1, 0, 1, 2]
    assert LabelerPipe(m, {"a": 5, "b": 6, "c": 7}).to_tensor(m, "label")["label"].tolist() == [6, 5, 6, 7]
    with pytest.raises(KeyError, match="'c'"):
        LabelerPipe(m, ["a", "b"], labels_column="label").to_tensor(m)
    tensors = TensorPipe(BatchingPipe(lab, batch_size=2), device="cpu")
    out = list(tensors)
    assert [b["label"].tolist() for b in out] == [[1, 0], [1, 2]]
    assert all(isinstance(b["x"], torch.Tensor) for b in out)
    with pytest.raises(TypeError):
        FunctionPipe(m, "not callable")


def test_normalizer_stability_and_state():
    rng = np.random.default_rng(0)
    values = 1e9 + rng.normal(size=10_000)
    blocks = [Message({"v": values[i:i + 999], "t": torch.tensor(values[i:i + 999], dtype=torch.float64)})
              for i in range(0, 10_000, 999)]
    norm = Normalizer(blocks).fit()
    assert norm.count["v"] == 10_000
    np.testing.assert_allclose(norm.mean["v"], values.mean(), rtol=1e-15)
    np.testing.assert_allclose(norm.variance["v"], values.var(), rtol=1e-9)
    np.testing.assert_allclose(norm.variance["t"], values.var(), rtol=1e-9)
    out = cat(list(norm))
    assert abs(out["v"].mean()) < 1e-6 and abs(out["v"].std(ddof=0) - 1) < 1e-6
    assert out["t"].dtype == torch.float64
    # the naive sum-of-squares formula fails here; ours does not
    naive = (values ** 2).mean() - values.mean() ** 2
    assert abs(naive - values.var()) > 1e-3
    # statistics are part of the state and survive pickling
    fresh = Normalizer(blocks)
    fresh.set_state(pickle.loads(pickle.dumps(norm.get_state())))
    assert fresh.fitted and fresh.variance["v"] == norm.variance["v"]
    # lazy fit and standalone use
    auto = Normalizer(blocks, columns=["v"])
    assert abs(cat(list(auto))["v"].mean()) < 1e-6
    alone = Normalizer()
    alone.update(Message({"a": [1.0, 2.0]})).update(Message({"a": [3.0, 4.0]}))
    assert alone.mean["a"] == 2.5 and alone.variance["a"] == 1.25
    with pytest.raises(RuntimeError):
        Normalizer().transform(Message({"a": [1.0]}))


def test_every_pipe_pickles(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("".join(f"{i}\n" for i in range(12)))
    fasta = tmp_path / "g.fa"
    fasta.write_text(FASTA)
    m, blocks = make(12, 5)
    pipes = [Pipe(blocks), LoopingPipe(Counting(blocks)), ShufflerPipe(m, seed=1), BatchingPipe(blocks, 4),
             RepeaterPipe(blocks, 2), IndexMapperPipe(m, [3, 2], [0, 1]), FunctionPipe(m, double_x),
             Title2LabelPipe(m, "t"), LabelerPipe(m, ["a"]), TensorPipe(m, columns=["x"]), Normalizer(m, ["x"]),
             TextLinesPipe(str(path), 5), FastaPipe(str(fasta), 2), BioSeqPipe(str(fasta)),
             train_test_split(m, 0.5)[0]]
    for pipe in pipes:
        iter(pipe)
        next(pipe)  # mid-epoch, with open files and caches
        clone = pickle.loads(pickle.dumps(pipe))
        assert list(clone) == list(pipe), type(pipe).__name__


def test_flambe_save_and_load_resume(tmp_path):
    import flambe

    path = tmp_path / "t.txt"
    path.write_text("".join(f"{i}\n" for i in range(50)))
    pipe = BatchingPipe(ShufflerPipe(LoopingPipe(TextLinesPipe(str(path), block_size=7)), seed=1), batch_size=4)
    it = iter(pipe)
    for _ in range(3):
        next(it)
    flambe.save(pipe, str(tmp_path / "save"))
    loaded = flambe.load(str(tmp_path / "save"))
    assert isinstance(loaded, BatchingPipe)
    assert [b["text"].tolist() for b in loaded] == [b["text"].tolist() for b in _remaining(pipe)]


def _remaining(pipe):
    out = []
    while True:
        try:
            out.append(next(pipe))
        except StopIteration:
            return out
