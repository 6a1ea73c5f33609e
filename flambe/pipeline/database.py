"""SQL sources and sinks for Messages: ``create_table``, ``TablePipe`` (writes) and ``DBPipe`` (block reads,
in :mod:`flambe.pipeline.sql_dataset`, also importable from here).

Everything goes through SQLAlchemy 2 Core, so any database it speaks to works; upserts use the native
``ON CONFLICT`` (SQLite, PostgreSQL) or ``ON DUPLICATE KEY`` (MySQL, MariaDB) statements. Reads and
writes work in blocks: a :class:`DBPipe` yields Messages of up to ``block_size`` rows, each built with
one DataFrame construction, and :meth:`TablePipe.insert` runs one ``executemany`` per block.

Tensor columns are stored as bytes in a small self-describing format (never pickle): the magic
``b"FLTN\\x01"``, one byte for the dtype, one for the number of dimensions, the shape as little-endian
uint64s, then the raw little-endian data in C order. A row's tensor keeps its dtype and shape; a column
whose rows share them reads back as one tensor of shape ``(rows, *shape)``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import sqlalchemy as sa
import torch
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator, TypeEngine

from flambe.compile import Component
from flambe.pipeline.message import Message

if TYPE_CHECKING:
    from flambe.pipeline.sql_dataset import DBPipe

__all__ = ["TensorType", "encode_tensor", "decode_tensor", "create_table", "reflect_table", "get_engine",
           "where_clause", "TablePipe", "DBPipe"]

MAGIC = b"FLTN\x01"
_DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
           torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128]
_CODE = {dtype: code for code, dtype in enumerate(_DTYPES)}
_NUMPY = ["?", "u1", "i1", "<i2", "<i4", "<i8", "<f2", "<i2", "<f4", "<f8", "<c8", "<c16"]  # bfloat16: as int16


# ---------------------------------------------------------------------------------------------- tensors
def _header(dtype: torch.dtype, shape: Sequence[int]) -> bytes:
    if dtype not in _CODE:
        raise TypeError(f"tensors of dtype {dtype} cannot be stored (supported: {_DTYPES})")
    return MAGIC + bytes([_CODE[dtype], len(shape)]) + np.asarray(shape, dtype="<u8").tobytes()


def _raw(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return tensor.numpy().astype(_NUMPY[_CODE[tensor.dtype]], copy=False)


def encode_tensor(value: Union[torch.Tensor, np.ndarray]) -> bytes:
    """One tensor (or numpy array) as bytes: header (dtype, shape) then its raw data."""
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    return _header(tensor.dtype, tuple(tensor.shape)) + _raw(tensor).tobytes()


def _encode_rows(tensor: torch.Tensor) -> List[bytes]:
    """Each row of ``tensor`` encoded, column-wise: one header, one copy of the data, then slices."""
    n = tensor.shape[0]
    header = np.frombuffer(_header(tensor.dtype, tuple(tensor.shape[1:])), dtype=np.uint8)
    data = _raw(tensor).reshape(n, -1).view(np.uint8) if n else np.empty((0, 0), np.uint8)
    full = np.empty((n, len(header) + data.shape[1]), dtype=np.uint8)
    full[:, :len(header)] = header
    full[:, len(header):] = data
    blob, width = full.tobytes(), full.shape[1]
    return [blob[i * width:(i + 1) * width] for i in range(n)]


def _parse_header(blob: bytes) -> tuple:
    if not blob.startswith(MAGIC):
        raise ValueError("these bytes are not an encoded tensor (no FLTN header)")
    code, ndim = blob[len(MAGIC)], blob[len(MAGIC) + 1]
    start = len(MAGIC) + 2
    shape = tuple(int(s) for s in np.frombuffer(blob, dtype="<u8", count=ndim, offset=start))
    return _DTYPES[code], shape, start + 8 * ndim


def _from_raw(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = array.copy(order="C")
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if dtype == torch.bfloat16 else tensor


def decode_tensor(blob: Union[bytes, memoryview]) -> torch.Tensor:
    """The tensor :func:`encode_tensor` encoded (same dtype and shape)."""
    blob = bytes(blob)
    dtype, shape, start = _parse_header(blob)
    return _from_raw(np.frombuffer(blob, dtype=_NUMPY[_CODE[dtype]], offset=start).reshape(shape), dtype)


def decode_column(values: Sequence[Any]) -> Union[torch.Tensor, List[Any]]:
    """A column of encoded tensors: one stacked tensor when every row has the same dtype and shape
    (decoded in one pass), else a list of per-row tensors (None for NULLs)."""
    blobs = [bytes(v) if isinstance(v, memoryview) else v for v in values]
    if blobs and all(isinstance(b, bytes) for b in blobs) and len({len(b) for b in blobs}) == 1:
        dtype, shape, start = _parse_header(blobs[0])
        table = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), -1)
        if (table[:, :start] == table[0, :start]).all():
            data = np.ascontiguousarray(table[:, start:]).view(_NUMPY[_CODE[dtype]])
            return _from_raw(data.reshape((len(blobs),) + shape), dtype)
    return [None if b is None else decode_tensor(b) for b in blobs]


class TensorType(TypeDecorator):
    """A column of tensors, stored as bytes (``LONGBLOB`` on MySQL/MariaDB, ``LargeBinary`` elsewhere).

    Binds a tensor, a numpy array or already-encoded bytes; reads back bytes (a :class:`DBPipe`
    decodes them into tensors column-wise; elsewhere use :func:`decode_tensor`).
    """

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGBLOB())
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return encode_tensor(value) if isinstance(value, (torch.Tensor, np.ndarray)) else value


# ---------------------------------------------------------------------------------------------- tables
def _type(spec: Any) -> TypeEngine:
    if isinstance(spec, TypeEngine):
        return spec
    if isinstance(spec, type) and issubclass(spec, TypeEngine):
        return spec()
    simple = {"int": lambda: sa.BigInteger().with_variant(sa.Integer(), "sqlite"), "float": sa.Double,
              "str": lambda: sa.String(255), "text": sa.Text, "bool": sa.Boolean,
              "bytes": lambda: sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
              "tensor": TensorType, "json": sa.JSON}
    if isinstance(spec, str) and spec.lower() in simple:
        return simple[spec.lower()]()
    raise ValueError(f"unknown column type {spec!r}: use a SQLAlchemy type or one of {sorted(simple)}")


def create_table(name: str, columns: Mapping[str, Any], primary_key: Union[str, Sequence[str], None] = None,
                 engine: Union[Engine, str, None] = None, metadata: Optional[sa.MetaData] = None) -> sa.Table:
    """A table with these columns (and, with ``engine``, created in that database if it is missing).

    Parameters
    ----------
    name : str
        The table name.
    columns : Mapping[str, Any]
        ``column name -> type``: a SQLAlchemy type (class or instance) or one of ``'int'`` (BIGINT),
        ``'float'`` (DOUBLE), ``'str'`` (VARCHAR(255), usable as a key on every database), ``'text'``
        (unbounded), ``'bool'``, ``'bytes'``, ``'tensor'`` (:class:`TensorType`), ``'json'``.
    primary_key : str or Sequence[str], optional
        The primary key column(s). Without it, a column ``'id'`` is the key: the given one, or else an
        added auto-incrementing integer.
    engine : Engine or str, optional
        Create the table there (nothing happens when a table of that name already exists).
    metadata : sqlalchemy.MetaData, optional
        The metadata to define the table in (a new one by default).
    """
    keys = [primary_key] if isinstance(primary_key, str) else list(primary_key or [])
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ValueError(f"primary key column(s) {missing} are not among the columns {list(columns)}")
    cols = [sa.Column(col, _type(kind), primary_key=col in keys) for col, kind in columns.items()]
    if not keys:
        if "id" in columns:
            cols = [sa.Column(c.name, c.type, primary_key=c.name == "id") for c in cols]
        else:
            cols.insert(0, sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True))
    table = sa.Table(name, metadata if metadata is not None else sa.MetaData(), *cols)
    if engine is not None:
        table.metadata.create_all(get_engine(engine), tables=[table])
    return table


def reflect_table(name: str, engine: Union[Engine, str]) -> sa.Table:
    """The table ``name`` as it is in the database (raises ``sqlalchemy.exc.NoSuchTableError``)."""
    return sa.Table(name, sa.MetaData(), autoload_with=get_engine(engine))


# ---------------------------------------------------------------------------------------------- engines
_ENGINES: Dict[tuple, Engine] = {}
#: Engines, connections and results a forked process inherited: kept alive, never used or closed.
INHERITED: List[Any] = []


def is_sqlite_file(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
        and "mode=memory" not in str(url)


def get_engine(engine: Union[Engine, str, sa.URL]) -> Engine:
    """``engine`` itself, or the engine of this process for the URL (one per URL and process).

    Engines made here for SQLite files wait up to 30 s for a lock (``timeout``) and use write-ahead
    logging, so several processes can write to one file without "database is locked" errors. A string
    without ``://`` is the path of an SQLite file (so a config can pass a resource path).
    """
    if isinstance(engine, Engine):
        return engine
    url = sa.make_url(_sqlite_path_as_url(engine))
    key = (os.getpid(), url.render_as_string(hide_password=False))
    if key not in _ENGINES:
        if is_sqlite_file(url):
            made = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(made, "connect")
            def _wal(dbapi_connection: Any, record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.close()
        else:
            made = sa.create_engine(url)
        _ENGINES[key] = made
    return _ENGINES[key]


def _sqlite_path_as_url(engine: Union[str, sa.URL]) -> Union[str, sa.URL]:
    if isinstance(engine, str) and "://" not in engine:
        return "sqlite:///" + os.path.abspath(os.path.expanduser(engine))
    return engine


def engine_url(engine: Union[Engine, str, sa.URL]) -> str:
    url = engine.url if isinstance(engine, Engine) else sa.make_url(_sqlite_path_as_url(engine))
    return url.render_as_string(hide_password=False)


# ---------------------------------------------------------------------------------------------- values
def _python(value: Any) -> Any:
    """A scalar as a plain Python value (tensors and numpy scalars unwrapped)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    return value.item() if isinstance(value, np.generic) else value


