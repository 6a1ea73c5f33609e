"""Reading SQL: :class:`DBPipe` (the rows of a query, in blocks of Messages) and :class:`SQLDataset` (a
table or query split into train/val/test and featurized like a :class:`~flambe.dataset.TabularDataset`)."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import sqlalchemy as sa
import torch
from sqlalchemy.engine import Connection, Engine

from flambe.compile import Component
from flambe.dataset.tabular import SPLITS, TabularDataset, _AutogenSplit
from flambe.field import Field
from flambe.pipeline.database import (
    INHERITED,
    MAGIC,
    OPERATORS,
    TensorType,
    _picklable,
    column_of,
    decode_column,
    engine_url,
    get_engine,
    is_sqlite_file,
    reflect_table,
    where_clause,
)
from flambe.pipeline.message import Message

__all__ = ["DBPipe", "SQLDataset"]


# ---------------------------------------------------------------------------------------------- DBPipe
class DBPipe(Component):
    """The rows of a query, read in blocks: iterating yields Messages of up to ``block_size`` rows.

    Each block is one ``fetchmany`` of a streamed result (a server-side cursor where the driver has
    one) turned into one DataFrame; tensor columns (:class:`TensorType`, or binary columns whose
    values all carry the tensor header) come back as tensors. Iteration keeps its position: after a
    full pass, ``iter()`` starts a new one; a pickled copy, or a pipe whose state was loaded, goes on
    from its position (via OFFSET, so give the query an ORDER BY when the order matters). Pickling
    keeps the URL and the query, never the engine or a connection; in a forked process (a DataLoader
    worker) the pipe reconnects from the URL and leaves the parent's connections alone.

    Parameters
    ----------
    table : Table or str, optional
        The table (a name is reflected), for the default query ``SELECT * FROM table``.
    engine : Engine or str
        The database (an Engine or a URL).
    query : sqlalchemy.Select or str, optional
        The query (a SQL string is wrapped as a subquery, ``SELECT * FROM (query)``).
    block_size : int
        The most rows per Message.
    connection : Connection, optional
        An open connection to read through (a :class:`TablePipe`'s, so that its uncommitted writes are
        seen); it is not pickled, and results on it are not streamed.
    """

    def __init__(self, table: Union[sa.Table, str, None], engine: Union[Engine, str], query: Any = None,
                 block_size: int = 10_000, connection: Optional[Connection] = None) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.url = engine_url(engine)
        self._engine: Optional[Engine] = engine if isinstance(engine, Engine) else None
        self._pid = os.getpid()
        self.table = reflect_table(table, self.engine) if isinstance(table, str) else table
        if query is None:
            if self.table is None:
                raise ValueError("DBPipe needs a table or a query")
            query = sa.select(self.table)
        elif isinstance(query, str):
            query = sa.select(sa.literal_column("*")).select_from(sa.text(f"({query}) AS _flambe_query"))
        self.query = query
        self.block_size = int(block_size)
        self._shared = connection
        self.position = 0
        self._connection: Optional[Connection] = None
        self._result: Any = None
        self._exhausted = False

    @property
    def engine(self) -> Engine:
        """The engine (rebuilt from the URL after unpickling)."""
        self._after_fork()
        if self._engine is None:
            self._engine = get_engine(self.url)
        return self._engine

    def _after_fork(self) -> None:
        """In a forked process (e.g. a DataLoader worker), leave the parent's engine and connections
        untouched (closing them would close the parent's) and reconnect from the URL."""
        if self._pid != os.getpid():
            INHERITED.extend(x for x in (self._engine, self._shared, self._connection, self._result) if x is not None)
            self._engine = self._shared = self._connection = self._result = None
            self._pid = os.getpid()

    def _with_connection(self, fn: Any) -> Any:
        self._after_fork()
        if self._shared is not None and not self._shared.closed:
            return fn(self._shared)
        with self.engine.connect() as connection:
            return fn(connection)

    def _tensor_columns(self, keys: List[str]) -> set:
        try:
            columns = self.query.selected_columns
        except AttributeError:  # pragma: no cover - not a Select
            return set()
        return {c.key for c in columns if isinstance(c.type, TensorType) and c.key in keys}

    def _message(self, keys: List[str], rows: Sequence[Any]) -> Message:
        # Plain tuples take pandas' fast path (Row objects make it probe every row's attributes).
        frame = pd.DataFrame.from_records(list(map(tuple, rows)), columns=keys, coerce_float=True) if rows else \
            pd.DataFrame({k: pd.Series(dtype=object) for k in keys})
        tensors = self._tensor_columns(keys)
        for key in keys:  # binary columns of encoded tensors (a reflected table)
            if key not in tensors and frame[key].dtype == object and len(frame):
                first = frame[key].iloc[0]
                if isinstance(first, (bytes, memoryview)) and bytes(first[:len(MAGIC)]) == MAGIC and all(
                        v is None or bytes(v[:len(MAGIC)]) == MAGIC for v in frame[key].tolist()):
                    tensors.add(key)
        if not tensors:
            return Message(frame)
        data: Dict[str, Any] = {}
        for key in keys:
            if key in tensors and len(frame):
                decoded = decode_column(frame[key].tolist())
                data[key] = decoded if isinstance(decoded, torch.Tensor) else pd.Series(decoded, dtype=object)
            else:
                data[key] = frame[key]
        return Message(data)

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[Message]:
        if self._exhausted:
            self.reset()
        return self

    def __next__(self) -> Message:
        if self._exhausted:
            raise StopIteration
        self._after_fork()
        if self._result is None:
            query = self.query.offset(self.position) if self.position else self.query
            if self._shared is not None and not self._shared.closed:
                self._result = self._shared.execute(query)
            else:
                self._connection = self.engine.connect()
                self._result = self._connection.execution_options(yield_per=self.block_size).execute(query)
        rows = self._result.fetchmany(self.block_size)
        if not rows:
            self._close()
            self._exhausted = True
            raise StopIteration
        self.position += len(rows)
        return self._message(list(self._result.keys()), rows)

    def _close(self) -> None:
        if self._result is not None:
            self._result.close()
        if self._connection is not None:
            self._connection.close()
        self._result = self._connection = None

    def reset(self) -> "DBPipe":
        """Go back to the first row: the next block re-runs the query."""
        self._close()
        self.position, self._exhausted = 0, False
        return self

    # ------------------------------------------------------------------ whole-query reads
    def all(self) -> Message:
        """Every row of the query as one Message."""
        def read(connection: Connection) -> Message:
            result = connection.execute(self.query)
            return self._message(list(result.keys()), result.fetchall())
        return self._with_connection(read)

    def __len__(self) -> int:
        """The number of rows of the query (``SELECT COUNT(*)``)."""
        count = sa.select(sa.func.count()).select_from(self.query.subquery())
        return int(self._with_connection(lambda c: c.execute(count).scalar_one()))

    def __getitem__(self, index: Any) -> Message:
        """Row ``index`` as a 1-row Message, the rows of a slice, or the rows of a list/array/tensor of
        positions in that order (LIMIT/OFFSET; these replace any LIMIT/OFFSET of the query). A list of
        positions reads the one range that covers them, so keep such requests local (a batch)."""
        if isinstance(index, slice):
            start, stop, step = index.start, index.stop, index.step or 1
            if (start is not None and start < 0) or (stop is not None and stop < 0) or step < 0:
                start, stop, step = index.indices(len(self))
            start = start or 0
            if step < 0:
                rows = range(start, stop, step)
                return self[min(rows):max(rows) + 1][::-1][::-step] if len(rows) else self[0:0]
            query = self.query.offset(start)
            if stop is not None:
                query = query.limit(max(stop - start, 0))
            message = self._read(query)
            return message if step == 1 else message[::step]
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64)
            if rows.size == 0:
                return self[0:0]
            if rows.min() < 0:
                rows = np.where(rows < 0, rows + len(self), rows)
            low = int(rows.min())
            covering = self[low:int(rows.max()) + 1]
            if int(rows.max()) - low >= len(covering) or low < 0:
                raise IndexError(f"rows {rows.tolist()} are out of range for this query")
            return covering[rows - low]
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"DBPipe indices are ints, slices or lists of ints, got {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += len(self)
        message = self._read(self.query.offset(max(index, 0)).limit(1)) if index >= 0 else None
        if message is None or len(message) == 0:
            raise IndexError(f"row {index} is out of range for this query")
        return message

    def _read(self, query: Any) -> Message:
        def read(connection: Connection) -> Message:
            result = connection.execute(query)
            return self._message(list(result.keys()), result.fetchall())
        return self._with_connection(read)

    # ------------------------------------------------------------------ derived pipes
    def filter(self, where: Any = None, predicate: Optional[str] = None, *args: Any, **equals: Any) -> "DBPipe":
        """A new DBPipe whose query has one more WHERE condition.

        ``filter(expression)``, ``filter({'a': 1})`` or ``filter(a=1)`` (see :func:`where_clause`), or
        ``filter('a', '>', 3)`` / ``filter('a', 'in_', [1, 2])`` (an operator or a column method name).
        """
        if predicate is not None:
            column = column_of(self.query, where)
            method = getattr(column, OPERATORS.get(predicate, predicate), None)
            if method is None:
                raise ValueError(f"unknown predicate '{predicate}' (an operator {sorted(OPERATORS)} or a "
                                 "column method such as 'in_', 'like', 'between')")
            condition = method(*args)
        elif where is None or isinstance(where, Mapping):
            condition = where_clause(self.query, {**(where or {}), **equals})
        else:
            condition = where
        return DBPipe(self.table, self._engine or self.url, self.query.where(condition), self.block_size,
                      connection=self._shared)

    # ------------------------------------------------------------------ pickling and state
    def __getstate__(self) -> Dict[str, Any]:
        if self.url.startswith("sqlite") and not is_sqlite_file(sa.make_url(self.url)):
            raise ValueError("a DBPipe on an in-memory SQLite database cannot be copied to another process")
        return _picklable(self.__dict__, _engine=None, _shared=None, _connection=None, _result=None, _pid=-1)

    def _state(self, state_dict: Any, prefix: str, local_metadata: Dict[str, Any]) -> Any:
        state_dict[prefix + "position"] = self.position
        return state_dict

    def _load_state(self, state_dict: Any, prefix: str, local_metadata: Dict[str, Any], strict: bool,
                    missing_keys: List[str], unexpected_keys: List[str], error_msgs: List[str]) -> None:
        if prefix + "position" in state_dict:
            self._close()
            self.position, self._exhausted = int(state_dict[prefix + "position"]), False




