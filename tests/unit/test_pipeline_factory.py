"""Hyperparameter loops: the search loop, the blackboards, and the results store they write."""

import time

import pandas as pd
import pytest
import sqlalchemy as sa

from flambe.experiment.store import ResultsStore
from flambe.pipeline.factory import (
    Factory,
    LocalMemoryFactory,
    SQLFactory,
    StopHyperparameterOptimization,
    train_and_evaluate,
)
from flambe.pipeline.message import Message

GRID = [{"lr": 0.1, "units": 8}, {"lr": 0.01, "units": 16}, {"lr": 0.001, "units": 32}]


class Model:
    def __init__(self, params):
        self.lr, self.units = params["lr"], params["units"]


def train(params):
    return Model(params)


def score(model, data):
    return model.units * data


def loss(model, data):
    return model.lr


METRICS = {"score": score, "loss": loss}


def grid(past_params, past_metrics):
    """The next point of GRID (None when it is done)."""
    assert len(past_params) == len(past_metrics)
    return GRID[len(past_params)] if len(past_params) < len(GRID) else None


def slow_train(params):
    time.sleep(0.05)
    return Model(params)


def test_loop_and_memory_blackboard():
    seen = []

    def generator(past_params, past_metrics):
        seen.append((list(past_params), list(past_metrics)))
        return grid(past_params, past_metrics)

    factory = LocalMemoryFactory(train, METRICS, generator, eval_dataloader=2)
    assert factory.run() is False
    assert factory.params == GRID
    assert factory.metrics == [{"score": 16.0, "loss": 0.1}, {"score": 32.0, "loss": 0.01},
                               {"score": 64.0, "loss": 0.001}]
    assert [len(p) for p, _ in seen] == [0, 1, 2, 3]  # asked once more, and it stopped
    assert seen[2] == (GRID[:2], factory.metrics[:2])
    params, metrics = factory.read()
    assert isinstance(params, Message) and params.columns == ["trial", "lr", "units"]
    assert params["units"].tolist() == [8, 16, 32] and params["trial"].tolist() == factory.trials
    assert set(metrics) == {"score", "loss"} and metrics["score"]["value"].tolist() == [16.0, 32.0, 64.0]
    assert metrics["loss"]["trial"].tolist() == factory.trials
    assert factory.metric() == 64.0 and factory.best()[1] == GRID[2]
    assert factory.get_connection() == (factory.params, factory.metrics)


@pytest.mark.parametrize("stop", ["none", "stopiteration", "stop_hpo", "iterator", "max_trials"])
def test_ways_to_stop(stop):
    def generator(past_params, past_metrics):
        if len(past_params) == 3:
            if stop == "stopiteration":
                raise StopIteration
            if stop == "stop_hpo":
                raise StopHyperparameterOptimization()
            if stop == "none":
                return None
        return GRID[len(past_params) % 3]

    source = iter(GRID) if stop == "iterator" else generator
    factory = Factory(train, {"loss": loss}, source, max_trials=3 if stop == "max_trials" else None)
    factory.run()
    assert factory.params == GRID


def test_main_metric_direction_and_run_objects():
    factory = Factory(train, METRICS, grid, 1, metric="loss", lower_is_better=True)
    factory.run()
    assert factory.metric() == 0.001 and factory.best()[1] == GRID[2]

    class Runner:  # an object with run()/metric(), as a Component or a flambe Trainer
        def __init__(self, params):
            self.steps, self.params = 0, params

        def run(self):
            self.steps += 1
            return self.steps < 3

        def metric(self):
            return self.steps * self.params["lr"]

    assert train_and_evaluate(Runner, {}, None, {"lr": 0.5}) == {"metric": 1.5}
    factory = Factory(Runner, None, grid)
    factory.run()
    assert [m["metric"] for m in factory.metrics] == pytest.approx([0.3, 0.03, 0.003])
    with pytest.raises(ValueError, match="metric 'acc'"):
        Factory(train, METRICS, grid, metric="acc")
    with pytest.raises(ValueError, match="reserved"):
        Factory(train, METRICS, grid).write({"trial": 1})


def test_results_store_format(tmp_path):
    path = str(tmp_path / "results.sqlite")
    store = ResultsStore(path)
    factory = Factory(train, METRICS, grid, 2, store=store, name="search", lower_is_better=False)
    factory.run()
    rows = {r["id"]: r for r in store.variant_rows("search")}
    assert set(rows) == set(factory.trials)
    for trial, params, metrics in zip(factory.trials, factory.params, factory.metrics):
        row = rows[trial]
        assert row["status"] == "done" and row["params"] == params and row["metric"] == metrics["score"]
        assert row["calls"] == 1 and row["started"] <= row["finished"]
    engine = sa.create_engine(f"sqlite:///{path}")
    variants = pd.read_sql("SELECT * FROM variants WHERE stage = 'search' ORDER BY name", engine)
    assert variants["name"].tolist() == ["search-0", "search-1", "search-2"]
    assert variants["metric"].tolist() == [16.0, 32.0, 64.0]
    stage = pd.read_sql("SELECT * FROM stages", engine).iloc[0]
    assert (stage["name"], stage["status"], stage["best_variant"], stage["best_metric"]) == \
        ("search", "done", factory.trials[2], 64.0)
    metrics = pd.read_sql("SELECT variant_id, name, value FROM metrics WHERE stage = 'search'", engine)
    table = metrics.pivot(index="variant_id", columns="name", values="value").loc[factory.trials]
    assert table["score"].tolist() == [16.0, 32.0, 64.0] and table["loss"].tolist() == [0.1, 0.01, 0.001]
    assert [m["value"] for m in store.metric_history(factory.trials[0])] == [16.0, 0.1]
    # running again replaces the stage's rows instead of adding to them
    Factory(train, METRICS, grid, 2, store=store, name="search").run()
    assert len(pd.read_sql("SELECT * FROM metrics", engine)) == 6 and len(store.variant_rows()) == 3
    store.close()
    engine.dispose()
    with pytest.raises(TypeError, match="results store"):
        Factory(train, METRICS, grid, store=object())


