"""Benchmark: rows per second read from SQLite through ``DBPipe`` versus ``pandas.read_sql``.

Data: a 1,000,000-row SQLite table ``(id INTEGER PRIMARY KEY, n BIGINT, x DOUBLE, s TEXT)`` in a temporary
file, built with a fixed seed. Both sides read ``SELECT id, n, x, s FROM bench`` through the same
SQLAlchemy engine in this process: the baseline is ``pandas.read_sql(query, engine)`` (one DataFrame);
flambe's side iterates ``DBPipe(table, engine)`` (Messages of 10,000 rows, the default block size) and
touches every block. The runs alternate, RUNS of each after one warm-up each; the ratio compares the
medians. (Fireworks' reader, one Message per row, managed about 1.3k rows/s.)

Target: median rows/second of DBPipe >= 0.25 x pandas.read_sql's. Correctness: the blocks, concatenated,
hold the same values as the pandas frame.

Run: ``.venv/bin/python tests/benchmarks/bench_dbpipe.py [--runs N] [--rows N]``. Exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import sys
import tempfile
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from benchlib import conclude

from flambe.pipeline.database import DBPipe, create_table, get_engine, reflect_table

NAME = "dbpipe"
TARGET_RATIO = 0.25
RUNS = 3
QUERY = "SELECT id, n, x, s FROM bench"


def make_table(path: str, n: int, seed: int = 0) -> None:
    """Write ``n`` seeded rows of (int, float, text) into the table ``bench`` of the SQLite file."""
    create_table("bench", {"n": "int", "x": "float", "s": "text"}, engine=f"sqlite:///{path}")
    rng = np.random.default_rng(seed)
    ints = rng.integers(0, 1_000_000, n).tolist()
    floats = rng.random(n).tolist()
    words = [f"word{i % 5000}" for i in rng.integers(0, 1_000_000, n).tolist()]
    with sqlite3.connect(path) as connection:
        connection.executemany("INSERT INTO bench (n, x, s) VALUES (?, ?, ?)", zip(ints, floats, words))


def run_pandas(engine: sa.Engine) -> Tuple[int, float]:
    gc.collect()
    start = time.perf_counter()
    frame = pd.read_sql(QUERY, engine)
    elapsed = time.perf_counter() - start
    return len(frame), elapsed


def run_flambe(engine: sa.Engine) -> Tuple[int, float]:
    gc.collect()
    start = time.perf_counter()
    rows = 0
    for block in DBPipe("bench", engine):
        rows += len(block["n"])
    elapsed = time.perf_counter() - start
    return rows, elapsed


def same_values(engine: sa.Engine) -> Optional[str]:
    """None when DBPipe's blocks hold the values pandas reads, else what differs."""
    frame = pd.read_sql(QUERY + " ORDER BY id", engine)
    table = reflect_table("bench", engine)
    pipe = DBPipe(table, engine, sa.select(table).order_by(table.c.id))
    blocks: List[Any] = [block.dataframe() for block in pipe]
    ours = pd.concat(blocks, ignore_index=True)
    for column in frame.columns:
        if not np.array_equal(ours[column].to_numpy(), frame[column].to_numpy()):
            return f"column {column} differs"
    return None if len(ours) == len(frame) else f"{len(ours)} rows, pandas read {len(frame)}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each side (default {RUNS})")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default 1000000)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bench.db")
        start = time.perf_counter()
        make_table(path, args.rows)
        engine = get_engine(f"sqlite:///{path}")
        print(f"{args.rows} rows (int, float, text) written in {time.perf_counter() - start:.1f}s; "
              f"pandas {pd.__version__}, SQLAlchemy {sa.__version__}")
        problem = same_values(engine)
        if problem:
            print(f"WRONG: {problem}")
        run_pandas(engine)
        run_flambe(engine)
        base_rates: List[float] = []
        ours_rates: List[float] = []
        for i in range(args.runs):
            n_base, t_base = run_pandas(engine)
            n_ours, t_ours = run_flambe(engine)
            if n_base != n_ours:
                problem = problem or f"DBPipe read {n_ours} rows, pandas {n_base}"
            base_rates.append(n_base / t_base)
            ours_rates.append(n_ours / t_ours)
            print(f"  run {i + 1}: pandas.read_sql {base_rates[-1]:10.0f} rows/s   "
                  f"DBPipe {ours_rates[-1]:10.0f} rows/s")
        engine.dispose()

    return conclude(NAME, base_rates, ours_rates, TARGET_RATIO, problem, "pandas.read_sql", "DBPipe", "rows/s",
                    keys=("baseline_rows_per_s", "flambe_rows_per_s"))


if __name__ == "__main__":
    sys.exit(main())
