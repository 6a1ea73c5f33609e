"""Unit tests for flambe.experiment.variants: expansion, inheritance, reduce counts, ids, names, !s and samples.

Pure Python: nothing here starts Ray. Configs use the test components of ``tests/fixtures/flambe_testkit``
through their extensions header.
"""

from __future__ import annotations

import itertools
import re
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

from flambe.compile import GridSearchOptions, Link, SampledUniformSearchOptions, Schema, SearchOption, Uniform, yaml
from flambe.compile.schema import _walk
from flambe.experiment import Experiment
from flambe.experiment.variants import (
    Variant,
    count_variants,
    has_options,
    sampled_variant,
    stage_variants,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

HEADER = "flambe_testkit: flambe_testkit\n---\n"
SAFE_NAME = re.compile(r"^[A-Za-z0-9._=,+-]+$")

THREE_STAGES = """
    !Experiment
    name: variants
    pipeline:
      model: !ToyModel
        width: !g [1, 2, 3]
        depth: !g [4, 5]
      train: !ToyTrainer
        model: !@ model
        lr: !g [0.1, 0.01]
      eval: !ToyEval
        {eval_link}
    {extra}
"""


def load(body: str) -> Experiment:
    """An ``!Experiment`` from YAML text (the extensions header is added)."""
    exp = yaml.load(HEADER + textwrap.dedent(body).lstrip())
    assert isinstance(exp, Experiment)
    return exp


def three_stages(eval_link: str = "model: !@ train.model", extra: str = "") -> Experiment:
    return load(THREE_STAGES.format(eval_link=eval_link, extra=extra))


def expand_all(exp: Experiment) -> Dict[str, List[Variant]]:
    """Every stage's variants, as the runner builds them (reduce keeps the first k; none fails)."""
    survivors: Dict[str, List[Variant]] = {}
    out: Dict[str, List[Variant]] = {}
    for stage, schema in exp.pipeline.items():
        variants = stage_variants(stage, schema, survivors, exp.num_samples.get(stage, 1), exp.seed,
                                  searched=stage in exp.search)
        out[stage] = variants
        keep = exp.reduce.get(stage)
        survivors[stage] = variants[:keep] if keep else variants
    return out


def by_id(variants: List[Variant]) -> Dict[str, Variant]:
    return {v.id: v for v in variants}


def option_free(value) -> bool:
    return not any(isinstance(node, SearchOption) for node in _walk(value)) and not has_options(value)


# ---------------------------------------------------------------------- counts and reduce
@pytest.mark.parametrize("eval_link", ["model: !@ train.model", "trainer: !@ train"])
def test_counts_follow_inheritance(eval_link):
    exp = three_stages(eval_link)
    expected = {"model": 6, "train": 12, "eval": 12}
    assert count_variants(exp.pipeline, {}, {}, []) == expected
    exp.parse()
    assert exp.variant_counts() == expected
    assert {stage: len(vs) for stage, vs in expand_all(exp).items()} == expected


@pytest.mark.parametrize("eval_link", ["model: !@ train.model", "trainer: !@ train"])
def test_reduce_limits_what_flows_downstream(eval_link):
    exp = three_stages(eval_link, extra="reduce: {train: 2}")
    exp.parse()
    assert exp.variant_counts() == {"model": 6, "train": 12, "eval": 2}
    assert count_variants(exp.pipeline, {"train": 2}, {}, []) == {"model": 6, "train": 12, "eval": 2}
    assert count_variants(exp.pipeline, {"model": 2}, {}, []) == {"model": 6, "train": 4, "eval": 4}
    assert count_variants(exp.pipeline, {"model": 1, "train": 1}, {}, []) == {"model": 6, "train": 2, "eval": 1}
    variants = expand_all(exp)
    kept = {v.id for v in variants["train"][:2]}
    assert {v.upstream["train"] for v in variants["eval"]} == kept


def test_trainer_variants_are_the_full_product():
    variants = expand_all(three_stages())
    models = by_id(variants["model"])
    assert sorted((v.params["width"], v.params["depth"]) for v in variants["model"]) == \
        sorted(itertools.product([1, 2, 3], [4, 5]))
    seen = set()
    for v in variants["train"]:
        assert v.params == {"lr": v.schema["lr"]}
        assert v.upstream == v.parents == {"model": v.upstream["model"]}
        model = models[v.upstream["model"]]
        assert v.inherited == {"model.width": model.params["width"], "model.depth": model.params["depth"]}
        assert isinstance(v.schema["model"], Link) and v.schema["model"].text == "model"
        seen.add((model.params["width"], model.params["depth"], v.params["lr"]))
    assert seen == set(itertools.product([1, 2, 3], [4, 5], [0.1, 0.01]))


def test_grandchild_inherits_through_its_parent():
    variants = expand_all(three_stages("model: !@ train.model"))
    trains = by_id(variants["train"])
    assert len({v.upstream["train"] for v in variants["eval"]}) == 12
    for v in variants["eval"]:
        train = trains[v.upstream["train"]]
        assert v.upstream == {"train": train.id}  # it loads only what it links to
        assert v.parents == {"train": train.id, "model": train.parents["model"]}
        assert v.inherited == {**train.inherited, "train.lr": train.params["lr"]}
        assert v.choices == [] and v.params == {}


# ---------------------------------------------------------------------- nested options
NESTED = """
    !Experiment
    name: nested
    pipeline:
      train: !ToyTrainer
        model: !g [!ToyModel {width: !g [1, 2]}, !ToyModel {depth: !g [3, 4]}]
"""


def test_nested_options_split_instead_of_multiplying():
    exp = load(NESTED)
    assert count_variants(exp.pipeline, {}, {}, []) == {"train": 4}
    variants = stage_variants("train", exp.pipeline["train"], {})
    assert len(variants) == 4
    assert len({v.id for v in variants}) == 4
    models = []
    for v in variants:
        assert option_free(v.schema)
        model = v.schema["model"]
        assert isinstance(model, Schema) and model.tag == "ToyModel"
        models.append(dict(model.keywords))
    assert sorted(models, key=str) == sorted([{"width": 1}, {"width": 2}, {"depth": 3}, {"depth": 4}], key=str)
    params = [v.params for v in variants]
    assert {p.get("model.width") for p in params} == {1, 2, None}
    assert {p.get("model.depth") for p in params} == {3, 4, None}
    assert all(len(p) == 2 and p["model"] == "ToyModel" for p in params)


def test_nested_options_inside_lists_and_dicts():
    schema = yaml.load("!ToyTrainer {model: !ToyModel {}, lr: !g [0.1, 0.2], counts: {a: [!g [1, 2], !g [3, 4]]}}")
    variants = stage_variants("train", schema, {})
    assert len(variants) == 8
    assert all(option_free(v.schema) for v in variants)
    assert sorted((v.schema["counts"]["a"][0], v.schema["counts"]["a"][1], v.schema["lr"]) for v in variants) == \
        sorted(itertools.product([1, 2], [3, 4], [0.1, 0.2]))


def test_grid_over_links_depends_only_on_the_picked_stage():
    exp = load("""
        !Experiment
        name: links
        pipeline:
          a: !ToyModel {width: !g [1, 2]}
          b: !ToyModel {depth: !g [3, 4, 5]}
          pick: !ToyEval
            model: !g [!@ a, !@ b]
    """)
    assert count_variants(exp.pipeline, {}, {}, []) == {"a": 2, "b": 3, "pick": 5}
    assert count_variants(exp.pipeline, {"b": 1}, {}, []) == {"a": 2, "b": 3, "pick": 3}
    variants = expand_all(exp)
    a_ids = {v.id for v in variants["a"]}
    b_ids = {v.id for v in variants["b"]}
    picked = {"a": set(), "b": set()}
    for v in variants["pick"]:
        link = v.schema["model"]
        assert isinstance(link, Link)
        assert option_free(v.schema)
        assert v.parents == v.upstream == {link.text: v.upstream[link.text]}
        picked[link.text].add(v.upstream[link.text])
    assert picked == {"a": a_ids, "b": b_ids}


# ---------------------------------------------------------------------- inheritance consistency
@pytest.mark.parametrize("links", [("trainer: !@ train", "model: !@ model"),
                                   ("model: !@ model", "trainer: !@ train")])
def test_diamond_never_mixes_variants(links):
    exp = three_stages("\n        ".join(links))
    variants = expand_all(exp)
    assert len(variants["eval"]) == 12
    trains = by_id(variants["train"])
    models = by_id(variants["model"])
    assert sorted(v.upstream["train"] for v in variants["eval"]) == sorted(trains)
    for v in variants["eval"]:
        train = trains[v.upstream["train"]]
        assert v.upstream == {"train": train.id, "model": train.parents["model"]}
        assert v.parents == v.upstream
        model = models[v.upstream["model"]]
        assert v.inherited == {"model.width": model.params["width"], "model.depth": model.params["depth"],
                               "train.lr": train.params["lr"]}
    assert count_variants(exp.pipeline, {}, {}, []) == {"model": 6, "train": 12, "eval": 12}
    assert count_variants(exp.pipeline, {"train": 2}, {}, []) == {"model": 6, "train": 12, "eval": 2}
    assert count_variants(exp.pipeline, {"model": 3}, {}, []) == {"model": 6, "train": 6, "eval": 6}


def test_diamond_after_reduce_keeps_consistency():
    exp = three_stages("trainer: !@ train\n        model: !@ model", extra="reduce: {train: 3}")
    variants = expand_all(exp)
    kept = variants["train"][:3]
    assert len(variants["eval"]) == 3
    assert sorted((v.upstream["train"], v.upstream["model"]) for v in variants["eval"]) == \
        sorted((t.id, t.parents["model"]) for t in kept)


# ---------------------------------------------------------------------- ids and names
def _ids_and_names(exp: Experiment) -> Dict[str, List[tuple]]:
    return {stage: [(v.id, v.name) for v in vs] for stage, vs in expand_all(exp).items()}


def test_ids_and_names_are_stable_across_loads():
    first = _ids_and_names(three_stages("trainer: !@ train\n        model: !@ model"))
    second = _ids_and_names(three_stages("trainer: !@ train\n        model: !@ model"))
    assert first == second
    assert load(NESTED) is not load(NESTED)
    assert _ids_and_names(load(NESTED)) == _ids_and_names(load(NESTED))


def test_names_are_safe_short_unique_and_readable():
    variants = expand_all(three_stages("trainer: !@ train\n        model: !@ model"))
    for stage, vs in variants.items():
        names = [v.name for v in vs]
        assert len(set(names)) == len(names), stage
        assert len({v.id for v in vs}) == len(vs), stage
        for v in vs:
            assert SAFE_NAME.match(v.name), v.name
            assert len(v.name) <= 55, v.name
    model_names = {v.name.rsplit("-", 1)[0] for v in variants["model"]}
    assert model_names == {f"width={w},depth={d}" for w in (1, 2, 3) for d in (4, 5)}
    for v in variants["train"]:
        assert f"width={v.inherited['model.width']}" in v.name
        assert f"lr={v.params['lr']}" in v.name
    assert any("width=2" in v.name and "lr=0.01" in v.name for v in variants["eval"])


def test_awkward_values_give_safe_unique_names():
    long = "x" * 80
    schema = yaml.load(textwrap.dedent(f"""
        !ToyTrainer
        model: !ToyModel {{}}
        counts: !g ["a/b", "a b", "../../etc", "{long}/1", "{long}/2", "", null]
        lr: !g [1.0e-05, -0.5]
    """))
    variants = stage_variants("train", schema, {})
    assert len(variants) == 14
    names = [v.name for v in variants]
    assert len(set(names)) == 14
    for name in names:
        assert SAFE_NAME.match(name), name
        assert len(name) <= 55, name
        assert name not in (".", "..") and not name.startswith(".")
    assert len({v.id for v in variants}) == 14


def test_different_values_give_different_ids():
    base = _ids_and_names(three_stages())
    other_lr = _ids_and_names(load(THREE_STAGES.format(eval_link="model: !@ train.model", extra="")
                                   .replace("lr: !g [0.1, 0.01]", "lr: !g [0.1, 0.02]")))
    assert [x for x, _ in base["model"]] == [x for x, _ in other_lr["model"]]
    base_train = {i for i, _ in base["train"]}
    other_train = {i for i, _ in other_lr["train"]}
    assert len(base_train & other_train) == 6  # the lr=0.1 variants are the same variants
    assert len(other_train - base_train) == 6


def test_upstream_choice_changes_downstream_ids():
    exp_a = three_stages()
    exp_b = load(THREE_STAGES.format(eval_link="model: !@ train.model", extra="")
                 .replace("width: !g [1, 2, 3]", "width: !g [1, 2, 7]"))
    a, b = expand_all(exp_a), expand_all(exp_b)

    def keyed(variants):
        return {(v.inherited.get("model.width", v.params.get("width")), v.inherited.get("model.depth"),
                 v.params.get("lr", v.inherited.get("train.lr"))): v.id for v in variants}

    for stage in ("train", "eval"):
        ka, kb = keyed(a[stage]), keyed(b[stage])
        for (width, depth, lr), vid in ka.items():
            if width == 3:
                assert (7, depth, lr) in kb and kb[(7, depth, lr)] != vid
                assert vid not in kb.values()
            else:
                assert kb[(width, depth, lr)] == vid


def test_upstream_variant_is_part_of_the_id():
    schema = yaml.load("!ToyTrainer {model: !@ model, lr: 0.1}")
    ups = stage_variants("model", yaml.load("!ToyModel {width: !g [1, 2]}"), {})
    variants = stage_variants("train", schema, {"model": ups})
    assert len(variants) == 2
    assert variants[0].choices == variants[1].choices == []
    assert variants[0].id != variants[1].id
    assert variants[0].name != variants[1].name


# ---------------------------------------------------------------------- !s
S_CONFIG = """
    !Experiment
    name: sampled
    seed: {seed}
    pipeline:
      model: !ToyModel
        width: !s [1, 100, 3]
      train: !ToyTrainer
        model: !@ model
        lr: !s [0.0, 1.0, 4, 4]
"""


def _drawn(seed: int) -> Experiment:
    exp = load(S_CONFIG.format(seed=seed))
    assert isinstance(exp.pipeline["train"]["lr"], SampledUniformSearchOptions)
    exp.parse()
    return exp


def test_s_is_drawn_with_the_seed():
    first, again, other = _drawn(7), _drawn(7), _drawn(8)
    lr, width = first.pipeline["train"]["lr"], first.pipeline["model"]["width"]
    assert isinstance(lr, GridSearchOptions) and isinstance(width, GridSearchOptions)
    assert len(lr.options) == 4 and len(set(lr.options)) == 4
    assert all(isinstance(x, float) and 0.0 <= x <= 1.0 and round(x, 4) == x for x in lr.options)
    assert len(width.options) == 3 and len(set(width.options)) == 3
    assert all(isinstance(x, int) and 1 <= x <= 100 for x in width.options)
    assert again.pipeline["train"]["lr"].options == lr.options
    assert again.pipeline["model"]["width"].options == width.options
    assert other.pipeline["train"]["lr"].options != lr.options
    assert first.variant_counts() == {"model": 3, "train": 12}
    assert _ids_and_names(first) == _ids_and_names(again)
    assert {i for i, _ in _ids_and_names(first)["train"]} != {i for i, _ in _ids_and_names(other)["train"]}


def test_parse_twice_does_not_redraw():
    exp = _drawn(3)
    before = list(exp.pipeline["train"]["lr"].options)
    exp.parse()
    assert exp.pipeline["train"]["lr"].options == before


def test_dump_writes_drawn_values_and_reloads_to_the_same_variants():
    exp = _drawn(11)
    lr = exp.pipeline["train"]["lr"].options
    width = exp.pipeline["model"]["width"].options
    text = yaml.dump(exp)
    assert "!s" not in text
    assert text.count("!g") == 2
    for value in lr + width:
        assert f"- {value}\n" in text
    reloaded = yaml.load(text)
    assert isinstance(reloaded, Experiment)
    assert reloaded.pipeline["train"]["lr"].options == lr
    assert reloaded.pipeline["model"]["width"].options == width
    assert _ids_and_names(reloaded) == _ids_and_names(exp)
    reloaded.parse()
    assert _ids_and_names(reloaded) == _ids_and_names(exp)
    with_header = yaml.load(yaml.dump_with_extensions(exp))
    assert _ids_and_names(with_header) == _ids_and_names(exp)


def test_dump_and_reload_keeps_nested_and_link_ids():
    exp = load(NESTED.replace("model: !g", "lr: !g [0.5, 0.25]\n        model: !g"))
    exp.parse()
    assert _ids_and_names(yaml.load(yaml.dump(exp))) == _ids_and_names(exp)


# ---------------------------------------------------------------------- distributions
DIST_CONFIG = """
    !Experiment
    name: dists
    seed: {seed}
    pipeline:
      model: !ToyModel
        width: !g [1, 2]
        depth: !uniform [0, 1]
      train: !ToyTrainer
        model: !@ model
    num_samples: {{model: 3}}
    {extra}
"""


def test_distributions_without_search_are_sampled_with_the_seed():
    exp = load(DIST_CONFIG.format(seed=5, extra=""))
    exp.parse()
    assert exp.variant_counts() == {"model": 6, "train": 6}
    variants = expand_all(exp)["model"]
    assert len(variants) == 6
    depths = []
    for v in variants:
        assert v.distributions == {}
        assert option_free(v.schema)
        depth = v.schema["depth"]
        assert isinstance(depth, float) and 0.0 <= depth <= 1.0
        assert v.params == {"width": v.schema["width"], "depth": depth}
        assert "depth=" in v.name
        depths.append(depth)
    assert len(set(depths)) == 6
    assert sorted(v.schema["width"] for v in variants) == [1, 1, 1, 2, 2, 2]
    again = load(DIST_CONFIG.format(seed=5, extra=""))
    assert [v.schema["depth"] for v in expand_all(again)["model"]] == depths
    assert _ids_and_names(again) == _ids_and_names(exp)
    other = load(DIST_CONFIG.format(seed=6, extra=""))
    assert set(v.schema["depth"] for v in expand_all(other)["model"]).isdisjoint(depths)


def test_distributions_stay_for_a_search_algorithm():
    exp = load(DIST_CONFIG.format(seed=5, extra=""))
    schema = exp.pipeline["model"]
    bases = stage_variants("model", schema, {}, num_samples=3, seed=5, searched=True)
    assert len(bases) == 2
    assert count_variants(exp.pipeline, {}, {"model": 3}, ["model"]) == {"model": 3, "train": 3}
    for base in bases:
        assert list(base.distributions) == ["depth"]
        path, dist = base.distributions["depth"]
        assert path == ("depth",) and isinstance(dist, Uniform) and dist.values == [0, 1]
        assert isinstance(base.schema["depth"], Uniform)
        made = sampled_variant(base, {"depth": 0.25})
        assert made.schema["depth"] == 0.25
        assert made.schema["width"] == base.schema["width"]
        assert isinstance(base.schema["depth"], Uniform)  # the base is not changed
        assert option_free(made.schema)
        assert made.distributions == {}
        assert made.params == {"width": base.schema["width"], "depth": 0.25}
        assert made.stage == "model" and made.id != base.id
        assert SAFE_NAME.match(made.name) and "depth=0.25" in made.name
        assert sampled_variant(base, {"depth": 0.25}).id == made.id
        assert sampled_variant(base, {"depth": 0.5}).id != made.id


def test_sampled_variant_keeps_its_lineage():
    models = stage_variants("model", yaml.load("!ToyModel {width: !g [1, 2]}"), {})
    schema = yaml.load("!ToyTrainer {model: !@ model, lr: !loguniform [0.001, 0.1]}")
    bases = stage_variants("train", schema, {"model": models}, searched=True)
    assert len(bases) == 2
    for base in bases:
        made = sampled_variant(base, {"lr": 0.01})
        assert made.schema["lr"] == 0.01
        assert made.parents == base.parents and made.upstream == base.upstream
        assert made.inherited == base.inherited and made.inherited["model.width"] in (1, 2)


def test_searched_stage_without_distributions_counts_its_grid():
    # The runner runs a searched stage's variants that have no distributions as their own trials
    # (ExperimentRunner.run_stage: only variants with distributions become search bases), so the
    # count must be the grid size, and downstream stages inherit all of them.
    pipeline = {"model": yaml.load("!ToyModel {width: !g [1, 2, 3]}"),
                "train": yaml.load("!ToyTrainer {model: !@ model}")}
    assert count_variants(pipeline, {}, {}, ["model"]) == {"model": 3, "train": 3}


def test_searched_stage_with_mixed_alternatives_counts_both():
    # One alternative has a distribution (num_samples trials from the search algorithm), the other has
    # none (one trial of its own): 2 + 1.
    schema = yaml.load("!ToyTrainer {model: !g [!ToyModel {width: !uniform [1, 2]}, !ToyModel {width: 3}]}")
    assert count_variants({"train": schema}, {}, {"train": 2}, ["train"]) == {"train": 3}


def test_sampled_variants_of_two_trials_with_equal_values_stay_apart():
    exp = yaml.load(textwrap.dedent("""\
        !Experiment
        name: salt
        pipeline:
          model: !ToyModel
            width: !uniform [0, 1]
        search:
          model: !ray.BasicVariantGenerator {}
        """))
    base = stage_variants("model", exp.pipeline["model"], {}, searched=True)[0]
    first = sampled_variant(base, {"width": 0.5}, "trial_1")
    second = sampled_variant(base, {"width": 0.5}, "trial_2")
    assert first.id != second.id and first.name != second.name
    assert first.name.startswith("width=0.5-") and second.name.startswith("width=0.5-")
    assert sampled_variant(base, {"width": 0.5}, "trial_1").id == first.id