def test_failure_is_recorded(tmp_path):
    store = ResultsStore(str(tmp_path / "results.sqlite"))

    def broken(params):
        if params["units"] == 16:
            raise RuntimeError("diverged")
        return Model(params)

    factory = Factory(broken, METRICS, grid, 1, store=store, name="s")
    with pytest.raises(RuntimeError, match="diverged"):
        factory.run()
    rows = sorted(store.variant_rows("s"), key=lambda r: r["name"])
    assert [r["status"] for r in rows] == ["done", "failed"] and "diverged" in rows[1]["error"]
    with sa.create_engine(f"sqlite:///{store.path}").connect() as conn:
        assert conn.exec_driver_sql("SELECT status FROM stages").scalar_one() == "failed"
    store.close()


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_parallel_gives_the_same_results(tmp_path, executor):
    serial = Factory(train, METRICS, grid, 2)
    serial.run()
    store = ResultsStore(str(tmp_path / "results.sqlite"))
    calls = []

    def generator(past_params, past_metrics):
        calls.append(sum(m is None for m in past_metrics))
        return grid(past_params, past_metrics)

    parallel = Factory(slow_train, METRICS, generator, 2, store=store, max_workers=3, executor=executor)
    parallel.run()
    pairs = lambda f: sorted((tuple(sorted(p.items())), tuple(sorted(m.items())))  # noqa: E731
                             for p, m in zip(f.params, f.metrics))
    assert pairs(parallel) == pairs(serial)
    assert max(calls) == 2  # later points were chosen while earlier ones were still training
    assert sorted(r["metric"] for r in store.variant_rows()) == [16.0, 32.0, 64.0]
    store.close()


def test_sql_factory_shares_and_reopens(tmp_path):
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    first = SQLFactory(train, METRICS, grid, 2, params_table="params", engine=url)
    first.run()
    params, metrics = first.read()
    assert params["lr"].tolist() == [0.1, 0.01, 0.001] and metrics["score"]["value"].tolist() == [16, 32, 64]
    first.close()

    # a new process (or a later run) sees the blackboard: the grid is done, nothing is trained again
    trained = []
    second = SQLFactory(lambda p: trained.append(p) or Model(p), METRICS, grid, 2, engine=url)
    second.run()
    assert trained == [] and second.params == GRID and second.trials == first.trials
    params, metrics = second.read()
    assert set(metrics) == {"score", "loss"} and metrics["loss"]["value"].tolist() == [0.1, 0.01, 0.001]
    db_params, db_metrics = second.read_db()
    assert db_params["trial"].tolist() == first.trials and len(db_metrics["score"]) == 3
    assert sorted(pd.read_sql("SELECT value FROM metrics_score", second.engine)["value"]) == [16, 32, 64]

    # trials another writer added (one still training) appear on sync
    third = SQLFactory(train, METRICS, lambda p, m: None, 2, engine=url)
    second.write({"lr": 1.0, "units": 1})
    third.sync()
    assert len(third.params) == 4 and third.metrics[-1] is None
    second.write({"lr": 1.0, "units": 1}, {"score": 2.0, "loss": 1.0}, second.trials[-1])
    third.sync()
    assert third.metrics[-1] == {"score": 2.0, "loss": 1.0}
    for factory in (second, third):
        factory.close()


def test_sql_factory_with_given_tables(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'given.sqlite'}")
    meta = sa.MetaData()
    params_table = sa.Table("hp", meta, sa.Column("trial", sa.String(32), primary_key=True),
                            sa.Column("lr", sa.Float), sa.Column("units", sa.Integer))
    score_table = sa.Table("scores", meta, sa.Column("trial", sa.String(32), primary_key=True),
                           sa.Column("score", sa.Float))
    meta.create_all(engine)
    factory = SQLFactory(train, {"score": score}, grid, 1, params_table=params_table,
                         metrics_tables={"score": score_table}, engine=engine)
    factory.run()
    assert pd.read_sql("SELECT lr, units FROM hp", engine).to_dict("records") == GRID
    assert sorted(pd.read_sql("SELECT score FROM scores", engine)["score"]) == [8, 16, 32]
    reopened = SQLFactory(train, {"score": score}, grid, 1, params_table=params_table,
                          metrics_tables={"score": score_table}, engine=engine)
    assert sorted(reopened.read()[1]["score"]["value"].tolist()) == [8, 16, 32]
    assert sorted(p["units"] for p in reopened.params) == [8, 16, 32]
    with pytest.raises(ValueError, match="not among"):
        SQLFactory(train, {"score": score}, grid, engine=engine, metrics_tables={"acc": score_table})
    factory.close()
    reopened.close()
