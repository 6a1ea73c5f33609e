"""Unit tests for the SQL part of the data layer (SQLite files only): create_table, TablePipe, DBPipe,
the tensor format, and SQLDataset."""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import torch

from flambe.field import LabelField, TextField
from flambe.pipeline.database import (
    MAGIC,
    TablePipe,
    TensorType,
    create_table,
    decode_tensor,
    encode_tensor,
    get_engine,
    reflect_table,
)
from flambe.pipeline.message import Message
from flambe.pipeline.sql_dataset import DBPipe, SQLDataset
from flambe.sampler import BaseSampler


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data.db'}"


@pytest.fixture
def pipe(url: str) -> TablePipe:
    """A committed table ``t`` of 10 rows: id 1..10, a = 10*id, b = id/2, s = 's<id>'."""
    create_table("t", {"a": "int", "b": "float", "s": "str"}, engine=url)
    table_pipe = TablePipe("t", url)
    table_pipe.insert(Message({"a": [10 * i for i in range(1, 11)], "b": [i / 2 for i in range(1, 11)],
                               "s": [f"s{i}" for i in range(1, 11)]}))
    table_pipe.commit()
    yield table_pipe
    table_pipe.close()


def ids(message: Message) -> list:
    return message["id"].tolist()


# ---------------------------------------------------------------------------------------------- tables
def test_create_table_types_and_keys(url: str) -> None:
    table = create_table("kinds", {"i": "int", "f": "float", "s": "str", "t": "text", "b": "bool",
                                   "y": "bytes", "x": "tensor", "j": "json", "n": sa.Numeric(10, 2)}, engine=url)
    assert table.c.keys()[0] == "id" and table.c.id.primary_key
    assert isinstance(table.c.x.type, TensorType) and isinstance(table.c.n.type, sa.Numeric)
    assert set(reflect_table("kinds", url).c.keys()) == set(table.c.keys())
    given = create_table("given", {"id": "str", "v": "int"})
    assert [c.name for c in given.primary_key.columns] == ["id"]
    pair = create_table("pair", {"a": "int", "b": "str", "v": "float"}, primary_key=["a", "b"])
    assert [c.name for c in pair.primary_key.columns] == ["a", "b"] and "id" not in pair.c
    with pytest.raises(ValueError, match="unknown column type 'complex'"):
        create_table("bad", {"a": "complex"})
    with pytest.raises(ValueError, match=r"primary key column\(s\) \['k'\]"):
        create_table("bad", {"a": "int"}, primary_key="k")
    with pytest.raises(sa.exc.NoSuchTableError):
        reflect_table("missing", url)


@pytest.mark.parametrize("tensor", [
    torch.randn(3, 4), torch.tensor(5, dtype=torch.int16), torch.tensor([True, False]),
    torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3), torch.randn(2).to(torch.bfloat16),
    torch.randn(2, dtype=torch.complex64), torch.empty(0, 3, dtype=torch.float64)])
def test_tensor_format_round_trip(tensor: torch.Tensor) -> None:
    blob = encode_tensor(tensor)
    assert blob.startswith(MAGIC) and b"torch" not in blob  # a plain header, never a pickle
    back = decode_tensor(blob)
    assert back.dtype == tensor.dtype and back.shape == tensor.shape and torch.equal(back, tensor)
    if tensor.dtype != torch.bfloat16:  # numpy arrays encode the same way
        assert encode_tensor(tensor.numpy()) == blob
    with pytest.raises(ValueError, match="not an encoded tensor"):
        decode_tensor(b"\x80\x04junk")


# ---------------------------------------------------------------------------------------------- writes
def test_insert_tensor_columns_round_trip_and_batch_column(url: str) -> None:
    create_table("m", {"batch": "int", "image": "tensor", "scalar": "tensor", "ragged": "tensor",
                       "label": "str"}, engine=url)
    images = torch.randn(5, 2, 3)
    scalars = torch.arange(5, dtype=torch.int16)
    ragged = pd.Series([torch.arange(n, dtype=torch.int64) for n in range(5)], dtype=object)
    table_pipe = TablePipe("m", url)
    assert table_pipe.insert(Message({"batch": [1, 2, 3, 4, 5], "image": images, "scalar": scalars,
                                      "ragged": ragged, "label": list("abcde")})) == 5
    table_pipe.commit()
    back = DBPipe("m", url).all()
    assert back.columns == ["id", "batch", "image", "scalar", "ragged", "label"]
    assert back["batch"].tolist() == [1, 2, 3, 4, 5]
    assert back["image"].dtype == torch.float32 and torch.equal(back["image"], images)
    assert back["scalar"].dtype == torch.int16 and torch.equal(back["scalar"], scalars)
    assert [t.tolist() for t in back["ragged"]] == [list(range(n)) for n in range(5)]
    # A reflected table has a plain binary column; the tensor header still decodes it.
    plain = DBPipe(reflect_table("m", url), url).all()
    assert torch.equal(plain["image"], images)
    table_pipe.close()


