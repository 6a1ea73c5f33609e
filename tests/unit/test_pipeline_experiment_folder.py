"""Experiment folders: numbering, metadata, files, databases, reloading."""

import json
import os
import pickle

import pandas as pd
import pytest
import sqlalchemy as sa

import flambe.pipeline.experiment_folder as ef
from flambe.pipeline.experiment_folder import ExperimentFolder, load_experiment


def test_folders_are_numbered(tmp_path):
    first = ExperimentFolder("mnist", str(tmp_path / "runs"), "first try")
    second = ExperimentFolder("mnist", str(tmp_path / "runs"))
    other = ExperimentFolder("mnist_1", str(tmp_path / "runs"))  # a name that looks numbered
    assert os.path.basename(first.path) == "mnist_1" and first.index == 1
    assert os.path.basename(second.path) == "mnist_2" and second.index == 2
    assert os.path.basename(other.path) == "mnist_1_1"
    third = ExperimentFolder("mnist", str(tmp_path / "runs"))
    assert os.path.basename(third.path) == "mnist_3"
    os.makedirs(tmp_path / "runs" / "mnist_9")
    assert os.path.basename(ExperimentFolder("mnist", str(tmp_path / "runs")).path) == "mnist_10"


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_invalid_names(tmp_path, name):
    with pytest.raises(ValueError, match="invalid experiment name"):
        ExperimentFolder(name, str(tmp_path))


def test_metadata_persisted_and_reloaded(tmp_path):
    exp = ExperimentFolder("results", str(tmp_path), "a description")
    with open(os.path.join(exp.path, "metadata.json")) as handle:
        record = json.load(handle)
    assert record["name"] == "results" and record["description"] == "a description"
    assert record["metadata"] == {} and abs(record["created"] - exp.created) < 1e-6 and record["created_iso"]
    exp.metadata = {"lr": 0.1}
    exp.metadata["epochs"] = 3
    exp.save_metadata()
    again = load_experiment(exp.path)
    assert again.metadata == {"lr": 0.1, "epochs": 3}
    assert (again.name, again.description, again.path, again.index) == ("results", "a description", exp.path, 1)
    assert again.created == exp.created
    with pytest.raises(TypeError):
        exp.metadata = [1, 2]


@pytest.mark.parametrize("name", ["results", "batch", "resu_lts", "x_3"])
def test_load_keeps_names(tmp_path, name):
    exp = ExperimentFolder(name, str(tmp_path))
    assert load_experiment(exp.path).name == name
    assert ExperimentFolder(name, str(tmp_path), load=True).name == name  # the latest <name>_<n>
    assert ExperimentFolder(os.path.basename(exp.path), str(tmp_path), load=True).name == name


def test_load_latest_and_rename(tmp_path):
    ExperimentFolder("batch", str(tmp_path), "one")
    ExperimentFolder("batch", str(tmp_path), "two")
    loaded = ExperimentFolder("batch", str(tmp_path), load=True)
    assert loaded.description == "two" and loaded.path.endswith("batch_2")
    loaded.load_experiment(experiment_name="batch2")
    assert load_experiment(loaded.path).name == "batch2"
    with pytest.raises(FileNotFoundError):
        ExperimentFolder("nothing", str(tmp_path), load=True)
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        load_experiment(str(tmp_path))


def test_open_files(tmp_path):
    exp = ExperimentFolder("files", str(tmp_path))
    with exp.open("notes.txt", "w") as handle:
        handle.write("hello")
    with exp.open("plots/curve.csv", "w") as handle:  # subfolders are made
        handle.write("a,b\n1,2\n")
    assert exp.open("notes.txt").read() == "hello"
    assert pd.read_csv(exp.open("plots/curve.csv", string_only=True))["b"].tolist() == [2]
    with pytest.raises(FileExistsError):
        exp.open("notes.txt", "x")
    for bad in ["../escape.txt", "/etc/passwd", ""]:
        with pytest.raises(ValueError):
            exp.open(bad, "w")


def test_engines_and_sessions(tmp_path):
    exp = ExperimentFolder("db", str(tmp_path))
    engine = exp.get_engine("results")
    assert exp.get_engine("results") is engine and exp.engines["results"] is engine
    assert os.path.normpath(engine.url.database) == os.path.join(exp.path, "results.sqlite")
    pd.DataFrame({"a": [1, 2, 3]}).to_sql("numbers", engine, index=False)
    with exp.get_session("results") as session:
        assert session.execute(sa.text("SELECT sum(a) FROM numbers")).scalar_one() == 6
        session.execute(sa.text("INSERT INTO numbers VALUES (4)"))
        session.commit()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0
    assert os.path.exists(os.path.join(exp.path, "results.sqlite"))
    again = load_experiment(exp.path)
    assert pd.read_sql("SELECT a FROM numbers", again.get_engine("results"))["a"].tolist() == [1, 2, 3, 4]
    copy = pickle.loads(pickle.dumps(exp))
    assert copy.engines == {} and copy.path == exp.path
    with pytest.raises(ValueError):
        exp.get_engine("a/b")
    exp.close()


def test_alias_is_no_tag():
    from flambe.compile.registry import Registrable
    assert ef.Experiment is ExperimentFolder and not issubclass(ExperimentFolder, Registrable)