# ---------------------------------------------------------------------------------------------- SQLDataset
def _object_table(message: Message, names: Sequence[str]) -> np.ndarray:
    """The columns ``names`` of ``message`` as a 2-D object array (tensor columns as per-row tensors)."""
    table = np.empty((len(message), len(names)), dtype=object)
    for j, name in enumerate(names):
        column = message[name]
        if isinstance(column, torch.Tensor):
            table[:, j] = np.fromiter(column.unbind(0), dtype=object, count=len(message))
        else:
            table[:, j] = column.to_numpy(dtype=object)
    return table


class SQLDataset(TabularDataset):
    """A TabularDataset read from a database table or query (``!SQLDataset`` in YAML).

    The rows are fetched once, in blocks, when the dataset is built. They are split by ``split_column``
    (a column holding ``'train'``, ``'val'`` or ``'test'``) or else by a seeded shuffle: ``test_ratio``
    of the rows are the test split, then ``val_ratio`` of the rest the validation split, each split
    keeping the query's row order (the split of :meth:`TabularDataset.autogen`). A table is read in
    primary-key order, so the split depends only on the data and the seed; give a query an ORDER BY
    for the same guarantee. Fields apply as in :class:`TabularDataset` (columns may be named).

    Parameters
    ----------
    url : str
        The database URL (e.g. ``sqlite:///data.db``, ``postgresql+psycopg://user@host/db``).
    table : str, optional
        The table to read (every column but ``split_column``, unless ``columns`` says otherwise).
    query : str, optional
        A SQL query to read instead of a whole table.
    columns : Sequence[str], optional
        The columns of the examples, in order (default: all the query's columns but ``split_column``).
    transform : Dict[str, Union[Field, Dict]], optional
        The fields, as for :class:`TabularDataset`.
    val_ratio, test_ratio : float
        The shares of the validation and test splits (in [0, 1)), without ``split_column``.
    seed : int
        The seed of the shuffle that splits the rows.
    split_column : str, optional
        A column naming each row's split.
    cache : bool
        Process each split once, on first access, and keep the results.
    """

    def __init__(self, url: str, table: Optional[str] = None, query: Optional[str] = None,
                 columns: Optional[Sequence[str]] = None,
                 transform: Optional[Dict[str, Union[Field, Dict]]] = None, val_ratio: float = 0.1,
                 test_ratio: float = 0.1, seed: int = 0, split_column: Optional[str] = None,
                 cache: bool = True) -> None:
        if table is None and query is None:
            raise ValueError("SQLDataset needs a table or a query")
        for name, ratio in (("test_ratio", test_ratio), ("val_ratio", val_ratio)):
            if not 0.0 <= ratio < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {ratio}")
        pipe = DBPipe(table, url, query=query)
        if query is None and len(pipe.table.primary_key.columns):
            pipe = DBPipe(pipe.table, url, pipe.query.order_by(*pipe.table.primary_key.columns))
        message = pipe.all()
        names = list(columns) if columns is not None else [c for c in message.columns if c != split_column]
        missing = [c for c in names + ([split_column] if split_column else []) if c not in message]
        if missing:
            raise ValueError(f"columns {missing} are not in the query's columns {message.columns}")
        data = _object_table(message, names)
        plan = None
        if split_column is not None:
            labels = np.asarray([str(v) for v in _object_table(message, [split_column])[:, 0]])
            unknown = sorted(set(labels.tolist()) - set(SPLITS))
            if unknown:
                raise ValueError(f"split column '{split_column}' holds {unknown}; use {list(SPLITS)}")
            splits = [data[labels == split] for split in SPLITS]
        else:
            plan = _AutogenSplit(data, None, int(seed), float(test_ratio), float(val_ratio))
            splits = list(plan.split())
        self.url, self.query, self.split_column = engine_url(url), query, split_column
        super().__init__(*splits, cache=cache, named_columns=names, transform=transform)
        self._autogen = plan

    @classmethod
    def from_path(cls, *args: Any, **kwargs: Any) -> "SQLDataset":
        """Not for SQLDataset (it reads a database): use ``TabularDataset.from_path`` for files."""
        raise TypeError("SQLDataset reads a database: build it as SQLDataset(url, table=... or query=...); "
                        "TabularDataset.from_path and TabularDataset.autogen read files")

    autogen = from_path
