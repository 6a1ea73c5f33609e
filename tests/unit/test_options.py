"""Unit tests for search options: !g, !s and the distribution tags."""

from __future__ import annotations

import random

import pytest

from flambe.compile import (
    Choice,
    Component,
    GridSearchOptions,
    LogUniform,
    RandInt,
    SampledUniformSearchOptions,
    SearchOptionError,
    Uniform,
    yaml,
)


class OptModel(Component):
    def __init__(self, hidden: int = 8, dropout: float = 0.1, sub=None) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.sub = sub


# ---------------------------------------------------------------------- !g
def test_grid_parses():
    opt = yaml.load("!g [1, 2, 3]")
    assert isinstance(opt, GridSearchOptions)
    assert opt.options == [1, 2, 3]
    assert list(opt) == [1, 2, 3]
    assert len(opt) == 3


def test_grid_inside_schema_keeps_option():
    schema = yaml.load("!OptModel\nhidden: !g [16, 32]\n")
    assert isinstance(schema["hidden"], GridSearchOptions)
    assert schema["hidden"].options == [16, 32]
    assert schema["hidden"].location.line == 2


def test_grid_of_components():
    opt = yaml.load("!g\n- !OptModel {hidden: 1}\n- !OptModel {{}}\n")
    assert len(opt) == 2
    assert opt.options[0]().hidden == 1
    assert opt.options[1]().hidden == 8


def test_grid_needs_list_and_values():
    with pytest.raises(SearchOptionError):
        yaml.load("!g 5")
    with pytest.raises(SearchOptionError):
        yaml.load("!g []")


def test_grid_equality_ignores_location():
    assert yaml.load("!g [1, 2]") == GridSearchOptions([1, 2])
    assert yaml.load("!g [1, 2]") != GridSearchOptions([2, 1])


# ---------------------------------------------------------------------- !s
def test_sampled_ints_in_range():
    opt = yaml.load("!s [1, 10, 5]")
    assert isinstance(opt, SampledUniformSearchOptions)
    assert (opt.low, opt.high, opt.k) == (1, 10, 5)
    assert opt.is_int
    values = opt.sample(seed=0)
    assert len(values) == 5
    assert all(type(v) is int for v in values)
    assert all(1 <= v <= 10 for v in values)


def test_sampled_floats_rounded():
    opt = yaml.load("!s [0.1, 0.9, 4, 2]")
    assert not opt.is_int
    assert opt.decimals == 2
    values = opt.sample(seed=0)
    assert len(values) == 4
    assert all(type(v) is float for v in values)
    assert all(0.1 <= v <= 0.9 for v in values)
    assert all(round(v, 2) == v for v in values)
    # at least one value actually exercises rounding (not all values already short)
    many = SampledUniformSearchOptions(0.1, 0.9, 50, 2).sample(seed=1)
    assert all(len(repr(v).split(".")[1]) <= 2 for v in many)


def test_sampled_mixed_bounds_are_floats():
    values = yaml.load("!s [1, 2.0, 3]").sample(0)
    assert all(isinstance(v, float) for v in values)


def test_sampled_same_seed_same_values():
    opt = yaml.load("!s [0.0, 1.0, 6, 4]")
    assert opt.sample(seed=7) == opt.sample(seed=7)
    # a freshly parsed identical option draws the same too (no hidden global state)
    assert yaml.load("!s [0.0, 1.0, 6, 4]").sample(seed=7) == opt.sample(seed=7)


def test_sampled_different_seed_different_values():
    opt = yaml.load("!s [0.0, 1.0, 6, 4]")
    assert opt.sample(seed=0) != opt.sample(seed=1)
    ints = yaml.load("!s [1, 1000, 5]")
    assert ints.sample(seed=0) != ints.sample(seed=1)


def test_sampled_ignores_global_random_state():
    opt = yaml.load("!s [0.0, 1.0, 3]")
    random.seed(1)
    first = opt.sample(seed=3)
    random.seed(2)
    assert opt.sample(seed=3) == first


def test_sampled_to_grid_and_dump():
    opt = yaml.load("!s [1, 10, 5]")
    grid = opt.to_grid(seed=4)
    assert isinstance(grid, GridSearchOptions)
    assert grid.options == opt.sample(seed=4)
    text = yaml.dump(grid)
    assert text.startswith("!g")
    assert yaml.load(text).options == opt.sample(seed=4)


@pytest.mark.parametrize("text", [
    "!s [1, 10]",
    "!s [1, 10, 0]",
    "!s [1, 10, 2.5]",
    "!s [10, 1, 3]",
    "!s [a, b, 3]",
    "!s [1, 2, 3, 4, 5]",
    "!s 3",
])
def test_sampled_bad_values(text):
    with pytest.raises(SearchOptionError) as info:
        yaml.load(text)
    assert info.value.location is not None


