"""Unit tests for flambe.pipeline.message: Message, TensorMessage, cat and merge, with hand-checked values."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

import flambe.pipeline.message as message_module
import flambe.pipeline.tensor_message as tensor_module
from flambe.pipeline import Message, TensorMessage, cat, merge

T = torch.tensor


def _m(n: int = 10) -> Message:
    """x = 0..n-1 (int64 tensor), f = rows [i, i+0.5] (float32 2-D tensor), s = 'r0'.., i = 10*row, b = even."""
    return Message({
        "x": torch.arange(n),
        "f": torch.stack([torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32) + 0.5], 1),
        "s": [f"r{i}" for i in range(n)],
        "i": np.arange(n) * 10,
        "b": np.arange(n) % 2 == 0,
    })


# ------------------------------------------------------------------------------------------------ construction
def test_dict_splits_tensors_from_frame_columns():
    m = Message({"a": [1, 2, 3], "t": T([4, 5, 6]), "arr": np.array([0.5, 1.5, 2.5])})
    assert m.columns == ["a", "t", "arr"] and m.keys() == ["a", "t", "arr"]
    assert m.tensor_columns == ["t"] and m.frame_columns == ["a", "arr"]
    assert isinstance(m["t"], torch.Tensor) and m["t"].tolist() == [4, 5, 6]
    assert isinstance(m["a"], pd.Series) and m["a"].tolist() == [1, 2, 3] and m["a"].dtype == np.int64
    assert m["arr"].tolist() == [0.5, 1.5, 2.5]
    assert len(m) == 3 and "a" in m and "t" in m and "zz" not in m
    assert list(m) == ["a", "t", "arr"]


def test_keywords_dataframes_series_and_messages():
    m = Message(a=[1, 2], b=T([1, 2]))
    assert m.columns == ["a", "b"] and m.tensor_columns == ["b"]
    assert Message({"a": [1, 2]}, b=T([1, 2])) == m
    with pytest.raises(ValueError, match="both"):
        Message({"a": [1]}, a=[2])
    df = pd.DataFrame({"p": [3, 4], "q": ["u", "v"]}, index=[7, 9])
    from_df = Message(df)
    assert from_df["p"].index.tolist() == [0, 1] and from_df["q"].tolist() == ["u", "v"]
    from_df["r"] = [0, 0]
    assert "r" not in df.columns  # the caller's frame is not touched
    s = pd.Series([5, 6], index=[10, 20])
    assert Message({"s": s})["s"].tolist() == [5, 6]
    assert Message(Message(a=[1, 2], metadata={"k": 1})).metadata == {"k": 1}
    assert Message(TensorMessage({"t": T([1])}))["t"].tolist() == [1]


def test_nd_array_becomes_per_row_arrays():
    m = Message({"a": np.array([[1, 2], [3, 4]])})
    assert m["a"].dtype == object and m["a"][1].tolist() == [3, 4]


def test_lengths_must_agree_and_columns_must_be_array_like():
    with pytest.raises(ValueError, match="a=3, b=2"):
        Message({"a": [1, 2, 3], "b": T([1, 2])})
    with pytest.raises(ValueError, match="0-d"):
        Message({"a": T(1)})
    with pytest.raises(TypeError, match="array-like"):
        Message({"a": "abc"})
    with pytest.raises(TypeError, match="array-like"):
        Message({"a": 5})
    with pytest.raises(TypeError, match="strings"):
        Message({1: [1]})
    with pytest.raises(ValueError, match="length=4"):
        Message({"a": [1, 2]}, length=4)
    assert len(Message(length=5)) == 5


def test_empty_message():
    e = Message()
    assert len(e) == 0 and e.columns == [] and not e
    m = e.append(Message({"a": [1, 2], "t": T([3, 4])}))
    assert m == Message({"a": [1, 2], "t": T([3, 4])})
    e["a"] = [1, 2, 3]  # an empty message takes the length of its first column
    assert len(e) == 3 and e["a"].tolist() == [1, 2, 3]


def test_columns_named_like_attributes():
    m = Message({"batch": [1, 2], "index": T([3, 4]), "columns": ["a", "b"], "keys": [0, 0], "metadata": [9, 9]})
    assert m["batch"].tolist() == [1, 2] and m["index"].tolist() == [3, 4] and m["columns"].tolist() == ["a", "b"]
    assert m.columns == ["batch", "index", "columns", "keys", "metadata"]
    assert m.keys() == m.columns and m.metadata == {}
    assert m[1]["columns"].tolist() == ["b"] and cat([m, m])["batch"].tolist() == [1, 2, 1, 2]
    m["length"] = [5, 6]
    assert len(m) == 2 and m["length"].tolist() == [5, 6]


# ----------------------------------------------------------------------------------------------- row access
def test_int_rows_including_negative():
    m = _m()
    assert m[0]["x"].tolist() == [0] and m[0]["s"].tolist() == ["r0"]
    last = m[-1]
    assert len(last) == 1 and last["x"].tolist() == [9] and last["s"].tolist() == ["r9"]
    assert last["s"].index.tolist() == [0] and last["i"].tolist() == [90]
    assert m[-10]["x"].tolist() == [0]
    for bad in (10, -11):
        with pytest.raises(IndexError, match="out of range"):
            m[bad]


def test_slices_negative_open_step_and_empty():
    m = _m()
    assert m[-3:]["x"].tolist() == [7, 8, 9] and m[-3:]["s"].tolist() == ["r7", "r8", "r9"]
    assert m[:-1]["x"].tolist() == list(range(9)) and m[:-1]["i"].tolist() == list(range(0, 90, 10))
    assert m[::2]["x"].tolist() == [0, 2, 4, 6, 8] and m[::2]["s"].tolist() == ["r0", "r2", "r4", "r6", "r8"]
    assert m[2:5]["f"].tolist() == [[2.0, 2.5], [3.0, 3.5], [4.0, 4.5]]
    assert m[::-3]["x"].tolist() == [9, 6, 3, 0] and m[::-3]["s"].tolist() == ["r9", "r6", "r3", "r0"]
    empty = m[5:2]
    assert len(empty) == 0 and empty.columns == m.columns and empty["x"].shape == (0,) and len(empty["s"]) == 0
    assert m[::2]["s"].index.tolist() == [0, 1, 2, 3, 4]
    assert len(m[100:]) == 0


def test_lists_arrays_tensors_and_masks():
    m = _m()
    assert m[[0, 5, 2]]["x"].tolist() == [0, 5, 2] and m[[0, 5, 2]]["s"].tolist() == ["r0", "r5", "r2"]
    assert m[[-1, 0]]["i"].tolist() == [90, 0]
    assert m[np.array([3, 3])]["s"].tolist() == ["r3", "r3"]
    assert m[T([1, 4])]["f"].tolist() == [[1.0, 1.5], [4.0, 4.5]]
    assert m[T(4)]["x"].tolist() == [4]
    mask = [i in (1, 2) for i in range(10)]
    assert m[mask]["s"].tolist() == ["r1", "r2"]
    assert m[m["b"]]["x"].tolist() == [0, 2, 4, 6, 8]  # a bool Series
    assert m[m["x"] > 6]["s"].tolist() == ["r7", "r8", "r9"]  # a bool tensor
    assert len(m[[]]) == 0
    with pytest.raises(IndexError, match="mask"):
        m[[True, False]]
    with pytest.raises(IndexError, match="row 10"):
        m[[0, 10]]
    with pytest.raises(TypeError):
        m[[0.5]]


def test_index_select_and_take_once_per_column(monkeypatch):
    m = _m(1000)
    calls = {"take": 0}
    real_take = pd.DataFrame.take

    def counting_take(self, *args, **kwargs):
        calls["take"] += 1
        return real_take(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "take", counting_take)
    rows = torch.randperm(1000)[:500]
    part = m[rows]
    assert calls["take"] == 1  # the whole frame in one take, not a row at a time
    assert part["x"].tolist() == rows.tolist() and part["i"].tolist() == (rows * 10).tolist()


def test_column_subset_by_list_of_names():
    sub = _m(3)[["s", "x"]]
    assert sub.columns == ["s", "x"] and sub.tensor_columns == ["x"] and len(sub) == 3
    with pytest.raises(KeyError, match="nope"):
        _m(3)[["nope"]]
    with pytest.raises(KeyError, match="columns are"):
        _m(3)["nope"]


def test_setitem_and_delitem():
    m = Message({"a": [1, 2]})
    m["t"] = T([5, 6])
    m["a"] = T([7, 8])  # a frame column replaced by a tensor keeps its position
    assert m.columns == ["a", "t"] and m.tensor_columns == ["a", "t"] and m.frame_columns == []
    m["t"] = pd.Series([1, 2], index=[5, 6])
    assert m.frame_columns == ["t"] and m["t"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="has 3 rows"):
        m["c"] = [1, 2, 3]
    del m["a"]
    assert m.columns == ["t"] and "a" not in m
    with pytest.raises(KeyError):
        del m["a"]


# ------------------------------------------------------------------------------------------------ conversions
def test_tensors_and_dataframe():
    m = Message({"a": [1, 2], "t": T([3, 4]), "f": np.array([0.5, 1.5], dtype=np.float32)})
    tm = m.tensors()
    assert isinstance(tm, TensorMessage) and tm.columns == ["t"] and tm["t"].tolist() == [3, 4]
    both = m.tensors(["a", "f"])
    assert both["a"].dtype == torch.int64 and both["a"].tolist() == [1, 2] and both["f"].dtype == torch.float32
    df = m.dataframe()
    assert list(df.columns) == ["a", "f"] and df["a"].tolist() == [1, 2]
    df = m.dataframe(["t", "a"])
    assert list(df.columns) == ["t", "a"] and df["t"].dtype == np.int64 and df["t"].tolist() == [3, 4]


def test_to_dataframe_and_back_keeps_dtypes():
    m = Message({
        "i": T([1, 2], dtype=torch.int64), "f": T([0.5, 1.5], dtype=torch.float32),
        "b": T([True, False]), "nd": T([[1, 2], [3, 4]], dtype=torch.int32), "s": ["x", "y"],
    })
    d = m.to_dataframe()
    assert d.tensor_columns == [] and d.columns == m.columns
    assert d["i"].dtype == np.int64 and d["f"].dtype == np.float32 and d["b"].dtype == bool
    assert d["nd"].dtype == object and d["nd"][1].tolist() == [3, 4]
    back = d.to_tensors(["i", "f", "b", "nd"])
    assert back == m
    assert back["i"].dtype == torch.int64 and back["f"].dtype == torch.float32 and back["b"].dtype == torch.bool
    assert back["nd"].dtype == torch.int32 and back["nd"].shape == (2, 2)
    assert m.to_dataframe("i").tensor_columns == ["f", "b", "nd"]


def test_strings_cannot_be_tensors():
    m = Message({"s": ["a", "b"], "o": pd.Series(["a", "b"], dtype=object)})
    with pytest.raises(TypeError, match="'s'.*strings"):
        m.to_tensors()
    with pytest.raises(TypeError, match="'o'.*strings"):
        m.to_tensors("o")
    with pytest.raises(TypeError, match="strings"):
        TensorMessage({"s": ["a", "b"]})
    with pytest.raises(ValueError, match="different shapes"):
        Message({"r": [np.zeros(2), np.zeros(3)]}).to_tensors()


def test_nullable_and_list_columns_to_tensors():
    assert Message({"n": pd.array([1, 2], dtype="Int64")}).to_tensors()["n"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="missing"):
        Message({"n": pd.array([1, None], dtype="Int64")}).to_tensors()
    lists = Message({"l": [[1, 2], [3, 4]]}).to_tensors()
    assert lists["l"].tolist() == [[1, 2], [3, 4]] and lists["l"].dtype == torch.int64


# ------------------------------------------------------------------------------------------------- operations
def test_append():
    a = Message({"s": ["a", "b"], "t": T([1, 2])})
    b = Message({"t": T([3]), "s": ["c"]})
    ab = a.append(b)
    assert ab["s"].tolist() == ["a", "b", "c"] and ab["t"].tolist() == [1, 2, 3] and ab.columns == ["s", "t"]
    assert len(a) == 2  # a new object
    assert a.append({"s": ["z"], "t": T([9])})["s"].tolist() == ["a", "b", "z"]
    with pytest.raises(ValueError, match="different columns"):
        a.append(Message({"s": ["c"]}))
    with pytest.raises(TypeError, match="tensors in some"):
        a.append(Message({"s": ["c"], "t": [3]}))


def test_cat_keeps_dtypes_and_skips_empty_parts():
    parts = [Message({"i": np.array([k], dtype=np.int64), "b": [k % 2 == 0], "t": T([[k, k]])}) for k in range(3)]
    out = cat([Message(), *parts, parts[0][0:0]])
    assert out["i"].dtype == np.int64 and out["b"].dtype == bool and out["i"].tolist() == [0, 1, 2]
    assert out["t"].tolist() == [[0, 0], [1, 1], [2, 2]]
    assert cat([]) == Message() and len(cat([Message(), Message()])) == 0
    tm = cat([TensorMessage({"x": T([1])}), TensorMessage({"x": T([2])})])
    assert isinstance(tm, TensorMessage) and tm["x"].tolist() == [1, 2]


def test_cat_is_one_concatenation_per_column(monkeypatch):
    calls = {"cat": 0, "concat": 0}
    real_cat, real_concat = torch.cat, pd.concat

    def counting_cat(*args, **kwargs):
        calls["cat"] += 1
        return real_cat(*args, **kwargs)

    def counting_concat(*args, **kwargs):
        calls["concat"] += 1
        return real_concat(*args, **kwargs)

    monkeypatch.setattr(tensor_module.torch, "cat", counting_cat)
    monkeypatch.setattr(message_module.pd, "concat", counting_concat)
    parts = [Message({"t": T([k]), "u": T([0.5]), "s": [str(k)], "i": [k]}) for k in range(500)]
    out = cat(parts)
    assert calls == {"cat": 2, "concat": 1}
    assert out["t"].tolist() == list(range(500)) and out["s"].tolist() == [str(k) for k in range(500)]


def test_cat_equals_repeated_append():
    # cat's cost is pinned by the call-count test (one concatenation per column), not by timings
    parts = [Message({"t": T([k]), "s": [str(k)], "i": [k]}) for k in range(300)]
    out = cat(parts)
    grown = Message()
    for p in parts:
        grown = grown.append(p)
    assert grown == out and out["i"].tolist() == list(range(300)) and out["s"].tolist()[-1] == "299"


def test_merge():
    a = Message({"a": [1, 2, 3]})
    b = Message({"b": T([1.0, 2.0, 3.0])})
    c = a.merge(b)
    assert c.columns == ["a", "b"] and c.tensor_columns == ["b"] and c["a"].tolist() == [1, 2, 3]
    d = merge([a, b, Message({"c": ["x", "y", "z"]}), Message()])
    assert d.columns == ["a", "b", "c"] and d["c"].tolist() == ["x", "y", "z"] and len(d) == 3
    with pytest.raises(ValueError, match="share columns: \\['a'\\]"):
        a.merge(Message({"a": [0, 0, 0]}))
    with pytest.raises(ValueError, match="different lengths"):
        a.merge(Message({"z": [0]}))
    tm = merge([TensorMessage({"x": T([1])}), TensorMessage({"y": T([2])})])
    assert isinstance(tm, TensorMessage) and tm.columns == ["x", "y"]


def test_map():
    m = Message({"a": [1, 2], "t": T([3, 4])})
    doubled = m.map(lambda col: col * 2)
    assert doubled["a"].tolist() == [2, 4] and doubled["t"].tolist() == [6, 8]
    assert doubled.tensor_columns == ["t"]
    partial = m.map({"t": lambda t: t + 1})
    assert partial["t"].tolist() == [4, 5] and partial["a"].tolist() == [1, 2]
    to_tensor = m.map({"a": lambda s: torch.from_numpy(s.to_numpy().copy())})
    assert to_tensor.tensor_columns == ["a", "t"]
    with pytest.raises(KeyError, match="zz"):
        m.map({"zz": abs})


def test_permute():
    a = Message({"a": [1, 2, 3], "t": T([10, 20, 30])})
    assert a.permute([2, 1, 0]) == Message({"a": [3, 2, 1], "t": T([30, 20, 10])})
    assert a.permute(T([1, 1]))["a"].tolist() == [2, 2]
    with pytest.raises(TypeError):
        a.permute("a")


def test_cpu_and_to_return_moved_message():
    m = Message({"t": T([1, 2]), "u": T([3.0, 4.0]), "s": ["a", "b"]})
    moved = m.to("cpu")
    assert moved == m and moved is not m and moved["t"].device.type == "cpu"
    assert m.cpu(["t"]) == m and m.to(torch.device("cpu"), keys="u") == m
    with pytest.raises(ValueError, match="not tensors"):
        m.cpu(["s"])
    with pytest.raises(KeyError):
        m.cpu(["nope"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_moves_only_the_named_columns():
    m = Message({"t": T([1, 2]), "u": T([3.0, 4.0]), "s": ["a", "b"]})
    g = m.cuda(keys=["t"])
    assert g["t"].is_cuda and not g["u"].is_cuda and not m["t"].is_cuda
    assert g == m and g.cpu()["t"].device.type == "cpu"
    assert g[[1, 0]]["t"].tolist() == [2, 1] and g[g["t"] > 1]["s"].tolist() == ["b"]
    assert m.cuda(0)["u"].device == torch.device("cuda", 0) and m.to("cuda:0")["t"].is_cuda
    assert cat([g, g])["t"].tolist() == [1, 2, 1, 2]
    tm = TensorMessage({"x": T([1])}).cuda()
    assert tm["x"].is_cuda and tm.cpu()["x"].device.type == "cpu"


def test_equality():
    m = _m(4)
    assert m == _m(4) and not (m != _m(4))
    assert m != _m(5)
    changed = _m(4)
    changed["s"] = ["r0", "r1", "r2", "zz"]
    assert m != changed
    assert Message({"t": T([1, 2])}) != Message({"t": T([1.0, 2.0])})  # dtype matters
    assert Message({"t": T([1, 2])}) != Message({"t": [1, 2]})  # tensor vs frame column
    assert Message({"a": [1, 2], "b": [3, 4]}) == Message({"b": [3, 4], "a": [1, 2]})  # order does not
    assert Message({"a": [1, 2]}) == {"a": [1, 2]}
    assert Message({"o": [T([1]), T([2])]}) == Message({"o": [T([1]), T([2])]})  # object column of tensors
    assert (Message() == 3) is False


def test_copy_is_deep():
    m = Message({"t": T([1, 2]), "s": ["a", "b"]}, metadata={"k": 1})
    c = m.copy()
    assert c == m and c.metadata == {"k": 1}
    c["t"][0] = 99
    c["s"] = ["z", "z"]
    c.metadata["k"] = 2
    assert m["t"].tolist() == [1, 2] and m["s"].tolist() == ["a", "b"] and m.metadata == {"k": 1}


def test_pickle_round_trip():
    m = _m(5)
    m.metadata["source"] = "test"
    back = pickle.loads(pickle.dumps(m))
    assert back == m and back.columns == m.columns and back.metadata == {"source": "test"}
    tm = TensorMessage({"x": T([1, 2])})
    assert pickle.loads(pickle.dumps(tm)) == tm
    assert pickle.loads(pickle.dumps(Message())) == Message()


def test_metadata_travels_with_rows_cat_and_merge():
    a = Message({"a": [1, 2]}, metadata={"k": 1})
    assert a[0].metadata == {"k": 1} and a[::2].metadata == {"k": 1}
    assert cat([a, Message({"a": [3]}, metadata={"j": 2})]).metadata == {"k": 1, "j": 2}
    assert a.merge(Message({"b": [0, 0]}, metadata={"k": 3})).metadata == {"k": 3}


def test_repr_names_columns():
    text = repr(Message({"t": T([1]), "s": ["a"]}))
    assert "1 rows" in text and "t: Tensor[int64, (1,)]" in text and "s:" in text


# ---------------------------------------------------------------------------------------------- TensorMessage
def test_tensor_message_api():
    tm = TensorMessage({"x": T([1, 2, 3]), "y": np.array([0.5, 1.5, 2.5], dtype=np.float32)})
    assert len(tm) == 3 and tm.columns == ["x", "y"] and tm.keys() == ["x", "y"] and "x" in tm
    assert tm["y"].dtype == torch.float32
    assert tm[-1]["x"].tolist() == [3] and tm[::2]["x"].tolist() == [1, 3] and len(tm[5:2]) == 0
    assert tm[[2, 0]]["y"].tolist() == [2.5, 0.5] and tm[T([True, False, True])]["x"].tolist() == [1, 3]
    assert tm.append(TensorMessage({"x": T([4]), "y": T([3.5])}))["x"].tolist() == [1, 2, 3, 4]
    assert tm.merge({"z": T([0, 0, 0])}).columns == ["x", "y", "z"]
    assert tm.permute([2, 1, 0])["x"].tolist() == [3, 2, 1]
    assert tm.map({"x": lambda t: t * 10})["x"].tolist() == [10, 20, 30]
    assert tm.cpu() == tm and tm.to("cpu", keys=["x"]) == tm and tm.copy() == tm
    assert tm != TensorMessage({"x": T([1, 2, 3])})
    tm["z"] = T([7, 8, 9])
    del tm["x"]
    assert tm.columns == ["y", "z"]
    with pytest.raises(ValueError, match="has 2 rows"):
        tm["w"] = T([1, 2])
    with pytest.raises(ValueError, match="same length"):
        TensorMessage({"a": T([1]), "b": T([1, 2])})
    assert len(TensorMessage()) == 0 and TensorMessage().append(TensorMessage({"a": T([1])}))["a"].tolist() == [1]


def test_messages_build_from_yaml():
    from flambe.compile import yaml
    built = yaml.load("!Message {text: [a, b], label: [0, 1]}")
    assert built == Message({"text": ["a", "b"], "label": [0, 1]})
