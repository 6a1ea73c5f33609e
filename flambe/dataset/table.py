"""Reading tables of examples: rows to 2-D object arrays, and delimited files (pandas) to rows."""

from __future__ import annotations

import csv
import os
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

Columns = Optional[Union[Sequence[str], Sequence[int]]]


def as_table(rows: Any, name: str = "data") -> np.ndarray:
    """``rows`` (a 2-D array, or a sequence of equally long rows) as a 2-D numpy object array.

    A 1-D array, or a sequence of scalars, is one column.

    Raises
    ------
    ValueError
        If the rows do not all have the same length, or the array has more than 2 dimensions.
    """
    if isinstance(rows, np.ndarray):
        if rows.ndim == 1:
            rows = rows.reshape(-1, 1)
        if rows.ndim != 2:
            raise ValueError(f"{name} must be 2-D (examples x columns), got shape {rows.shape}")
        return rows if rows.dtype == object else rows.astype(object)
    if hasattr(rows, "to_numpy"):  # a pandas DataFrame
        return as_table(rows.to_numpy(dtype=object), name)
    rows = list(rows)
    if not rows:
        return np.empty((0, 0), dtype=object)
    if all(isinstance(r, (str, bytes)) or not hasattr(r, "__len__") for r in rows):
        table = np.empty((len(rows), 1), dtype=object)
        table[:, 0] = rows
        return table
    width = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise ValueError(f"{name} row {bad} has {len(rows[bad])} columns; row 0 has {width}")
    table = np.empty((len(rows), width), dtype=object)
    for j in range(width):
        column = [r[j] for r in rows]
        if any(isinstance(v, (list, tuple, np.ndarray)) for v in column):
            for i, value in enumerate(column):  # cells that are sequences stay single cells
                table[i, j] = value
        else:
            table[:, j] = column
    return table


def _numeric(values: List[str]) -> List[Any]:
    """The values as ints or floats when every one of them is a number (as pandas would read them)."""
    import pandas as pd
    try:
        converted = pd.to_numeric(pd.Series(values, dtype=object), errors="raise")
    except (ValueError, TypeError):
        return values
    return converted.tolist()


def _read_first_space(path: str, header: Any, encoding: str) -> Tuple[np.ndarray, Optional[List[str]]]:
    """Lines ``<first field> <rest of the line>`` as two columns (the Kim 2014 SST and TREC files)."""
    with open(path, encoding=encoding) as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    names = None
    if header == 0 and header is not False:
        names = lines[0].split(maxsplit=1)
        lines = lines[1:]
    elif header is not None and header != "infer":
        raise ValueError(f"With sep=None, header must be None, 'infer' (no header) or 0, got {header!r}")
    firsts: List[Any] = []
    rests: List[Any] = []
    for line in lines:
        parts = line.split(maxsplit=1)
        firsts.append(parts[0])
        rests.append(parts[1] if len(parts) > 1 else "")
    table = np.empty((len(lines), 2), dtype=object)
    if lines:
        table[:, 0] = _numeric(firsts)
        table[:, 1] = _numeric(rests)
    return table, names


def _read_delimited(path: str, sep: str, header: Any, encoding: str) -> Tuple[np.ndarray, Optional[List[str]]]:
    import pandas as pd
    frame = pd.read_csv(path, sep=sep, header=header, encoding=encoding, keep_default_na=False,
                        na_filter=False, quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
                        engine="python" if len(sep) > 1 else "c")
    names = [str(c) for c in frame.columns] if header is not None else None
    return frame.to_numpy(dtype=object), names


def _select(table: np.ndarray, names: Optional[List[str]], columns: Columns,
            path: str) -> Tuple[np.ndarray, Optional[List[str]]]:
    if columns is None:
        return table, names
    indices: List[int] = []
    for column in columns:
        if isinstance(column, str):
            if names is None or column not in names:
                raise ValueError(f"Column '{column}' is not in '{path}' (its columns: {names})")
            indices.append(names.index(column))
        else:
            if not -table.shape[1] <= int(column) < table.shape[1]:
                raise ValueError(f"Column {column} is out of range: '{path}' has {table.shape[1]} columns")
            indices.append(int(column) % table.shape[1])
    return table[:, indices], ([names[i] for i in indices] if names is not None else None)


def read_file(path: str, sep: Optional[str] = "\t", header: Any = "infer", columns: Columns = None,
              encoding: str = "utf-8") -> Tuple[np.ndarray, Optional[List[str]]]:
    """Read one delimited file into a 2-D object array and its column names (None without a header).

    ``sep=None`` splits each line on its first whitespace into two columns; otherwise pandas
    ``read_csv`` reads the file (with ``sep='\\t'``, quote characters are ordinary characters).
    Empty cells stay empty strings.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be decoded with ``encoding``, or a column is unknown.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Data file '{path}' does not exist")
    try:
        if sep is None:
            table, names = _read_first_space(path, header, encoding)
        else:
            table, names = _read_delimited(path, sep, header, encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"'{path}' is not valid {encoding} ({err.reason} at byte {err.start}); "
                         f"pass the file's encoding, e.g. encoding='latin-1'") from None
    return _select(table, names, columns, path)


def read_path(path: str, sep: Optional[str] = "\t", header: Any = "infer", columns: Columns = None,
              encoding: str = "utf-8") -> Tuple[np.ndarray, Optional[List[str]]]:
    """Like :func:`read_file`; a directory means all its files (sorted by name, hidden ones skipped),
    concatenated. The column names are the first file's."""
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        return read_file(path, sep, header, columns, encoding)
    files = sorted(f for f in os.listdir(path) if not f.startswith(".") and os.path.isfile(os.path.join(path, f)))
    if not files:
        raise ValueError(f"Data directory '{path}' has no files")
    parts = [read_file(os.path.join(path, f), sep, header, columns, encoding) for f in files]
    widths = {table.shape[1] for table, _ in parts}
    if len(widths) > 1:
        raise ValueError(f"The files of '{path}' have different numbers of columns: {sorted(widths)}")
    return np.concatenate([table for table, _ in parts], axis=0), parts[0][1]
