"""Hyperparameter loops (Fireworks' ``Factory``): generate parameters, train, evaluate, record, repeat.

A factory keeps a *blackboard* of every trial: its parameters and, once it finished, its metrics. The
generator (the search strategy) reads the blackboard to choose the next parameters; :class:`Factory` and
:class:`LocalMemoryFactory` keep it in memory, :class:`SQLFactory` in SQL tables
that several processes share.

Given a results store (``flambe.experiment.store.ResultsStore``, or any object with its public methods),
a factory records its trials there in the experiment runner's format, so the report site, ``reduce`` and
``pandas.read_sql`` read them like any stage: a stage named after the factory, one variant per trial (its
parameters in ``params``, its main metric in ``metric``) and one ``metrics`` row per metric name.

Trainings may run in parallel (``max_workers``, threads or processes from :mod:`concurrent.futures`); the
generator, the blackboard and every write stay in the calling process, so SQLite never has several writers.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import json
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from flambe.compile import Component
from flambe.pipeline.message import Message

__all__ = ["Factory", "LocalMemoryFactory", "SQLFactory", "StopHyperparameterOptimization", "train_and_evaluate"]

Params = Dict[str, Any]
Metrics = Dict[str, Optional[float]]


class StopHyperparameterOptimization(Exception):
    """Raised by a generator (like ``StopIteration``, or returning None) to end the search."""


def _number(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def train_and_evaluate(trainer: Callable[[Params], Any], metrics_dict: Mapping[str, Callable[[Any, Any], Any]],
                       eval_data: Any, params: Params) -> Metrics:
    """Train one model and compute its metrics (what a worker runs).

    ``trainer(params)`` returns the trained model, or an object with ``run()`` (called until it returns a
    false value) and ``metric()``. Each ``metrics_dict[name](model, eval_data)`` gives one number; with no
    metric functions, the object's ``metric()`` is recorded as ``'metric'``.
    """
    model = trainer(dict(params))
    if callable(getattr(model, "run", None)):
        while model.run():
            pass
    if not metrics_dict:
        if not callable(getattr(model, "metric", None)):
            raise ValueError("no metric functions were given and the trained object has no metric()")
        return {"metric": _number(model.metric())}
    return {name: _number(fn(model, eval_data)) for name, fn in metrics_dict.items()}


def _jsonable(params: Params) -> Params:
    """``params`` as plain JSON values (anything else as its string)."""
    return json.loads(json.dumps(params, default=str))


class _StoreWriter:
    """Writes a factory's trials to a results store in the experiment runner's format."""

    def __init__(self, store: Any, stage: str, position: int, lower_is_better: bool) -> None:
        missing = [m for m in ("upsert_variant", "upsert_stage", "add_metric", "clear_metrics", "clear_stage",
                               "flush")
                   if not callable(getattr(store, m, None))]
        if missing:
            raise TypeError(f"store must be a results store (flambe.experiment.store.ResultsStore); "
                            f"{type(store).__name__} lacks {missing}")
        self.store, self.stage, self.position, self.lower_is_better = store, stage, position, lower_is_better

    def stage_row(self, status: str, best: Optional[str], best_metric: Optional[float]) -> None:
        self.store.upsert_stage({"name": self.stage, "position": self.position, "status": status,
                                 "lower_is_better": int(self.lower_is_better), "best_variant": best,
                                 "best_metric": best_metric, "kept": None})

    def variant_row(self, trial: str, index: int, params: Params, status: str, metric: Optional[float],
                    started: Optional[float], finished: Optional[float], error: Optional[str] = None) -> None:
        self.store.upsert_variant({
            "id": trial, "stage": self.stage, "name": f"{self.stage}-{index}", "status": status,
            "params": _jsonable(params), "inherited": {}, "parents": [], "metric": metric, "best_metric": metric,
            "calls": 1 if status == "done" else 0, "checkpoint": None, "log": None, "error": error,
            "started": started, "finished": finished})

    def metric_rows(self, trial: str, values: Metrics) -> None:
        """One ``metrics`` row per metric name (step 1: a trial trains once)."""
        self.store.clear_metrics(trial)
        for name, value in values.items():
            self.store.add_metric(trial, self.stage, 1, value, name=name)

    def clear_stage(self) -> None:
        self.store.clear_stage(self.stage)

    def flush(self) -> None:
        self.store.flush()


class Factory(Component):
    """Hyperparameter search loop with an in-memory blackboard.

    :meth:`run` repeats: ask the generator for parameters, train a model with them, compute the metrics on
    the evaluation data, record the trial; until the generator stops (returns None, raises
    ``StopIteration`` or :class:`StopHyperparameterOptimization`) or ``max_trials`` trials were made.

    Parameters
    ----------
    trainer : Callable[[dict], Any]
        ``params -> trained model``, or an object with ``run()`` / ``metric()`` (see
        :func:`train_and_evaluate`).
    metrics_dict : Mapping[str, Callable[[model, eval_data], float]], optional
        The metrics, by name. Without any, the trained object's ``metric()`` is recorded as ``'metric'``.
    generator : callable or iterator
        ``generator(past_params, past_metrics) -> params dict`` (None to stop). ``past_params`` lists the
        parameters of every trial so far in the order they were made, trials still training included;
        ``past_metrics`` is aligned with it: each finished trial's metrics dict, None while it trains.
        An iterator (e.g. ``iter(grid)``) is also accepted: its items are the parameters.
    eval_dataloader : Any, optional
        The evaluation data, passed as is to every metric function.
    store : ResultsStore, optional
        A results store to record the trials in as well (see the module docstring).
    name : str
        The stage name of the trials in the store, and the prefix of their variant names.
    metric : str, optional
        The main metric (what :meth:`metric` and the store's ``metric`` column hold); the first one of
        ``metrics_dict`` by default.
    lower_is_better : bool
        Whether a lower main metric is better.
    max_trials : int, optional
        Stop after this many trials.
    max_workers : int
        How many trainings run at once (1: in the calling thread).
    executor : str or concurrent.futures.Executor
        ``'thread'`` or ``'process'`` (then trainer, metrics and evaluation data must be picklable), or an
        executor to submit to (it is not shut down).
    position : int
        The stage's position in the store's ``stages`` table.
    """

    def __init__(self, trainer: Callable[[Params], Any],
                 metrics_dict: Optional[Mapping[str, Callable[[Any, Any], Any]]] = None,
                 generator: Union[Callable[[List[Params], List[Optional[Metrics]]], Optional[Params]],
                                  Iterator[Params], None] = None,
                 eval_dataloader: Any = None, store: Any = None, *, name: str = "factory",
                 metric: Optional[str] = None, lower_is_better: bool = False, max_trials: Optional[int] = None,
                 max_workers: int = 1, executor: Union[str, futures.Executor] = "thread",
                 position: int = 0) -> None:
        if generator is None:
            raise ValueError("a generator is required: generator(past_params, past_metrics) -> params or None")
        if not callable(generator) and not hasattr(generator, "__next__"):
            generator = iter(generator)
        if isinstance(executor, str) and executor not in ("thread", "process"):
            raise ValueError(f"executor must be 'thread', 'process' or an Executor, not {executor!r}")
        self.trainer = trainer
        self.metrics_dict = dict(metrics_dict or {})
        self.generator = generator
        self.eval_dataloader = eval_dataloader
        self.name = name
        self.main_metric = metric or (next(iter(self.metrics_dict)) if self.metrics_dict else "metric")
        if self.metrics_dict and self.main_metric not in self.metrics_dict:
            raise ValueError(f"metric '{self.main_metric}' is not among the metrics {list(self.metrics_dict)}")
        self.lower_is_better = bool(lower_is_better)
        self.max_trials = max_trials
        self.max_workers = max(1, int(max_workers))
        self.executor = executor
        self.trials: List[str] = []
        self.params: List[Params] = []
        self.metrics: List[Optional[Metrics]] = []
        self._index: Dict[str, int] = {}
        self._times: Dict[str, List[Optional[float]]] = {}
        self._made = 0
        self._writer = _StoreWriter(store, name, position, self.lower_is_better) if store is not None else None

    # ------------------------------------------------------------------ blackboard
    def trial_id(self, params: Params, index: int) -> str:
        """A trial's id: stable for the same factory name, position and parameters."""
        text = json.dumps({"stage": self.name, "index": index, "params": _jsonable(params)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def get_connection(self) -> Tuple[List[Params], List[Optional[Metrics]]]:
        """The blackboard itself: the parameters and metrics lists (aligned, in trial order)."""
        return self.params, self.metrics

    def write(self, params: Params, metrics: Optional[Metrics] = None, trial: Optional[str] = None) -> str:
        """Record a trial: new parameters (``metrics`` None: it is training), or the metrics of the trial
        ``trial``. Returns the trial's id."""
        if not isinstance(params, Mapping):
            raise TypeError(f"parameters must be a dict, not {type(params).__name__}")
        if "trial" in params:
            raise ValueError("'trial' is reserved for the trial id: rename that parameter")
        if trial is None or trial not in self._index:
            trial = trial or self.trial_id(params, len(self.params))
            self._add(trial, dict(params), None)
            self._times[trial] = [time.time(), None]
        if metrics is not None:
            self.metrics[self._index[trial]] = dict(metrics)
            self._times.setdefault(trial, [None, None])[1] = time.time()
        if self._writer is not None:
            self._record(trial)
        return trial

    def _add(self, trial: str, params: Params, metrics: Optional[Metrics]) -> None:
        self._index[trial] = len(self.trials)
        self.trials.append(trial)
        self.params.append(params)
        self.metrics.append(metrics)

    def _record(self, trial: str, error: Optional[str] = None) -> None:
        assert self._writer is not None
        index = self._index[trial]
        metrics = self.metrics[index]
        started, finished = self._times.get(trial, [None, None])
        status = "failed" if error else "running" if metrics is None else "done"
        self._writer.variant_row(trial, index, self.params[index], status,
                                 None if metrics is None else metrics.get(self.main_metric), started,
                                 finished or (time.time() if error else None), error)
        if metrics is not None:
            self._writer.metric_rows(trial, metrics)

    def read(self) -> Tuple[Message, Dict[str, Message]]:
        """The blackboard as Messages: the parameters (a ``trial`` column, then one column per parameter,
        every trial) and, by metric name, the finished trials' values (columns ``trial`` and ``value``)."""
        import pandas as pd
        frame = pd.DataFrame.from_records(self.params, index=range(len(self.params)))
        frame.insert(0, "trial", self.trials)
        names = list(dict.fromkeys(n for m in self.metrics if m for n in m))
        metrics = {}
        for name in names:
            done = [(t, m[name]) for t, m in zip(self.trials, self.metrics) if m and name in m]
            metrics[name] = Message({"trial": [t for t, _ in done],
                                     "value": pd.Series([v for _, v in done], dtype="float64")})
        return Message(frame), metrics

    # ------------------------------------------------------------------ results
    def best(self) -> Optional[Tuple[str, Params, Metrics]]:
        """``(trial, params, metrics)`` of the finished trial with the best main metric (None if none)."""
        scored = [(m[self.main_metric], i) for i, m in enumerate(self.metrics)
                  if m and m.get(self.main_metric) is not None and m[self.main_metric] == m[self.main_metric]]
        if not scored:
            return None
        _, index = (min if self.lower_is_better else max)(scored)
        return self.trials[index], self.params[index], dict(self.metrics[index] or {})

    def metric(self) -> Optional[float]:
        """The best main metric so far."""
        best = self.best()
        return None if best is None else best[2][self.main_metric]

    # ------------------------------------------------------------------ the loop
    def next_params(self) -> Optional[Params]:
        """Ask the generator for the next parameters (None: the search is over)."""
        if self.max_trials is not None and self._made >= self.max_trials:
            return None
        try:
            if callable(self.generator):
                params = self.generator(list(self.params), list(self.metrics))
            else:
                params = next(self.generator)
        except (StopIteration, StopHyperparameterOptimization):
            return None
        if params is not None:
            self._made += 1
        return params

    def after(self, trial: Optional[str] = None) -> None:
        """Called after each recorded trial (and at the end of :meth:`run`): commits the results store."""
        if self._writer is not None:
            self._writer.flush()

    def _stage(self, status: str) -> None:
        if self._writer is not None:
            best = self.best()
            self._writer.stage_row(status, best[0] if best else None, best[2][self.main_metric] if best else None)
            self._writer.flush()

    def _fail(self, trial: str, error: BaseException) -> None:
        if self._writer is not None:
            self._record(trial, "".join(traceback.format_exception(error)))
            self._stage("failed")

    def run(self) -> bool:
        """Search until the generator stops; returns False (nothing more to run).

        Raises
        ------
        Exception
            What a training or metric raised (the trial and stage are recorded as failed first).
        """
        if self._writer is not None:
            if not self.trials:
                self._writer.clear_stage()
            self._stage("running")
        if self.max_workers == 1 and isinstance(self.executor, str):
            while (params := self.next_params()) is not None:
                trial = self.write(params)
                try:
                    metrics = train_and_evaluate(self.trainer, self.metrics_dict, self.eval_dataloader, params)
                except Exception as error:
                    self._fail(trial, error)
                    raise
                self.write(params, metrics, trial)
                self.after(trial)
        else:
            self._run_parallel()
        self._stage("done")
        return False

    def _run_parallel(self) -> None:
        owned = isinstance(self.executor, str)
        pool: futures.Executor = (futures.ThreadPoolExecutor(self.max_workers) if self.executor == "thread"
                                  else futures.ProcessPoolExecutor(self.max_workers)) if owned else self.executor
        pending: Dict[futures.Future, Tuple[str, Params]] = {}
        try:
            stopped = False
            while True:
                while not stopped and len(pending) < self.max_workers:
                    params = self.next_params()
                    if params is None:
                        stopped = True
                        break
                    trial = self.write(params)
                    future = pool.submit(train_and_evaluate, self.trainer, self.metrics_dict,
                                         self.eval_dataloader, dict(params))
                    pending[future] = (trial, params)
                if not pending:
                    break
                done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    trial, params = pending.pop(future)
                    try:
                        metrics = future.result()
                    except Exception as error:
                        for other in pending:
                            other.cancel()
                        self._fail(trial, error)
                        raise
                    self.write(params, metrics, trial)
                    self.after(trial)
        finally:
            if owned:
                pool.shutdown(wait=True, cancel_futures=True)

    def __getstate__(self) -> Dict[str, Any]:
        """A copy has no results store (only the process that made the factory writes it)."""
        return {**self.__dict__, "_writer": None}


class LocalMemoryFactory(Factory):
    """A factory whose blackboard lives in this process's memory (Fireworks' name for :class:`Factory`):
    :meth:`read` gives the parameters and metrics as Messages, and a given results store gets every trial."""


class SQLFactory(Factory):
    """A factory whose blackboard is a set of SQL tables, so several processes (or machines) share one
    search: each sees the others' trials, those still training included.

    Every trial's parameters are written (and committed) when it is generated, its metrics when it
    finished; the factory keeps a local copy, brought up to date by :meth:`sync` before each generation.
    Writes go through :class:`~flambe.pipeline.database.TablePipe`. Sync, generation and the write of the
    new parameters are not one transaction: two processes generating at the same instant may choose the
    same parameters (as with Fireworks' blackboard), so a generator shared by processes should tolerate it.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`Factory`.
    params_table : Table or str
        The parameters table: a name (created if missing, with columns ``trial`` (key), ``params`` (JSON)
        and ``created``), or a table with a ``trial`` column and either a JSON ``params`` column or one
        column per parameter.
    metrics_tables : Mapping[str, Table or str], optional
        The table of each metric (by default ``metrics_<name>``): a name (created if missing, with columns
        ``trial`` (key), ``value`` and ``created``) or a table with a ``trial`` column and a ``value``
        column (or a column named after the metric).
    engine : Engine or str
        The database (see :func:`flambe.pipeline.database.get_engine`: SQLite files wait for locks).
    """

    def __init__(self, *args: Any, params_table: Any = "params", metrics_tables: Optional[Mapping[str, Any]] = None,
                 engine: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from flambe.pipeline.database import TablePipe, create_table, get_engine
        self.engine = get_engine(engine)
        names = list(self.metrics_dict) or ["metric"]
        metrics_tables = dict(metrics_tables or {})
        unknown = [n for n in metrics_tables if n not in names]
        if unknown:
            raise ValueError(f"metrics_tables names metrics {unknown} that are not among {names}")
        if isinstance(params_table, str):
            params_table = create_table(params_table, {"trial": "str", "params": "json", "created": "float"},
                                        primary_key="trial", engine=self.engine)
        self.params_pipe = TablePipe(params_table, self.engine)
        self.metric_pipes: Dict[str, Any] = {}
        for name in names:
            table = metrics_tables.get(name, f"metrics_{name}")
            if isinstance(table, str):
                table = create_table(table, {"trial": "str", "value": "float", "created": "float"},
                                     primary_key="trial", engine=self.engine)
            self.metric_pipes[name] = TablePipe(table, self.engine)
        for pipe in [self.params_pipe, *self.metric_pipes.values()]:
            if "trial" not in pipe.table.c:
                raise ValueError(f"table '{pipe.table.name}' needs a 'trial' column")
        self._value_column = {}
        for name, pipe in self.metric_pipes.items():
            column = "value" if "value" in pipe.table.c else name
            if column not in pipe.table.c:
                raise ValueError(f"metrics table '{pipe.table.name}' needs a 'value' or '{name}' column")
            self._value_column[name] = column
        self._json = "params" in self.params_pipe.table.c
        self.sync()

    def trial_id(self, params: Params, index: int) -> str:
        """A random id: processes sharing the tables never collide."""
        import uuid
        return uuid.uuid4().hex[:16]

    def get_connection(self) -> Any:
        """The connection the parameters table is written through."""
        return self.params_pipe.connection()

    def write(self, params: Params, metrics: Optional[Metrics] = None, trial: Optional[str] = None) -> str:
        """Record a trial locally, in the results store and in the tables (see :meth:`Factory.write`)."""
        new = trial is None or trial not in self._index
        trial = super().write(params, metrics, trial)
        now = time.time()
        if new:
            row: Dict[str, Any] = {"trial": [trial]}
            if self._json:
                row["params"] = [_jsonable(params)]
            else:
                unknown = [k for k in params if k not in self.params_pipe.table.c]
                if unknown:
                    raise ValueError(f"parameters {unknown} have no column in table '{self.params_pipe.table.name}'")
                row.update({k: [v] for k, v in params.items()})
            if "created" in self.params_pipe.table.c:
                row["created"] = [now]
            self.params_pipe.upsert(Message(row))
            self.params_pipe.commit()
        for name, value in (metrics or {}).items():
            pipe = self.metric_pipes.get(name)
            if pipe is None:
                raise ValueError(f"metric '{name}' has no table (the tables are for {list(self.metric_pipes)})")
            row = {"trial": [trial], self._value_column[name]: [value]}
            if "created" in pipe.table.c:
                row["created"] = [now]
            pipe.upsert(Message(row))
            pipe.commit()
        return trial

    def read_db(self) -> Tuple[Message, Dict[str, Message]]:
        """The tables as they are in the database (bypassing the local copy): the parameters table's
        Message, and each metric's ``trial`` and ``value`` columns."""
        order = "created" if "created" in self.params_pipe.table.c else None
        params = self.params_pipe.query(order_by=order).all()
        metrics = {}
        for name, pipe in self.metric_pipes.items():
            message = pipe.query("trial", self._value_column[name]).all()
            metrics[name] = Message({"trial": message["trial"], "value": message[self._value_column[name]]})
        self._end_reads()
        return params, metrics

    def _end_reads(self) -> None:
        # End the read transactions, so that the next read sees what other processes committed since.
        for pipe in [self.params_pipe, *self.metric_pipes.values()]:
            pipe.commit()

    def sync(self) -> None:
        """Bring the local copy up to date: other processes' new trials and newly finished metrics."""
        known = set(self._index)
        ids = self.params_pipe.query("trial").all()
        new = [t for t in (ids["trial"].tolist() if len(ids) else []) if t not in known]
        if new:
            order = "created" if "created" in self.params_pipe.table.c else None
            rows = self.params_pipe.query(where={"trial": new}, order_by=order).all().dataframe()
            columns = [c for c in rows.columns if c not in ("trial", "created")]
            for record in rows.to_dict("records"):
                params = dict(record["params"] or {}) if self._json else {c: record[c] for c in columns}
                self._add(record["trial"], params, None)
        for name, pipe in self.metric_pipes.items():
            waiting = [t for t, m in zip(self.trials, self.metrics) if m is None or name not in m]
            if not waiting:
                continue
            found = pipe.query("trial", self._value_column[name], where={"trial": waiting}).all()
            if len(found):
                for trial, value in zip(found["trial"].tolist(), found[self._value_column[name]].tolist()):
                    index = self._index[trial]
                    self.metrics[index] = {**(self.metrics[index] or {}), name: _number(value)}
        self._end_reads()

    def read(self) -> Tuple[Message, Dict[str, Message]]:
        """Sync, then the local copy as Messages (see :meth:`Factory.read`)."""
        self.sync()
        return super().read()

    def next_params(self) -> Optional[Params]:
        """Sync, then ask the generator."""
        self.sync()
        return super().next_params()

    def after(self, trial: Optional[str] = None) -> None:
        """Commit the tables and the results store."""
        self._end_reads()
        super().after(trial)

    def close(self) -> None:
        """Close the tables' connections."""
        for pipe in [self.params_pipe, *self.metric_pipes.values()]:
            pipe.close()
