"""Integration tests: TablePipe, DBPipe and SQLDataset on PostgreSQL and MariaDB servers on 127.0.0.1.

PostgreSQL: ``postgresql+psycopg://postgres@127.0.0.1:5432/test``; MariaDB:
``mysql+pymysql://root@127.0.0.1:3306/test`` (override with FLAMBE_TEST_POSTGRES_URL /
FLAMBE_TEST_MARIADB_URL). Each test skips, saying why, when its server does not answer. Every test
uses tables with unique names and drops them afterwards.
"""

from __future__ import annotations

import os
import pickle
import uuid
from typing import Any, Dict, Iterator, List

import pytest
import sqlalchemy as sa
import torch

from flambe.pipeline.database import TablePipe, create_table, get_engine, reflect_table
from flambe.pipeline.message import Message
from flambe.pipeline.sql_dataset import DBPipe, SQLDataset

pytestmark = pytest.mark.integration

SERVERS = {
    "postgresql": (os.environ.get("FLAMBE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                   {"connect_timeout": 2}),
    "mariadb": (os.environ.get("FLAMBE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
                {"connect_timeout": 2}),
}
_ANSWERS: Dict[str, str] = {}


def _problem(name: str) -> str:
    """'' when the server answers, else why not (checked once per server)."""
    if name not in _ANSWERS:
        url, connect_args = SERVERS[name]
        try:
            engine = sa.create_engine(url, connect_args=connect_args)
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            engine.dispose()
            _ANSWERS[name] = ""
        except Exception as error:  # driver missing, refused, bad credentials...
            _ANSWERS[name] = f"{name} at {url} does not answer: {type(error).__name__}: {error}".splitlines()[0]
    return _ANSWERS[name]


class Server:
    """One database for one test: unique table names, and every pipe closed and table dropped after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tables: List[str] = []
        self.pipes: List[Any] = []

    def table(self, columns: Dict[str, Any], **kwargs: Any) -> sa.Table:
        name = f"flambe_test_{uuid.uuid4().hex[:10]}"
        self.tables.append(name)
        return create_table(name, columns, engine=self.url, **kwargs)

    def pipe(self, pipe: Any) -> Any:
        self.pipes.append(pipe)
        return pipe

    def cleanup(self) -> None:
        for pipe in self.pipes:
            pipe.close() if isinstance(pipe, TablePipe) else pipe.reset()
        with get_engine(self.url).begin() as connection:
            for name in self.tables:
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    problem = _problem(request.param)
    if problem:
        pytest.skip(problem)
    database = Server(SERVERS[request.param][0])
    try:
        yield database
    finally:
        database.cleanup()


def ids(message: Message) -> list:
    return message["id"].tolist()


def test_insert_and_read_back_with_tensors(server: Server) -> None:
    table = server.table({"batch": "int", "x": "float", "name": "str", "flag": "bool", "image": "tensor",
                          "code": "tensor", "extra": "json"})
    images, codes = torch.randn(25, 2, 3), torch.arange(25, dtype=torch.int16)
    pipe = server.pipe(TablePipe(table, server.url, block_size=10))
    assert pipe.insert(Message({"batch": list(range(25)), "x": [i / 4 for i in range(25)],
                                "name": [f"n{i}" for i in range(25)], "flag": [i % 2 == 0 for i in range(25)],
                                "image": images, "code": codes, "extra": [{"i": i} for i in range(25)]})) == 25
    assert len(pipe) == 25
    pipe.commit()
    reader = server.pipe(DBPipe(table, server.url, sa.select(table).order_by(table.c.id), block_size=10))
    assert [len(block) for block in reader] == [10, 10, 5]
    rows = reader.all()
    assert rows["batch"].tolist() == list(range(25)) and rows["flag"].tolist()[:3] == [True, False, True]
    assert rows["image"].dtype == torch.float32 and torch.equal(rows["image"], images)
    assert rows["code"].dtype == torch.int16 and torch.equal(rows["code"], codes)
    assert rows["extra"].tolist()[3] == {"i": 3}
    assert len(reader) == 25 and rows["name"].tolist()[-1] == "n24"
    assert reader[3]["batch"].tolist() == [3] and reader[-2:]["batch"].tolist() == [23, 24]
    assert reader.filter("x", ">=", 5.5).all()["batch"].tolist() == [22, 23, 24]
    assert ids(reader.filter(name=["n1", "n7"]).all()) == [2, 8]
    reflected = reflect_table(table.name, server.url)  # binary columns: the tensor header decodes them
    plain = server.pipe(DBPipe(reflected, server.url, sa.select(reflected).order_by(reflected.c.id))).all()
    assert torch.equal(plain["image"], images) and torch.equal(plain["code"], codes)


def test_upsert_on_primary_keys(server: Server) -> None:
    table = server.table({"a": "int", "s": "str"})
    pipe = server.pipe(TablePipe(table, server.url))
    pipe.insert(Message({"a": [1, 2, 3], "s": ["x", "y", "z"]}))
    assert pipe.upsert(Message({"id": [2, 40], "a": [-2, 40], "s": ["two", "forty"]})) == 2
    assert pipe.upsert(Message({"id": [3], "s": ["three"]})) == 1
    rows = pipe.query(order_by="id").all()
    assert ids(rows) == [1, 2, 3, 40] and rows["a"].tolist() == [1, -2, 3, 40]
    assert rows["s"].tolist() == ["x", "two", "three", "forty"]
    pair = server.table({"k1": "int", "k2": "str", "v": "tensor"}, primary_key=["k1", "k2"])
    pair_pipe = server.pipe(TablePipe(pair, server.url))
    pair_pipe.upsert(Message({"k1": [1, 1], "k2": ["a", "b"], "v": torch.zeros(2, 3)}))
    pair_pipe.upsert(Message({"k1": [1], "k2": ["b"], "v": torch.ones(1, 3)}))
    assert torch.equal(pair_pipe.query(order_by=["k1", "k2"]).all()["v"], torch.tensor([[0.0] * 3, [1.0] * 3]))
    pair_pipe.upsert(Message({"k1": [1], "k2": ["a"]}))  # keys only: nothing to change
    assert len(pair_pipe) == 2


def test_delete_update_and_transactions(server: Server) -> None:
    table = server.table({"a": "int", "s": "str", "t": "tensor"})
    pipe = server.pipe(TablePipe(table, server.url))
    pipe.insert(Message({"a": [10, 20, 30, 40, 50], "s": list("abcde"), "t": torch.zeros(5, 2)}))
    pipe.commit()
    outside = server.pipe(DBPipe(table, server.url))
    assert pipe.delete({"s": ["a", "b"]}) == 2
    assert pipe.update(table.c.a >= 40, {"s": "big", "t": torch.ones(2)}) == 2
    assert pipe.update("id", Message({"id": [3], "a": [33]})) in (1, -1)  # executemany: as the driver reports
    rows = pipe.query(order_by="id").all()
    assert rows["a"].tolist() == [33, 40, 50] and rows["s"].tolist() == ["c", "big", "big"]
    assert torch.equal(rows["t"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]))
    assert len(outside) == 5  # not committed yet
    pipe.rollback()
    assert len(pipe) == 5 and pipe.query(order_by="id").all()["a"].tolist() == [10, 20, 30, 40, 50]
    pipe.delete({"a": 10})
    pipe.commit()
    assert len(outside) == 4


def test_pickled_dbpipe_and_sql_dataset(server: Server) -> None:
    table = server.table({"text": "text", "label": "str"})
    with TablePipe(table, server.url) as pipe:
        pipe.insert(Message({"text": [f"t{i}" for i in range(40)], "label": ["a", "b"] * 20}))
    reader = server.pipe(DBPipe(table, server.url, sa.select(table).order_by(table.c.id), block_size=16))
    next(reader)
    copy = server.pipe(pickle.loads(pickle.dumps(reader)))
    assert [len(block) for block in copy] == [16, 8]
    reader.reset()
    dataset = SQLDataset(server.url, table=table.name, columns=["text", "label"], val_ratio=0.25, test_ratio=0.0,
                         seed=1)
    again = SQLDataset(server.url, table=table.name, columns=["text", "label"], val_ratio=0.25, test_ratio=0.0,
                       seed=1)
    assert (len(dataset.train), len(dataset.val)) == (30, 10)
    assert dataset.raw.tolist() == again.raw.tolist()