def test_insert_inputs_nulls_and_column_checks(url: str) -> None:
    create_table("n", {"a": "int", "b": "float", "s": "text", "ok": "bool", "j": "json"}, engine=url)
    table_pipe = TablePipe("n", url)
    table_pipe.insert({"a": [1, None], "b": [np.nan, 2.5], "s": ["x", None], "ok": [True, False],
                       "j": [{"k": [1, 2]}, [3]]})
    table_pipe.insert(pd.DataFrame({"a": [3], "b": [1.0], "s": ["z"], "ok": [True], "j": [None]}))
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the table"):
        table_pipe.insert({"a": [1], "nope": [2]})
    rows = table_pipe.query(order_by="id").all()
    assert rows["a"].tolist()[0] == 1 and pd.isna(rows["a"].tolist()[1])
    assert pd.isna(rows["b"].tolist()[0]) and rows["s"].tolist()[:1] == ["x"] and pd.isna(rows["s"].tolist()[1])
    assert rows["ok"].tolist() == [True, False, True] and rows["j"].tolist()[:2] == [{"k": [1, 2]}, [3]]
    table_pipe.commit()  # SQLite: one writing transaction at a time
    subset = TablePipe("n", url, columns=["a", "s"])
    subset.insert(Message({"a": [7], "s": ["q"], "ignored": [0]}))
    with pytest.raises(ValueError, match=r"the message lacks columns \['s'\]"):
        subset.insert(Message({"a": [8]}))
    with pytest.raises(ValueError, match="not in table"):
        TablePipe("n", url, columns=["zzz"])
    table_pipe.close()
    subset.close()


def test_insert_runs_one_executemany_per_block(url: str) -> None:
    create_table("blocks", {"v": "int"}, engine=url)
    table_pipe = TablePipe("blocks", url, block_size=4)
    calls = []
    sa.event.listen(table_pipe.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, params, context, many: calls.append(many))
    assert table_pipe.insert(Message({"v": list(range(10))})) == 10
    assert calls == [True, True, True] and len(table_pipe) == 10
    table_pipe.close()


def test_delete_and_update(pipe: TablePipe) -> None:
    assert pipe.delete({"id": [1, 2]}) == 2
    assert pipe.delete("s", ["s3"]) == 1
    assert pipe.delete(pipe.table.c.a > 90) == 1
    assert len(pipe) == 6
    with pytest.raises(ValueError, match="sqlalchemy.true()"):
        pipe.delete(None)
    assert pipe.update({"id": 4}, {"s": "four", "b": np.float64(0.25)}) == 1
    assert pipe.update(pipe.table.c.id >= 8, {"a": 0}) == 2
    assert pipe.update("id", Message({"id": [5, 6], "a": [-5, -6], "s": ["five", "six"]})) == 2
    rows = pipe.query(order_by="id").all()
    assert ids(rows) == [4, 5, 6, 7, 8, 9]
    assert rows["a"].tolist() == [40, -5, -6, 70, 0, 0]
    assert rows["s"].tolist() == ["four", "five", "six", "s7", "s8", "s9"] and rows["b"].tolist()[0] == 0.25
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        pipe.update({"nope": 1}, {"a": 1})


