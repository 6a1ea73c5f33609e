"""Variants: expanding a stage's search options (its own and inherited ones) into concrete configs.

Options are expanded recursively, so an option whose values hold components or other options is
split into its alternatives (``!g [!A {x: !g [1, 2]}, !B {y: !g [1, 2]}]`` gives 4 variants, not 8).
A stage that links to upstream stages inherits their variants: one variant per consistent
combination of upstream variants (a shared ancestor is the same variant on every path) times its own
choices. Identity comes from the chosen values, never from timestamps or ``repr``, so a variant has
the same id and directory name on every run.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from flambe.compile.link import Link
from flambe.compile.options import Distribution, GridSearchOptions, SampledUniformSearchOptions, SearchOption
from flambe.compile.schema import Schema

Path = Tuple[Any, ...]
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")
_NAME_LIMIT = 48


@dataclass
class Choice:
    """One option resolved to one of its values."""

    path: Path
    value: Any

    @property
    def key(self) -> str:
        """The option's place in its stage, dotted (``embedder.encoder.n_layers``)."""
        return ".".join(str(p) for p in self.path)

    @property
    def short_key(self) -> str:
        names = [p for p in self.path if isinstance(p, str)]
        return names[-1] if names else self.key

    @property
    def plain(self) -> Any:
        """A JSON value for records: the value itself for scalars, a short text otherwise."""
        return self.value if is_scalar(self.value) else label_of(self.value)


@dataclass
class Variant:
    """One concrete configuration of one stage.

    Attributes
    ----------
    stage : str
        The stage it belongs to.
    id : str
        Stable id (a hash of the stage, its own choices and its upstream variants).
    name : str
        Short, readable, filesystem-safe directory name (stable across runs).
    schema : Schema
        The stage's config with every option replaced by the chosen value.
    choices : list of Choice
        The stage's own choices.
    parents : dict
        Every upstream stage it depends on (directly or not) → that stage's variant id.
    upstream : dict
        The stages its links name directly → variant id (what it loads).
    inherited : dict
        ``stage.key`` → value for the choices of every ancestor.
    distributions : dict
        Option key → (path, distribution) left for a search algorithm to sample.
    """

    stage: str
    id: str
    name: str
    schema: Any
    choices: List[Choice] = field(default_factory=list)
    parents: Dict[str, str] = field(default_factory=dict)
    upstream: Dict[str, str] = field(default_factory=dict)
    inherited: Dict[str, Any] = field(default_factory=dict)
    distributions: Dict[str, Tuple[Path, Distribution]] = field(default_factory=dict)

    @property
    def params(self) -> Dict[str, Any]:
        """The stage's own choices as ``key → JSON value``."""
        return {c.key: c.plain for c in self.choices}

    def describe(self) -> Dict[str, Any]:
        """What ``variant.json`` records about the variant's identity."""
        return {"id": self.id, "stage": self.stage, "name": self.name, "params": self.params,
                "inherited": dict(self.inherited), "parents": dict(self.parents),
                "upstream": dict(self.upstream)}


# ---------------------------------------------------------------------- labels and ids
def is_scalar(value: Any) -> bool:
    """Whether a value is a plain YAML scalar (its own label and JSON form)."""
    return value is None or isinstance(value, (bool, int, float, str))