def test_sampled_dump_back():
    assert yaml.load(yaml.dump(yaml.load("!s [1, 10, 5]"))) == SampledUniformSearchOptions(1, 10, 5)
    text = yaml.dump(yaml.load("!s [0.1, 0.9, 4, 2]"))
    assert text.startswith("!s")
    assert yaml.load(text) == SampledUniformSearchOptions(0.1, 0.9, 4, 2)


# ---------------------------------------------------------------------- distributions
@pytest.mark.parametrize("text, cls, values", [
    ("!uniform [0.0, 1.0]", Uniform, [0.0, 1.0]),
    ("!loguniform [0.0001, 0.1]", LogUniform, [0.0001, 0.1]),
    ("!randint [1, 10]", RandInt, [1, 10]),
    ("!choice [relu, tanh, 3]", Choice, ["relu", "tanh", 3]),
])
def test_distribution_parses(text, cls, values):
    opt = yaml.load(text)
    assert type(opt) is cls
    assert opt.values == values
    text_back = yaml.dump(opt)
    assert text_back.startswith(text.split()[0])
    assert yaml.load(text_back) == opt


@pytest.mark.parametrize("text", [
    "!uniform [1.0, 0.5]",
    "!uniform [1.0, 1.0]",
    "!uniform [1.0]",
    "!uniform [a, b]",
    "!loguniform [0, 1]",
    "!loguniform [-1, 1]",
    "!randint [1.5, 4]",
    "!randint [5, 2]",
    "!choice []",
    "!uniform 3",
])
def test_distribution_bad_bounds(text):
    with pytest.raises(SearchOptionError):
        yaml.load(text)


def test_distribution_sampling_in_bounds():
    rng = random.Random(0)
    assert all(0.0 <= Uniform([0.0, 1.0]).sample(rng) <= 1.0 for _ in range(50))
    assert all(1e-4 <= LogUniform([1e-4, 1e-1]).sample(rng) <= 1e-1 for _ in range(50))
    draws = {RandInt([1, 4]).sample(rng) for _ in range(200)}
    assert draws == {1, 2, 3}  # high bound excluded, as Ray Tune
    assert {Choice(["a", "b"]).sample(rng) for _ in range(50)} == {"a", "b"}


def test_to_tune_returns_ray_domains():
    from ray.tune.search.sample import Categorical, Domain, Float, Integer

    uni = yaml.load("!uniform [0.0, 2.0]").to_tune()
    assert isinstance(uni, Float)
    assert (uni.lower, uni.upper) == (0.0, 2.0)
    log = yaml.load("!loguniform [0.001, 1.0]").to_tune()
    assert isinstance(log, Float)
    assert (log.lower, log.upper) == (0.001, 1.0)
    assert "LogUniform" in type(log.get_sampler()).__name__
    rint = yaml.load("!randint [1, 10]").to_tune()
    assert isinstance(rint, Integer)
    assert (rint.lower, rint.upper) == (1, 10)
    choice = yaml.load("!choice [a, b]").to_tune()
    assert isinstance(choice, Categorical)
    assert list(choice.categories) == ["a", "b"]
    for domain in (uni, log, rint, choice):
        assert isinstance(domain, Domain)


# ---------------------------------------------------------------------- building
@pytest.mark.parametrize("option", ["!g [1, 2]", "!s [1, 10, 2]", "!uniform [0.0, 1.0]", "!choice [1, 2]"])
def test_building_schema_with_option_is_an_error(option):
    schema = yaml.load(f"!OptModel\nhidden: {option}\n")
    with pytest.raises(SearchOptionError) as info:
        schema()
    err = info.value
    assert "Experiment" in (err.hint or "")
    assert err.key_path == ["hidden"]
    assert err.location.line == 2


def test_building_nested_option_is_an_error():
    schema = yaml.load("!OptModel\nsub: !OptModel\n  dropout: !g [0.1, 0.2]\n")
    with pytest.raises(SearchOptionError) as info:
        schema()
    assert info.value.key_path == ["sub", "dropout"]


def test_options_dump_back_inside_schema():
    text = "!OptModel\nhidden: !g [16, 32]\ndropout: !uniform [0.1, 0.5]\nsub: !s [1, 4, 2]\n"
    dumped = yaml.dump(yaml.load(text), fill_defaults=False)
    reloaded = yaml.load(dumped)
    assert reloaded["hidden"] == GridSearchOptions([16, 32])
    assert reloaded["dropout"] == Uniform([0.1, 0.5])
    assert reloaded["sub"] == SampledUniformSearchOptions(1, 4, 2)