def test_upsert_inserts_or_updates_on_primary_key(pipe: TablePipe, url: str) -> None:
    assert pipe.upsert(Message({"id": [2, 11], "a": [-2, 110], "b": [0.0, 5.5], "s": ["two", "s11"]})) == 2
    assert pipe.upsert(Message({"id": [3], "s": ["three"]})) == 1  # only the given columns change
    rows = pipe.query(where={"id": [2, 3, 11]}, order_by="id").all()
    assert rows["a"].tolist() == [-2, 30, 110] and rows["s"].tolist() == ["two", "three", "s11"]
    assert len(pipe) == 11
    pipe.commit()
    pair = create_table("pair", {"k1": "int", "k2": "str", "v": "tensor"}, primary_key=["k1", "k2"], engine=url)
    pair_pipe = TablePipe(pair, url)
    pair_pipe.upsert(Message({"k1": [1, 1], "k2": ["a", "b"], "v": torch.zeros(2, 3)}))
    pair_pipe.upsert(Message({"k1": [1], "k2": ["b"], "v": torch.ones(1, 3)}))
    assert torch.equal(pair_pipe.query(order_by=["k1", "k2"]).all()["v"], torch.tensor([[0.0] * 3, [1.0] * 3]))
    with pytest.raises(ValueError, match=r"primary key column\(s\) \['k2'\]"):
        pair_pipe.upsert(Message({"k1": [1], "v": torch.ones(1, 3)}))
    pair_pipe.close()


def test_commit_rollback_and_visibility(pipe: TablePipe, url: str) -> None:
    outside = DBPipe("t", url)  # its own connections: committed data only
    pipe.insert(Message({"a": [1], "b": [1.0], "s": ["new"]}))
    assert len(pipe) == 11 and len(pipe.query()) == 11  # the pipe sees its own writes
    assert len(outside) == 10
    pipe.rollback()
    assert len(pipe) == 10
    pipe.insert(Message({"a": [1], "b": [1.0], "s": ["kept"]}))
    pipe.commit()
    pipe.delete({"s": "kept"})
    pipe.rollback()
    assert len(outside) == 11 and len(pipe) == 11
    with TablePipe("t", url) as scoped:
        scoped.insert(Message({"a": [2], "b": [2.0], "s": ["scoped"]}))
    assert len(outside) == 12
    with pytest.raises(RuntimeError), TablePipe("t", url) as failing:
        failing.insert(Message({"a": [3], "b": [3.0], "s": ["lost"]}))
        raise RuntimeError("boom")
    assert len(outside) == 12


# ---------------------------------------------------------------------------------------------- reads
def test_iteration_in_blocks_reset_and_restart(pipe: TablePipe, url: str) -> None:
    reader = DBPipe("t", url, block_size=4)
    assert [len(block) for block in reader] == [4, 4, 2]
    assert [len(block) for block in reader] == [4, 4, 2]  # a finished pass starts over
    first = next(iter(reader))
    assert ids(first) == [1, 2, 3, 4] and reader.position == 4
    assert ids(next(reader)) == [5, 6, 7, 8]
    reader.reset()
    assert ids(next(reader)) == [1, 2, 3, 4]
    assert sum(len(b) for b in pipe.query(block_size=3)) == 10
    empty = reader.filter(a=-1)
    assert list(empty) == [] and len(empty) == 0 and len(empty.all()) == 0 and empty.all().columns == [
        "id", "a", "b", "s"]
    with pytest.raises(ValueError, match="block_size"):
        DBPipe("t", url, block_size=0)


def test_query_filter_all_len_getitem(pipe: TablePipe, url: str) -> None:
    query = pipe.query("id", "s", where={"id": [2, 4, 6, 8]}, order_by="id")
    assert query.all().columns == ["id", "s"] and ids(query.all()) == [2, 4, 6, 8] and len(query) == 4
    reader = DBPipe(pipe.table, url).filter(pipe.table.c.a > 20)
    assert len(reader) == 8
    assert ids(reader.filter(s="s5").all()) == [5]
    assert ids(reader.filter({"s": ["s3", "s9"]}).all()) == [3, 9]
    assert ids(reader.filter("b", ">=", 4.5).all()) == [9, 10]
    assert ids(reader.filter("s", "in_", ["s4", "s1"]).all()) == [4]
    assert ids(reader.filter("id", "between", 4, 5).all()) == [4, 5]
    with pytest.raises(ValueError, match="unknown predicate"):
        reader.filter("id", "approximately", 3)
    assert ids(reader[0]) == [3] and ids(reader[-1]) == [10] and ids(reader[np.int64(2)]) == [5]
    assert ids(reader[1:4]) == [4, 5, 6] and ids(reader[::3]) == [3, 6, 9] and ids(reader[-2:]) == [9, 10]
    assert ids(reader[6:2:-2]) == [9, 7] and ids(reader[::-1]) == list(range(10, 2, -1)) and len(reader[5:5]) == 0
    with pytest.raises(IndexError):
        reader[8]
    with pytest.raises(IndexError):
        reader[-9]
    with pytest.raises(TypeError):
        reader["id"]
    text = DBPipe(None, url, query="SELECT id, a FROM t WHERE id <= 3")
    assert len(text) == 3 and text.all()["a"].tolist() == [10, 20, 30] and ids(text[1]) == [2]


