"""TabularDataset: rows of columns, split into train/val/test, featurized by named fields."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from flambe.compile import Schema, registrable_factory
from flambe.dataset.dataset import Dataset
from flambe.dataset.table import Columns, as_table, read_path
from flambe.dataset.view import DataView
from flambe.field import Field

SPLITS = ("train", "val", "test")


class _AutogenSplit:
    """How :meth:`TabularDataset.autogen` split its data, so a reload can repeat the same split."""

    def __init__(self, data: np.ndarray, test: Optional[np.ndarray], seed: int, test_ratio: float,
                 val_ratio: float) -> None:
        self.data, self.test, self.seed = data, test, seed
        self.test_ratio, self.val_ratio = test_ratio, val_ratio

    def split(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(train, val, test)``: a seeded permutation cut into test, then val out of the rest.

        Each split keeps the rows in their original order.
        """
        order = np.random.default_rng(self.seed).permutation(len(self.data))
        test = self.test
        if test is None:
            n_test = int(len(order) * self.test_ratio + 1e-9)
            test = self.data[np.sort(order[:n_test])]
            order = order[n_test:]
        n_val = int(len(order) * self.val_ratio + 1e-9)
        return self.data[np.sort(order[n_val:])], self.data[np.sort(order[:n_val])], test


def _record_factory(obj: Any, name: str, kwargs: Dict[str, Any]) -> None:
    """Make ``obj`` dump (and save) as the factory call that built it, when built from Python.

    An object built from YAML already has its schema (the builder sets it after the factory returns).
    """
    if getattr(obj, "_flambe_schema", None) is not None:
        return
    schema = Schema(type(obj), name, **kwargs)
    schema._built = obj
    schema._compiled = dict(kwargs)
    object.__setattr__(obj, "_flambe_schema", schema)