def label_of(value: Any) -> str:
    """A short text for a chosen value (a number, a component's tag, a link)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, Schema):
        return value.tag.split(".")[-1]
    if isinstance(value, Link):
        return "@" + value.text
    return type(value).__name__


def canonical(value: Any) -> Any:
    """A JSON value that identifies ``value`` exactly (scalars as they are, configs as their YAML)."""
    if is_scalar(value):
        return value
    from flambe.compile.yaml import dump
    out = io.StringIO()
    dump(value, out)
    return out.getvalue()


def variant_id(stage: str, choices: Sequence[Choice], upstream: Mapping[str, str]) -> str:
    """The stable id of a variant: a hash of what it is made of."""
    body = json.dumps({"stage": stage, "choices": [[c.key, canonical(c.value)] for c in choices],
                       "upstream": sorted(upstream.items())}, sort_keys=True, default=str)
    return hashlib.sha1(body.encode()).hexdigest()[:12]


def config_digest(variant: "Variant") -> str:
    """A hash of everything a variant is built from (its whole config, not only its choices): resume
    reuses a finished variant only while this is unchanged."""
    body = json.dumps({"config": canonical(variant.schema), "upstream": sorted(variant.upstream.items())},
                      sort_keys=True, default=str)
    return hashlib.sha1(body.encode()).hexdigest()[:16]


def variant_name(vid: str, inherited: Mapping[str, Any], choices: Sequence[Choice]) -> str:
    """``n_layers=2,lr=0.01-3fa9c1``: inherited then own values, short and filesystem-safe."""
    parts = [f"{key.rsplit('.', 1)[-1]}={label_of(value)}" for key, value in inherited.items()]
    parts += [f"{c.short_key}={label_of(c.value)}" for c in choices]
    readable = _UNSAFE.sub("_", ",".join(parts)).strip("._") or "default"
    if len(readable) > _NAME_LIMIT:
        readable = readable[:_NAME_LIMIT].rstrip(",._=")
    return f"{readable}-{vid[:6]}"


# ---------------------------------------------------------------------- own options
def has_options(value: Any) -> bool:
    """Whether ``value`` holds a search option anywhere."""
    from flambe.compile.schema import _walk
    return any(isinstance(node, SearchOption) for node in _walk(value))


def draw_sampled(value: Any, seed: int, where: str = "") -> Any:
    """Replace every ``!s`` under ``value`` by the ``!g`` of its drawn values (in place); return it.

    The draw is seeded by the experiment's seed and the option's place (``where``), so two identical
    ``!s`` options on different keys draw different values.
    """
    if isinstance(value, SampledUniformSearchOptions):
        return value.to_grid(f"{seed}:{where}" if where else seed)
    children: Iterable[Tuple[Any, Any]]
    if isinstance(value, Schema):
        children = list(value.keywords.items())
        target: Any = value.keywords
    elif isinstance(value, (dict, list)):
        children = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        target = value
    elif isinstance(value, GridSearchOptions):
        children = list(enumerate(value.options))
        target = value.options
    else:
        return value
    for key, child in children:
        new = draw_sampled(child, seed, f"{where}.{key}" if where else str(key))
        if new is not child:
            target[key] = new
    return value


def expand(value: Any, path: Path = ()) -> List[Tuple[Any, List[Choice]]]:
    """Every concrete form of ``value`` with the choices that make it.

    Grid options multiply; an option's alternatives are expanded one by one (nested options split).
    Distributions stay in place (they are sampled later). Subtrees without options are shared, not
    copied.
    """
    if isinstance(value, GridSearchOptions):
        out: List[Tuple[Any, List[Choice]]] = []
        for option in value.options:
            for concrete, choices in expand(option, path):
                out.append((concrete, [Choice(path, option)] + choices))
        return out
    if isinstance(value, SampledUniformSearchOptions):
        raise AssertionError("!s options are drawn before expansion")
    if not has_options(value) or isinstance(value, Distribution):
        return [(value, [])]
    if isinstance(value, Schema):
        combos = _product([(key, expand(child, path + (key,))) for key, child in value.keywords.items()])
        return [(_copy_schema(value, dict(items)), choices) for items, choices in combos]
    if isinstance(value, dict):
        combos = _product([(key, expand(child, path + (key,))) for key, child in value.items()])
        return [(type(value)(items), choices) for items, choices in combos]
    if isinstance(value, (list, tuple)):
        combos = _product([(i, expand(child, path + (i,))) for i, child in enumerate(value)])
        return [(type(value)(v for _, v in items), choices) for items, choices in combos]
    return [(value, [])]


def _product(parts: List[Tuple[Any, List[Tuple[Any, List[Choice]]]]]
             ) -> List[Tuple[List[Tuple[Any, Any]], List[Choice]]]:
    combos: List[Tuple[List[Tuple[Any, Any]], List[Choice]]] = [([], [])]
    for key, alternatives in parts:
        combos = [(items + [(key, concrete)], choices + extra)
                  for items, choices in combos for concrete, extra in alternatives]
    return combos


def _copy_schema(schema: Schema, keywords: Dict[str, Any]) -> Schema:
    copy = Schema(schema.component_subclass, schema.factory_name, **keywords)
    copy.tag = schema.tag
    copy.location = schema.location
    copy.key_locations = dict(schema.key_locations)
    copy.extensions = dict(schema.extensions)
    return copy


def distributions_in(value: Any, path: Path = ()) -> List[Tuple[Path, Distribution]]:
    """Every distribution under ``value`` with its path."""
    if isinstance(value, Distribution):
        return [(path, value)]
    if isinstance(value, Schema):
        items: Iterable[Tuple[Any, Any]] = value.keywords.items()
    elif isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    return [found for key, child in items for found in distributions_in(child, path + (key,))]


def set_path(schema: Schema, path: Path, value: Any) -> Schema:
    """A copy of ``schema`` with ``path`` set to ``value`` (containers on the way are copied)."""
    def put(node: Any, rest: Path) -> Any:
        if not rest:
            return value
        key = rest[0]
        if isinstance(node, Schema):
            keywords = dict(node.keywords)
            keywords[key] = put(keywords[key], rest[1:])
            return _copy_schema(node, keywords)
        if isinstance(node, list):
            out = list(node)
            out[key] = put(out[key], rest[1:])
            return out
        if isinstance(node, tuple):
            return tuple(put(v, rest[1:]) if i == key else v for i, v in enumerate(node))
        out = type(node)(node)
        out[key] = put(node[key], rest[1:])
        return out
    return put(schema, tuple(path))


def links_in(value: Any) -> List[Link]:
    """Every link under ``value`` (inside chosen values too)."""
    from flambe.compile.schema import _walk
    return [node for node in _walk(value) if isinstance(node, Link)]


# ---------------------------------------------------------------------- a stage's variants
def stage_variants(stage: str, schema: Any, upstream_variants: Mapping[str, Sequence[Variant]],
                   num_samples: int = 1, seed: int = 0, searched: bool = False) -> List[Variant]:
    """The variants of ``stage`` given the surviving variants of every earlier stage.

    Parameters
    ----------
    stage : str
        The stage's name.
    schema : Schema
        Its config as written (``!s`` already drawn).
    upstream_variants : Mapping
        Earlier stage → the variants that flow downstream from it (after reduce, without failures).
    num_samples : int
        For a stage with distributions and no search algorithm: samples drawn per grid combination.
    seed : int
        The experiment's seed (distribution samples).
    searched : bool
        True when a search algorithm samples the distributions (they are left in place).
    """
    out: List[Variant] = []
    for concrete, choices in expand(schema):
        stages = []
        for link in links_in(concrete):
            head = link.schematic_path[0]
            if head in upstream_variants and head != stage and head not in stages:
                stages.append(head)
        for parents, upstream in _combinations(stages, upstream_variants):
            inherited: Dict[str, Any] = {}
            for up_stage, up_id in upstream.items():
                up = _find(upstream_variants[up_stage], up_id)
                inherited.update(up.inherited)
                inherited.update({f"{up_stage}.{k}": v for k, v in up.params.items()})
            dists = distributions_in(concrete)
            if dists and not searched:
                for index in range(num_samples):
                    rng = random.Random(f"flambe-sample:{seed}:{stage}:{index}:"
                                        f"{variant_id(stage, choices, upstream)}")
                    sampled, extra = concrete, []
                    for path, dist in dists:
                        value = dist.sample(rng)
                        sampled = set_path(sampled, path, value)
                        extra.append(Choice(path, value))
                    out.append(_make(stage, sampled, choices + extra, parents, upstream, inherited))
            else:
                variant = _make(stage, concrete, choices, parents, upstream, inherited)
                variant.distributions = {".".join(map(str, p)): (p, d) for p, d in dists}
                out.append(variant)
    return out


def sampled_variant(base: Variant, values: Mapping[str, Any], trial: str = "") -> Variant:
    """The variant a search algorithm made from ``base`` by sampling its distributions.

    ``trial`` (the trial's id) keeps two trials apart when the algorithm proposes the same values twice.
    """
    schema, extra = base.schema, []
    for key, (path, _) in base.distributions.items():
        schema = set_path(schema, path, values[key])
        extra.append(Choice(path, values[key]))
    return _make(base.stage, schema, base.choices + extra, base.parents, base.upstream, base.inherited,
                 salt=trial)


def _make(stage: str, schema: Any, choices: List[Choice], parents: Dict[str, str], upstream: Dict[str, str],
          inherited: Dict[str, Any], salt: str = "") -> Variant:
    vid = variant_id(stage, choices, upstream)
    if salt:
        vid = hashlib.sha1(f"{vid}:{salt}".encode()).hexdigest()[:12]
    return Variant(stage=stage, id=vid, name=variant_name(vid, inherited, choices), schema=schema,
                   choices=list(choices), parents=dict(parents), upstream=dict(upstream),
                   inherited=dict(inherited))


def _find(variants: Sequence[Variant], vid: str) -> Variant:
    for variant in variants:
        if variant.id == vid:
            return variant
    raise KeyError(vid)


def _combinations(stages: Sequence[str], upstream_variants: Mapping[str, Sequence[Variant]]
                  ) -> List[Tuple[Dict[str, str], Dict[str, str]]]:
    """Consistent picks of one variant per linked stage: (all ancestors, direct upstream)."""
    combos: List[Tuple[Dict[str, str], Dict[str, str]]] = [({}, {})]
    for stage in stages:
        grown = []
        for ancestors, direct in combos:
            for variant in upstream_variants[stage]:
                lineage = dict(variant.parents)
                lineage[stage] = variant.id
                if all(ancestors.get(s, v) == v for s, v in lineage.items()):
                    grown.append(({**ancestors, **lineage}, {**direct, stage: variant.id}))
        combos = grown
    return combos


def count_variants(pipeline: Mapping[str, Any], reduce: Mapping[str, int], num_samples: Mapping[str, int],
                   searched: Iterable[str], seed: int = 0) -> Dict[str, int]:
    """How many variants each stage will run (assuming none fails), without building anything."""
    searched = set(searched)
    survivors: Dict[str, List[Variant]] = {}
    counts: Dict[str, int] = {}
    for stage, schema in pipeline.items():
        if stage in searched:
            found = stage_variants(stage, schema, survivors, seed=seed, searched=True)
            bases = [v for v in found if v.distributions]
            samples = num_samples.get(stage, 1) if bases else 0
            # Variants without distributions run as their own trials; the rest are num_samples samples.
            variants = [v for v in found if not v.distributions] + [_placeholder(stage, bases, i)
                                                                     for i in range(samples)]
            counts[stage] = len(variants)
        else:
            variants = stage_variants(stage, schema, survivors, num_samples.get(stage, 1), seed)
            counts[stage] = len(variants)
        keep = reduce.get(stage)
        survivors[stage] = variants[:keep] if keep else variants
    return counts


def _placeholder(stage: str, bases: Sequence[Variant], index: int) -> Variant:
    base = bases[index % len(bases)]
    vid = hashlib.sha1(f"{base.id}:{index}".encode()).hexdigest()[:12]
    return Variant(stage=stage, id=vid, name=f"sample{index}-{vid[:6]}", schema=base.schema,
                   parents=dict(base.parents), upstream=dict(base.upstream), inherited=dict(base.inherited))