def test_dbpipe_pickles_and_resumes(pipe: TablePipe, url: str) -> None:
    reader = DBPipe("t", url, block_size=3).filter("id", ">", 2)
    copy = pickle.loads(pickle.dumps(reader))
    assert [ids(b) for b in copy] == [[3, 4, 5], [6, 7, 8], [9, 10]]
    next(reader)
    resumed = pickle.loads(pickle.dumps(reader))
    assert resumed.position == 3 and [ids(b) for b in resumed] == [[6, 7, 8], [9, 10]]
    shared = pickle.loads(pickle.dumps(pipe.query(block_size=5)))  # the pipe's connection stays behind
    assert [len(b) for b in shared] == [5, 5]
    assert len(pickle.loads(pickle.dumps(pipe))) == 10
    with pytest.raises(ValueError, match="in-memory SQLite"):
        pickle.dumps(DBPipe(create_table("mem", {"v": "int"}, engine="sqlite://"), "sqlite://"))


def _read_rest(reader: DBPipe, queue) -> None:
    queue.put([ids(block) for block in reader])


def test_forked_dbpipe_reconnects_and_leaves_the_parent_alone(pipe: TablePipe, url: str) -> None:
    reader = DBPipe("t", url, block_size=4)
    assert ids(next(reader)) == [1, 2, 3, 4]  # the parent holds an open connection and result
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_rest, args=(reader, queue))
    child.start()
    assert queue.get(timeout=60) == [[5, 6, 7, 8], [9, 10]]
    child.join(60)
    assert child.exitcode == 0
    assert [ids(block) for block in reader] == [[5, 6, 7, 8], [9, 10]]


def test_dbpipe_position_is_part_of_the_state(pipe: TablePipe, url: str) -> None:
    reader = DBPipe("t", url, block_size=4)
    next(reader)
    state = reader.get_state()
    fresh = DBPipe("t", url, block_size=4)
    fresh.load_state(state)
    assert ids(next(fresh)) == [5, 6, 7, 8]


def test_engine_for_sqlite_files_uses_wal_and_a_busy_timeout(url: str) -> None:
    engine = get_engine(url)
    assert get_engine(url) is engine
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30_000


def _write_rows(url: str, worker: int, start, errors) -> None:
    try:
        start.wait(60)
        table_pipe = TablePipe("shared", url)
        for block in range(50):
            keys = list(range(block * 10, block * 10 + 10))
            table_pipe.insert(Message({"worker": [worker] * 10, "k": keys, "x": torch.randn(10, 4)}))
            table_pipe.commit()
        table_pipe.close()
    except BaseException:  # report everything, "database is locked" included
        errors.put(traceback.format_exc())