def _binary(sql_type: Any) -> bool:
    """Whether a column type stores bytes (TensorType, or any binary type, e.g. of a reflected table)."""
    try:
        return isinstance(sql_type, TensorType) or sql_type.python_type is bytes
    except NotImplementedError:
        return False


def _value(value: Any, sql_type: Any) -> Any:
    """One value for a column of ``sql_type``: tensors and arrays encoded for binary columns."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and _binary(sql_type):
        return encode_tensor(value)
    return _python(value)


def _column_values(column: Any, sql_type: Optional[TypeEngine], name: str) -> List[Any]:
    """One Message column as a list of DBAPI values for a column of ``sql_type`` (tensors are encoded
    for binary columns)."""
    is_tensor = _binary(sql_type)
    if isinstance(column, torch.Tensor):
        if is_tensor or column.dim() > 1:
            if not is_tensor:
                raise ValueError(f"column '{name}' holds {column.dim()}-D tensors but the table column is "
                                 f"{sql_type}; make it a 'tensor' column")
            return _encode_rows(column)
        return column.detach().cpu().tolist()
    series = column if isinstance(column, pd.Series) else pd.Series(column)
    if is_tensor:
        return [encode_tensor(v) if isinstance(v, (torch.Tensor, np.ndarray)) else v for v in series.tolist()]
    missing = series.isna()
    if missing.any():
        return series.astype(object).where(~missing, None).tolist()
    return series.tolist()


def where_clause(table: Any, where: Any, values: Any = None) -> Any:
    """A WHERE condition from a SQLAlchemy expression, or ``{column: value}`` (a sequence of values: IN,
    None: IS NULL; several keys: AND), or a column name with ``values``.

    Raises
    ------
    ValueError
        For a missing condition (use ``sqlalchemy.true()`` to mean every row) or an unknown column.
    """
    if isinstance(where, str):
        where = {where: values}
    if isinstance(where, Mapping):
        if not where:
            raise ValueError("an empty condition: use sqlalchemy.true() to select every row")
        parts = []
        for name, value in where.items():
            column = column_of(table, name)
            if isinstance(value, (torch.Tensor, np.ndarray, pd.Series)) and np.ndim(value) > 0:
                value = value.tolist()
            if isinstance(value, (list, tuple, set, frozenset)):
                parts.append(column.in_([_python(v) for v in value]))
            else:
                parts.append(column.is_(None) if value is None else column == _python(value))
        return sa.and_(*parts)
    if where is None:
        raise ValueError("no condition given: use sqlalchemy.true() to act on every row")
    return where


def column_of(table: Any, name: Any) -> Any:
    if not isinstance(name, str):
        return name
    columns = table.selected_columns if isinstance(table, sa.Select) else table.c
    if name not in columns:
        raise ValueError(f"unknown column '{name}' (the columns are {list(columns.keys())})")
    return columns[name]


OPERATORS = {"==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


def _picklable(state: Dict[str, Any], **reset: Any) -> Dict[str, Any]:
    """A pipe's ``__dict__`` for pickling: ``reset`` applied, and the recorded constructor arguments
    naming the database by URL (never an engine or a connection)."""
    state = {**state, **reset}
    args = state.get("_flambe_init_args")
    if args:
        state["_flambe_init_args"] = {**args, "engine": state["url"],
                                      **({"connection": None} if "connection" in args else {})}
    return state


# ---------------------------------------------------------------------------------------------- TablePipe
class TablePipe(Component):
    """A database table that Messages are written to (insert, update, upsert, delete) and queried from.

    Transactions: a TablePipe holds one connection, opened on first use, and everything it does runs in
    that connection's current transaction. Nothing it writes is visible to other connections until
    :meth:`commit`; :meth:`rollback` discards everything since the last commit (on PostgreSQL a failed
    statement leaves the transaction unusable until then). On SQLite one transaction writes at a
    time: other writers (pipes, processes) wait for its commit, up to the busy timeout. ``len(pipe)``
    and the DBPipes of :meth:`query` read through the same connection, so they see the pipe's own
    uncommitted writes. :meth:`close` (or leaving a ``with`` block: commit on success, rollback on an
    error) ends it. A copy (pickled, or inherited by a forked process) opens its own connection.

    Parameters
    ----------
    table : Table or str
        The table (a name is reflected from the database).
    engine : Engine or str
        The database (an Engine or a URL; see :func:`get_engine` for SQLite files).
    columns : Sequence[str], optional
        The columns written: with them, ``insert`` writes exactly these message columns (and ignores
        others); without them, it writes every message column, each of which must be a table column.
    block_size : int
        The most rows per ``executemany``.
    """

    def __init__(self, table: Union[sa.Table, str], engine: Union[Engine, str],
                 columns: Optional[Sequence[str]] = None, block_size: int = 10_000) -> None:
        self.url = engine_url(engine)
        self._engine: Optional[Engine] = engine if isinstance(engine, Engine) else None
        self._conn: Optional[Connection] = None
        self._pid = os.getpid()
        self.table = reflect_table(table, self.engine) if isinstance(table, str) else table
        unknown = [c for c in columns or [] if c not in self.table.c]
        if unknown:
            raise ValueError(f"columns {unknown} are not in table '{self.table.name}' "
                             f"(its columns are {list(self.table.c.keys())})")
        self.columns = list(columns) if columns is not None else None
        self.block_size = int(block_size)

    @property
    def engine(self) -> Engine:
        """The engine (rebuilt from the URL after unpickling, or in a forked process)."""
        if self._pid != os.getpid():  # forked: never touch (or close) the parent's connection
            INHERITED.extend(x for x in (self._engine, self._conn) if x is not None)
            self._engine, self._conn, self._pid = None, None, os.getpid()
        if self._engine is None:
            self._engine = get_engine(self.url)
        return self._engine

    def connection(self) -> Connection:
        """The pipe's connection (opened on first use)."""
        self.engine  # noqa: B018 - drops a connection inherited through fork
        if self._conn is None or self._conn.closed:
            self._conn = self.engine.connect()
        return self._conn

    # ------------------------------------------------------------------ rows
    def _rows(self, message: Any, names: Optional[Sequence[str]] = None) -> Iterator[List[Dict[str, Any]]]:
        """The message as blocks of row dicts for ``executemany`` (converted column by column)."""
        if not isinstance(message, Message):
            message = Message(message)
        if names is None:
            names = self.columns if self.columns is not None else list(message.columns)
        absent = [n for n in names if n not in message]
        unknown = [n for n in names if n not in self.table.c]
        if absent or unknown:
            raise ValueError(f"cannot write to table '{self.table.name}': " +
                             (f"the message lacks columns {absent}" if absent else
                              f"columns {unknown} are not in the table (its columns: {list(self.table.c.keys())})"))
        for start in range(0, len(message), self.block_size):
            block = message[start:start + self.block_size]
            values = [_column_values(block[n], self.table.c[n].type, n) for n in names]
            yield [dict(zip(names, row)) for row in zip(*values)]

    def insert(self, message: Any) -> int:
        """Insert the rows of ``message`` (a Message, or anything a Message is built from); one
        ``executemany`` per block. Returns the number of rows inserted."""
        count = 0
        for rows in self._rows(message):
            self.connection().execute(sa.insert(self.table), rows)
            count += len(rows)
        return count

    def upsert(self, message: Any) -> int:
        """Insert each row, or update the row with the same primary key (SQLite, PostgreSQL, MySQL and
        MariaDB, with their native statements). Returns the number of rows written."""
        keys = [c.name for c in self.table.primary_key.columns]
        if not keys:
            raise ValueError(f"table '{self.table.name}' has no primary key to upsert on")
        dialect = self.engine.dialect.name
        count = 0
        for rows in self._rows(message):
            missing = [k for k in keys if k not in rows[0]]
            if missing:
                raise ValueError(f"upsert needs the primary key column(s) {missing} in the message")
            others = [n for n in rows[0] if n not in keys]
            if dialect in ("sqlite", "postgresql"):
                module = sqlite if dialect == "sqlite" else postgresql
                stmt = module.insert(self.table)
                stmt = stmt.on_conflict_do_update(index_elements=keys, set_={n: stmt.excluded[n] for n in others}) \
                    if others else stmt.on_conflict_do_nothing(index_elements=keys)
            elif dialect in ("mysql", "mariadb"):
                stmt = mysql.insert(self.table)
                stmt = stmt.on_duplicate_key_update({n: stmt.inserted[n] for n in others or keys[:1]})
            else:
                raise NotImplementedError(f"upsert is not available on {dialect} (SQLite, PostgreSQL, MySQL "
                                          "and MariaDB are)")
            self.connection().execute(stmt, rows)
            count += len(rows)
        return count

    def update(self, where: Any, values: Any) -> int:
        """Update rows; returns the number of rows matched (as the driver reports it).

        ``update(condition, {column: value})`` sets these values in every row matching the condition
        (anything :func:`where_clause` takes). ``update('key', message)`` (or a list of key columns)
        updates, for each row of the message, the table rows whose key columns equal that row's,
        setting its other columns (one ``executemany`` per block).
        """
        if not isinstance(where, (str, list, tuple)):
            if not isinstance(values, Mapping) or not values:
                raise ValueError("update(condition, values) takes a dict {column: value} of values to set")
            unknown = [k for k in values if k not in self.table.c]
            if unknown:
                raise ValueError(f"columns {unknown} are not in table '{self.table.name}'")
            stmt = sa.update(self.table).where(where_clause(self.table, where)).values(
                {k: _value(v, self.table.c[k].type) for k, v in values.items()})
            return self.connection().execute(stmt).rowcount
        keys = [where] if isinstance(where, str) else list(where)
        count = 0
        for rows in self._rows(values, None if self.columns is None else list(dict.fromkeys(keys + self.columns))):
            others = [n for n in rows[0] if n not in keys]
            stmt = sa.update(self.table).where(*[self.table.c[k] == sa.bindparam("_key_" + k) for k in keys]) \
                .values({n: sa.bindparam("_value_" + n) for n in others})
            renamed = [{("_key_" if n in keys else "_value_") + n: v for n, v in row.items()} for row in rows]
            result = self.connection().execute(stmt, renamed)
            count += max(result.rowcount, 0)
        return count

    def delete(self, where: Any, values: Any = None) -> int:
        """Delete the rows matching ``where`` (anything :func:`where_clause` takes, e.g. ``{'id': [1, 2]}``,
        or a column name and its ``values``). Returns the number of rows deleted."""
        stmt = sa.delete(self.table).where(where_clause(self.table, where, values))
        return self.connection().execute(stmt).rowcount

    # ------------------------------------------------------------------ reading
    def query(self, *columns: Any, where: Any = None, order_by: Any = None,
              block_size: int = 10_000) -> DBPipe:
        """A DBPipe over ``SELECT columns FROM table [WHERE where] [ORDER BY order_by]`` read through
        this pipe's connection (columns: names or SQLAlchemy columns; all by default)."""
        selected = [column_of(self.table, c) for c in columns] or [self.table]
        query = sa.select(*selected)
        if where is not None:
            query = query.where(where_clause(self.table, where))
        if order_by is not None:
            order = order_by if isinstance(order_by, (list, tuple)) else [order_by]
            query = query.order_by(*[column_of(self.table, c) for c in order])
        from flambe.pipeline.sql_dataset import DBPipe as Pipe
        return Pipe(self.table, self._engine or self.url, query, block_size, connection=self.connection())

    def __len__(self) -> int:
        """The number of rows in the table, as this pipe's transaction sees it."""
        count = sa.select(sa.func.count()).select_from(self.table)
        return int(self.connection().execute(count).scalar_one())

    # ------------------------------------------------------------------ transactions
    def commit(self) -> None:
        """Commit this pipe's writes (a new transaction begins with the next statement)."""
        if self._conn is not None and not self._conn.closed:
            self._conn.commit()

    def rollback(self) -> None:
        """Discard every write since the last commit."""
        if self._conn is not None and not self._conn.closed:
            self._conn.rollback()

    def close(self) -> None:
        """Close the connection; uncommitted writes are discarded."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "TablePipe":
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.commit()
        self.close()

    def __getstate__(self) -> Dict[str, Any]:
        """A copy refers to the same table and database, with no connection (no open transaction)."""
        return _picklable(self.__dict__, _engine=None, _conn=None, _pid=-1)


def __getattr__(name: str) -> Any:
    """``DBPipe`` lives in :mod:`flambe.pipeline.sql_dataset`; it is importable from here too."""
    if name == "DBPipe":
        from flambe.pipeline.sql_dataset import DBPipe
        return DBPipe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