class TabularDataset(Dataset):
    """Tabular data (rows of columns, as read from csv/tsv files), featurized by named fields.

    The splits are stored as 2-D numpy object arrays. Each key of ``transform`` becomes an attribute
    holding its field (``dataset.text.vocab_size``), and every field is set up on the values of its
    columns in all splits when the dataset is built. ``train``/``val``/``test`` are :class:`DataView`
    s whose item ``i`` is the tuple of the fields' outputs for row ``i``, in transform order (rows
    converted to tensors where numeric when there is no transform). The dataset itself is a sequence
    chaining train, val and test.

    Parameters
    ----------
    train : Iterable[Iterable]
        The training rows (a 2-D array, or a sequence of equally long rows).
    val, test : Iterable[Iterable], optional
        The validation and test rows (same columns).
    cache : bool
        Process each split once, on first access, and keep the results.
    named_columns : List[str], optional
        Names of the columns, usable in ``{columns: ..., field: ...}`` transforms.
    transform : Dict[str, Union[Field, Dict]], optional
        ``name -> field`` (the i-th field reads the i-th column), or
        ``name -> {columns: int | str | [int | str], field: field}`` (the field reads these columns, and
        its ``process`` receives one value per column).

    Raises
    ------
    ValueError
        For splits of different widths, bad column references, or a transform name that clashes with
        an attribute of the dataset.
    """

    def __init__(self, train: Iterable[Iterable], val: Optional[Iterable[Iterable]] = None,
                 test: Optional[Iterable[Iterable]] = None, cache: bool = True,
                 named_columns: Optional[List[str]] = None,
                 transform: Optional[Dict[str, Union[Field, Dict]]] = None) -> None:
        tables = [as_table(split, name) if split is not None else None
                  for split, name in zip((train, val, test), SPLITS)]
        widths = {t.shape[1] for t in tables if t is not None and len(t)}
        if len(widths) > 1:
            raise ValueError(f"The splits have different numbers of columns: {sorted(widths)}")
        width = widths.pop() if widths else (tables[0].shape[1] if tables[0] is not None else 0)
        tables = [t if t is not None and len(t) else np.empty((0, width), dtype=object) for t in tables]
        self._train, self._val, self._test = tables
        self._width = width
        if named_columns is not None and len(named_columns) != width:
            raise ValueError(f"named_columns has {len(named_columns)} names for {width} columns")
        self.cache = cache
        self.named_columns = list(named_columns) if named_columns is not None else None
        self.transform = dict(transform) if transform else {}
        self._autogen: Optional[_AutogenSplit] = None
        self._hooks = self._set_transforms(self.transform)
        self._views = self._make_views()
        # A dataset built from in-memory rows saves them as arrays (pickled beside the config), not as
        # thousands of YAML lines.
        recorded = self.__dict__.get("_flambe_init_args")
        if recorded:
            for name, table in zip(SPLITS, tables):
                if isinstance(recorded.get(name), (list, tuple)):
                    recorded[name] = table

    # ------------------------------------------------------------------ transforms
    def _columns_of(self, name: str, columns: Any) -> List[int]:
        items = columns if isinstance(columns, (list, tuple)) else [columns]
        if not items:
            raise ValueError(f"transform '{name}' names no columns")
        out = []
        for column in items:
            if isinstance(column, str):
                if self.named_columns is None or column not in self.named_columns:
                    raise ValueError(f"transform '{name}' reads column '{column}', which is not among the "
                                     f"named columns {self.named_columns}")
                out.append(self.named_columns.index(column))
            elif isinstance(column, (int, np.integer)) and not isinstance(column, bool):
                if not -self._width <= column < self._width:
                    raise ValueError(f"transform '{name}' reads column {column}; the data has {self._width}")
                out.append(int(column) % self._width)
            else:
                raise ValueError(f"transform '{name}': a column is an int or a name, got {column!r}")
        return out

    def _set_transforms(self, transform: Dict[str, Union[Field, Dict]]) -> List[Tuple[Field, List[int]]]:
        """Set each field as an attribute named by its key, set it up on its columns, and return the hooks
        ``(field, columns)`` the views apply."""
        hooks: List[Tuple[Field, List[int]]] = []
        for position, (name, value) in enumerate(transform.items()):
            if isinstance(value, Field):
                field, columns = value, position
            elif isinstance(value, Mapping):
                unknown = set(value) - {"field", "columns"}
                if "field" not in value or unknown:
                    raise ValueError(f"transform '{name}' must be a Field or {{columns: ..., field: ...}}, "
                                     f"got keys {sorted(value)}")
                field, columns = value["field"], value.get("columns", position)
                if not isinstance(field, Field):
                    raise ValueError(f"transform '{name}': 'field' must be a Field, got {type(field).__name__}")
            else:
                raise ValueError(f"transform '{name}' must be a Field or {{columns: ..., field: ...}}, "
                                 f"got {type(value).__name__}")
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_") \
                    or hasattr(type(self), name) or name in self.__dict__:
                raise ValueError(f"transform name '{name}' cannot be an attribute of {type(self).__name__}: "
                                 "use an identifier that is not already an attribute")
            cols = self._columns_of(name, columns)
            field.setup(*[split[:, cols[0]] if len(cols) == 1 else split[:, cols]
                          for split in (self._train, self._val, self._test) if len(split)])
            setattr(self, name, field)
            hooks.append((field, cols))
        return hooks

    def _make_views(self) -> Dict[str, DataView]:
        return {name: DataView(table, self._hooks, self.cache)
                for name, table in zip(SPLITS, (self._train, self._val, self._test))}

    # ------------------------------------------------------------------ splits
    @property
    def train(self) -> DataView:
        """The training examples."""
        return self._views["train"]

    @property
    def val(self) -> DataView:
        """The validation examples."""
        return self._views["val"]

    @property
    def test(self) -> DataView:
        """The test examples."""
        return self._views["test"]

    @property
    def raw(self) -> np.ndarray:
        """All rows (train, val, test in that order) as one 2-D object array."""
        return np.concatenate([self._train, self._val, self._test], axis=0)

    @property
    def cols(self) -> int:
        """The number of columns."""
        return self._width

    def __len__(self) -> int:
        return len(self._train) + len(self._val) + len(self._test)

    def __iter__(self) -> Iterator[Tuple[Any, ...]]:
        for view in self._views.values():
            yield from view

    def __getitem__(self, index: Any) -> Any:
        """The processed example at ``index`` of train + val + test (a list of them for a slice)."""
        total = len(self)
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(total))]
        if not -total <= index < total:
            raise IndexError(f"index {index} is out of range for {total} examples")
        index = int(index) % total
        for view in self._views.values():
            if index < len(view):
                return view[index]
            index -= len(view)
        raise IndexError(index)  # unreachable: the range was checked

    # ------------------------------------------------------------------ state
    def _state(self, state_dict: Any, prefix: str, local_metadata: Dict[str, Any]) -> Any:
        if self._autogen is not None:
            state_dict[prefix + "autogen_seed"] = self._autogen.seed
        return state_dict

    def _load_state(self, state_dict: Any, prefix: str, local_metadata: Dict[str, Any], strict: bool,
                    missing_keys: List[str], unexpected_keys: List[str], error_msgs: List[str]) -> None:
        seed = state_dict.get(prefix + "autogen_seed")
        if seed is not None and self._autogen is not None and int(seed) != self._autogen.seed:
            self._autogen.seed = int(seed)
            self._train, self._val, self._test = self._autogen.split()
            self._views = self._make_views()
        for view in self._views.values():
            view.clear_cache()  # the fields' vocabularies are being replaced

    # ------------------------------------------------------------------ factories
    @classmethod
    def _load_file(cls, path: str, sep: Optional[str] = "\t", header: Optional[str] = "infer",
                   columns: Columns = None,
                   encoding: Optional[str] = "utf-8") -> Tuple[np.ndarray, Optional[List[str]]]:
        """Load the rows at ``path`` (a file, or a directory whose files are concatenated).

        ``sep=None`` splits each line on its first whitespace into two columns (``<label> <text>``
        files); otherwise pandas ``read_csv`` reads it (see :func:`flambe.dataset.table.read_file`).

        Returns
        -------
        Tuple[np.ndarray, Optional[List[str]]]
            The rows, and the column names (None when the file has no header).
        """
        return read_path(path, sep, header, columns, encoding or "utf-8")

    @registrable_factory
    @classmethod
    def from_path(cls, train_path: str, val_path: Optional[str] = None, test_path: Optional[str] = None,
                  sep: Optional[str] = "\t", header: Optional[str] = "infer", columns: Columns = None,
                  encoding: Optional[str] = "utf-8",
                  transform: Optional[Dict[str, Union[Field, Dict]]] = None) -> "TabularDataset":
        """Load a TabularDataset from files (``!TabularDataset.from_path`` in YAML).

        Parameters
        ----------
        train_path, val_path, test_path : str
            Files, or directories whose files are concatenated.
        sep : str, optional
            The ``read_csv`` separator (``'\\t'``); None splits lines on their first whitespace.
        header : Optional[Union[str, int]]
            0 for a header line, None for none, ``'infer'`` to let pandas decide (with ``sep=None``,
            ``'infer'`` means no header).
        columns : List[str] or List[int], optional
            The columns to keep, in this order.
        encoding : str
            The files' encoding (e.g. ``'latin-1'``).
        transform : Dict[str, Union[Field, Dict]], optional
            The fields, as for the constructor.
        """
        args = dict(train_path=train_path, val_path=val_path, test_path=test_path, sep=sep, header=header,
                    columns=columns, encoding=encoding, transform=transform)
        train, names = cls._load_file(train_path, sep, header, columns, encoding)
        val = cls._load_file(val_path, sep, header, columns, encoding)[0] if val_path else None
        test = cls._load_file(test_path, sep, header, columns, encoding)[0] if test_path else None
        dataset = cls(train, val, test, named_columns=names, transform=transform)
        _record_factory(dataset, "from_path", args)
        return dataset

    @registrable_factory
    @classmethod
    def autogen(cls, data_path: str, test_path: Optional[str] = None, seed: Optional[int] = None,
                test_ratio: Optional[float] = 0.2, val_ratio: Optional[float] = 0.2,
                sep: Optional[str] = "\t", header: Optional[str] = "infer", columns: Columns = None,
                encoding: Optional[str] = "utf-8",
                transform: Optional[Dict[str, Union[Field, Dict]]] = None) -> "TabularDataset":
        """Load one file and split it into train, val and test (``!TabularDataset.autogen``).

        The rows are shuffled with ``seed``; the first ``test_ratio`` of them are the test split
        (unless ``test_path`` gives it), then ``val_ratio`` of the rest are the validation split.
        Each split keeps the file's row order. Without a seed one is drawn; it is saved with the
        dataset, so a saved dataset reloads with the same split.

        Other parameters are those of :meth:`from_path`.
        """
        for name, ratio in (("test_ratio", test_ratio), ("val_ratio", val_ratio)):
            if ratio is None or not 0.0 <= ratio < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {ratio}")
        args = dict(data_path=data_path, test_path=test_path, seed=seed, test_ratio=test_ratio,
                    val_ratio=val_ratio, sep=sep, header=header, columns=columns, encoding=encoding,
                    transform=transform)
        data, names = cls._load_file(data_path, sep, header, columns, encoding)
        given_test = cls._load_file(test_path, sep, header, columns, encoding)[0] if test_path else None
        plan = _AutogenSplit(data, given_test, int(seed) if seed is not None else secrets.randbits(31),
                             float(test_ratio), float(val_ratio))
        train, val, test = plan.split()
        dataset = cls(train, val, test, named_columns=names, transform=transform)
        dataset._autogen = plan
        _record_factory(dataset, "autogen", args)
        return dataset