def test_four_processes_write_one_sqlite_file(url: str) -> None:
    create_table("shared", {"worker": "int", "k": "int", "x": "tensor"}, engine=url)
    # fork: four separate processes with their own connections (like four trials), without four torch imports
    context = multiprocessing.get_context("fork")
    start, errors = context.Event(), context.Queue()
    workers = [context.Process(target=_write_rows, args=(url, w, start, errors)) for w in range(4)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(120)
    problems = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert not problems, problems[0]
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    rows = DBPipe("shared", url).all()
    assert len(rows) == 2000 and rows["x"].shape == (2000, 4)
    counts = pd.Series(rows["worker"]).value_counts().sort_index().tolist()
    assert counts == [500] * 4


# ---------------------------------------------------------------------------------------------- SQLDataset
@pytest.fixture
def reviews(url: str) -> str:
    create_table("reviews", {"text": "text", "label": "str", "score": "float", "part": "str"}, engine=url)
    with TablePipe("reviews", url) as table_pipe:
        table_pipe.insert(Message({"text": [f"word{i % 7} other{i % 3} thing" for i in range(100)],
                                   "label": ["pos" if i % 2 else "neg" for i in range(100)],
                                   "score": [i / 10 for i in range(100)],
                                   "part": ["train"] * 70 + ["val"] * 20 + ["test"] * 10}))
    return url


def test_sql_dataset_seeded_split_is_deterministic(reviews: str) -> None:
    kwargs = dict(table="reviews", columns=["text", "label"], val_ratio=0.2, test_ratio=0.1)
    first = SQLDataset(reviews, seed=3, **kwargs)
    again = SQLDataset(reviews, seed=3, **kwargs)
    other = SQLDataset(reviews, seed=4, **kwargs)
    assert (len(first.train), len(first.val), len(first.test)) == (72, 18, 10)
    assert np.array_equal(first.raw, again.raw)
    assert not np.array_equal(first._val, other._val)
    everything = sorted(first.raw[:, 0].tolist())
    assert everything == sorted(f"word{i % 7} other{i % 3} thing" for i in range(100))


def test_sql_dataset_split_column_fields_and_sampler(reviews: str) -> None:
    dataset = SQLDataset(reviews, table="reviews", columns=["text", "label"], split_column="part",
                         transform={"text": TextField(), "label": LabelField()})
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (70, 20, 10)
    assert dataset.label.vocab_size == 2 and dataset.named_columns == ["text", "label"]
    batches = list(BaseSampler(batch_size=16, shuffle=True, seed=0).sample(dataset.train))
    assert len(batches) == 5 and batches[0][0].dim() == 2 and batches[0][1].shape == (16,)
    query = SQLDataset(reviews, query="SELECT score, label FROM reviews WHERE part = 'test' ORDER BY id",
                       val_ratio=0.0, test_ratio=0.0)
    assert len(query.train) == 10 and query.train[0][0].dtype == torch.float32
    with pytest.raises(ValueError, match=r"holds \['train '\]"):
        SQLDataset(reviews, query="SELECT text, 'train ' AS part FROM reviews", split_column="part")
    with pytest.raises(ValueError, match="needs a table or a query"):
        SQLDataset(reviews)
    with pytest.raises(ValueError, match="val_ratio must be in"):
        SQLDataset(reviews, table="reviews", val_ratio=1.0)
    with pytest.raises(ValueError, match=r"columns \['nope'\]"):
        SQLDataset(reviews, table="reviews", columns=["nope"])
    with pytest.raises(TypeError, match="reads a database"):
        SQLDataset.autogen("data.tsv")


def test_a_plain_path_is_an_sqlite_file(tmp_path) -> None:
    from flambe.pipeline.database import engine_url, get_engine
    path = str(tmp_path / "plain.sqlite")
    create_table("t", {"k": "int"}, engine=path)
    with TablePipe("t", path) as table:  # commits on leaving the block
        table.insert(Message({"k": [1, 2, 3]}))
    assert get_engine(path).url.database == path and engine_url(path) == f"sqlite:///{path}"
    assert DBPipe("t", path).all()["k"].tolist() == [1, 2, 3]


def test_a_looping_pipe_over_a_dbpipe_reads_the_right_rows_after_save_and_load(tmp_path) -> None:
    import flambe
    from flambe.pipeline import LoopingPipe
    path = str(tmp_path / "rows.sqlite")
    create_table("t", {"k": "int"}, engine=path)
    with TablePipe("t", path) as table:
        table.insert(Message({"k": list(range(50))}))
    looping = LoopingPipe(DBPipe("t", path, block_size=10))
    assert len(looping) == 50 and looping[5]["k"].tolist() == [5]  # the DBPipe now stands after block 0
    flambe.save(looping, str(tmp_path / "saved"))
    loaded = flambe.load(str(tmp_path / "saved"))
    assert loaded[[5, 42, 13]]["k"].tolist() == [5, 42, 13]
    assert loaded[-1]["k"].tolist() == [49]


def test_dbpipe_rows_by_list_array_and_tensor(tmp_path) -> None:
    path = str(tmp_path / "list.sqlite")
    create_table("t", {"k": "int"}, engine=path)
    with TablePipe("t", path) as table:
        table.insert(Message({"k": list(range(30))}))
    rows = DBPipe("t", path)
    assert rows[[4, 2, 9]]["k"].tolist() == [4, 2, 9]
    assert rows[np.array([-1, 0])]["k"].tolist() == [29, 0]
    assert rows[torch.tensor([7])]["k"].tolist() == [7]
    assert len(rows[[]]) == 0
    with pytest.raises(IndexError):
        rows[[1, 30]]
