"""The results store: an SQLite database (through SQLAlchemy) in the output directory.

It holds every variant with its parameters, status and final metric, and every metric value a
trial reported. Only the driver process writes it (SQLite does not take several writers well); the
report site, ``reduce`` on resume and users read it, e.g. with ``pandas.read_sql``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

RESULTS_FILE = "results.sqlite"


DEFAULT_METRIC_NAME = "metric"


class ResultsStore:
    """Variants and reported metrics of one experiment.

    Parameters
    ----------
    path : str
        The SQLite file (created with its tables if missing).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: List[Tuple[str, Dict[str, Any]]] = []
        # SQLAlchemy takes a moment to import: open the database in the background while the driver
        # starts Ray; the first flush waits for it.
        self._opener = threading.Thread(target=self._open, daemon=True)
        self._opener.start()

    def _open(self) -> None:
        from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, Text, create_engine, event
        path = self.path
        self.engine = create_engine(f"sqlite:///{path}")

        @event.listens_for(self.engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:  # durable enough, and much faster than FULL
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        meta = MetaData()
        self.variants = Table(
            "variants", meta,
            Column("id", String(32), primary_key=True),
            Column("stage", String(200), index=True, nullable=False),
            Column("name", String(200), nullable=False),
            Column("status", String(16), nullable=False),
            Column("params", JSON, nullable=False),
            Column("inherited", JSON, nullable=False),
            Column("parents", JSON, nullable=False),
            Column("metric", Float),
            Column("best_metric", Float),
            Column("calls", Integer, default=0),
            Column("checkpoint", Text),
            Column("log", Text),
            Column("error", Text),
            Column("started", Float),
            Column("finished", Float),
        )
        self.metrics = Table(
            "metrics", meta,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("variant_id", String(32), index=True, nullable=False),
            Column("stage", String(200), nullable=False),
            Column("step", Integer, nullable=False),
            Column("value", Float),
            Column("time", Float, nullable=False),
            Column("name", String(200), nullable=False, server_default=DEFAULT_METRIC_NAME),
        )
        self.stages = Table(
            "stages", meta,
            Column("name", String(200), primary_key=True),
            Column("position", Integer, nullable=False),
            Column("status", String(16), nullable=False),
            Column("lower_is_better", Integer, nullable=False),
            Column("best_variant", String(32)),
            Column("best_metric", Float),
            Column("kept", JSON),
        )
        meta.create_all(self.engine)
        from sqlalchemy import inspect
        if "name" not in {c["name"] for c in inspect(self.engine).get_columns("metrics")}:
            # a results file written before metrics had names (resuming an older run)
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE metrics ADD COLUMN name VARCHAR(200) NOT NULL "
                                     f"DEFAULT '{DEFAULT_METRIC_NAME}'")

    # Writes are queued and committed together by flush(): one transaction per batch of events keeps the
    # driver (which also schedules Tune's trials) fast. The driver flushes at least every second.
    def upsert_variant(self, row: Dict[str, Any]) -> None:
        """Insert or replace one variant row (keys that are not column names are ignored)."""
        self._pending.append(("variant", row))

    def upsert_stage(self, row: Dict[str, Any]) -> None:
        """Insert or replace one stage row."""
        self._pending.append(("stage", row))

    def add_metric(self, variant_id: str, stage: str, step: int, value: Optional[float],
                   name: str = DEFAULT_METRIC_NAME) -> None:
        """Record one reported value; ``name`` tells apart several metrics of one variant (default ``metric``:
        the value of ``metric()`` an experiment reports)."""
        self._pending.append(("metric", {"variant_id": variant_id, "stage": stage, "step": step, "value": value,
                                         "time": time.time(), "name": name}))

    def clear_metrics(self, variant_id: str) -> None:
        """Forget the metrics of a variant that starts over."""
        self._pending.append(("clear", {"variant_id": variant_id}))

    def clear_stage(self, stage: str) -> None:
        """Forget every variant and metric of a stage that starts over."""
        self._pending.append(("clear_stage", {"stage": stage}))

    def flush(self) -> None:
        """Commit every queued write in one transaction."""
        self._opener.join()
        if not self._pending:
            return
        from sqlalchemy.dialects.sqlite import insert
        pending, self._pending = self._pending, []
        with self.engine.begin() as conn:
            for kind, row in pending:
                if kind == "metric":
                    conn.execute(self.metrics.insert().values(**row))
                elif kind == "clear":
                    conn.execute(self.metrics.delete().where(self.metrics.c.variant_id == row["variant_id"]))
                elif kind == "clear_stage":
                    conn.execute(self.metrics.delete().where(self.metrics.c.stage == row["stage"]))
                    conn.execute(self.variants.delete().where(self.variants.c.stage == row["stage"]))
                else:
                    table, key = (self.variants, "id") if kind == "variant" else (self.stages, "name")
                    row = {k: v for k, v in row.items() if k in table.c}
                    statement = insert(table).values(**row)
                    conn.execute(statement.on_conflict_do_update(
                        index_elements=[key], set_={k: statement.excluded[k] for k in row if k != key}))

    def variant_rows(self, stage: Optional[str] = None) -> List[Dict[str, Any]]:
        """Variant rows (of one stage, or all)."""
        self.flush()
        query = self.variants.select()
        if stage is not None:
            query = query.where(self.variants.c.stage == stage)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def metric_history(self, variant_id: str) -> List[Dict[str, Any]]:
        """Every metric a variant reported, in order."""
        self.flush()
        query = self.metrics.select().where(self.metrics.c.variant_id == variant_id).order_by(self.metrics.c.id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def close(self) -> None:
        """Commit what is queued and release the database connections."""
        self.flush()
        self.engine.dispose()
