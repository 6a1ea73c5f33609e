"""Search options: ``!g``, ``!s`` and the distribution tags.

Parsing lives here; expanding options into variants is the Experiment's job. Every option knows how
to dump itself back to the YAML it came from.
"""

from __future__ import annotations

import math
import random
from typing import Any, List, Optional, Sequence

from flambe.compile.errors import Location, SearchOptionError
from flambe.compile.registry import Registrable


def _sequence(constructor: Any, node: Any, tag: str) -> List[Any]:
    from ruamel.yaml.nodes import SequenceNode

    from flambe.compile.yaml import node_location
    if not isinstance(node, SequenceNode):
        raise SearchOptionError(f"'!{tag}' expects a list, e.g. '!{tag} [1, 2, 3]'",
                                location=node_location(constructor, node))
    return constructor.construct_sequence(node, deep=True)


class SearchOption(Registrable, should_register=False):
    """Base class of all search options."""

    location: Optional[Location] = None

    def __eq__(self, other: Any) -> bool:
        def fields(obj: Any) -> dict:
            return {k: v for k, v in vars(obj).items() if k != "location"}
        return type(self) is type(other) and fields(self) == fields(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


class GridSearchOptions(SearchOption, tag_override="g"):
    """``!g [a, b, c]``: one variant per value. Values may be components, links or other options."""

    def __init__(self, options: Sequence[Any], location: Optional[Location] = None) -> None:
        if not len(options):
            raise SearchOptionError("'!g' needs at least one value", location=location)
        self.options = list(options)
        self.location = location

    def __iter__(self):
        return iter(self.options)

    def __len__(self) -> int:
        return len(self.options)

    def __repr__(self) -> str:
        return f"GridSearchOptions({self.options!r})"

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> "GridSearchOptions":
        from flambe.compile.yaml import node_location
        return cls(_sequence(constructor, node, "g"), node_location(constructor, node))

    @classmethod
    def to_yaml(cls, representer: Any, node: "GridSearchOptions", tag: str) -> Any:
        return representer.represent_sequence("!g", node.options)


class SampledUniformSearchOptions(SearchOption, tag_override="s"):
    """``!s [low, high, k(, decimals)]``: k distinct values drawn uniformly in [low, high].

    Ints when both bounds are ints (both bounds included), else floats rounded to ``decimals`` (default
    10). Values are drawn with an explicit seed (the Experiment's), so the same config gives the same
    variants.
    """

    def __init__(self, low: float, high: float, k: int, decimals: int = 10,
                 location: Optional[Location] = None) -> None:
        if not isinstance(k, int) or k < 1:
            raise SearchOptionError(f"'!s' needs a positive integer count k, got {k!r}", location=location)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise SearchOptionError("'!s' bounds must be numbers: '!s [low, high, k]'", location=location)
        if low > high:
            raise SearchOptionError(f"'!s' low bound {low} is above its high bound {high}", location=location)
        self.low, self.high, self.k, self.decimals = low, high, k, int(decimals)
        self.location = location

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def sample(self, seed: int = 0) -> List[Any]:
        """Draw the k values with ``seed`` (the same seed always gives the same values)."""
        rng = random.Random(f"flambe-s:{seed}:{self.low}:{self.high}:{self.k}:{self.decimals}")
        if self.is_int:
            if self.k > self.high - self.low + 1:
                raise SearchOptionError(
                    f"'!s [{self.low}, {self.high}, {self.k}]' asks for {self.k} distinct integers, but the range "
                    f"holds only {self.high - self.low + 1}", location=self.location,
                    hint="lower k or widen the range (or use !g to list values)")
            return rng.sample(range(self.low, self.high + 1), self.k)
        values: List[Any] = []
        for _ in range(1000 * self.k):  # distinct after rounding, or a clear error
            value = round(rng.uniform(self.low, self.high), self.decimals)
            if value not in values:
                values.append(value)
                if len(values) == self.k:
                    return values
        raise SearchOptionError(f"'!s' cannot draw {self.k} distinct values in [{self.low}, {self.high}] "
                                f"rounded to {self.decimals} decimals", location=self.location,
                                hint="lower k or use more decimals")

    def to_grid(self, seed: int = 0) -> GridSearchOptions:
        """The drawn values as a ``!g`` option (how an Experiment dumps a drawn ``!s``)."""
        return GridSearchOptions(self.sample(seed), self.location)

    def __repr__(self) -> str:
        return f"SampledUniformSearchOptions({self.low}, {self.high}, {self.k}, {self.decimals})"

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> "SampledUniformSearchOptions":
        from flambe.compile.yaml import node_location
        location = node_location(constructor, node)
        values = _sequence(constructor, node, "s")
        if len(values) not in (3, 4):
            raise SearchOptionError("'!s' expects [low, high, k] or [low, high, k, decimals]", location=location)
        return cls(*values, location=location)

    @classmethod
    def to_yaml(cls, representer: Any, node: "SampledUniformSearchOptions", tag: str) -> Any:
        values = [node.low, node.high, node.k] + ([node.decimals] if node.decimals != 10 else [])
        return representer.represent_sequence("!s", values)


class Distribution(SearchOption, should_register=False):
    """A sampling domain for stages searched by a search algorithm (maps to a Ray Tune domain)."""

    yaml_tag = ""

    def __init__(self, values: Sequence[Any], location: Optional[Location] = None) -> None:
        self.values = list(values)
        self.location = location
        self.validate()

    def validate(self) -> None:
        """Check the bounds; raise :class:`SearchOptionError` if they are wrong."""
        if len(self.values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in self.values):
            raise SearchOptionError(f"'!{self.yaml_tag}' expects [low, high]", location=self.location)
        if self.values[0] >= self.values[1]:
            raise SearchOptionError(f"'!{self.yaml_tag}' low bound must be below its high bound",
                                    location=self.location)

    def to_tune(self) -> Any:
        """The equivalent Ray Tune sampling domain (imports ray)."""
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        """Draw one value with ``rng`` (used where no search algorithm is configured)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.values!r})"

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> "Distribution":
        from flambe.compile.yaml import node_location
        return cls(_sequence(constructor, node, cls.yaml_tag), node_location(constructor, node))

    @classmethod
    def to_yaml(cls, representer: Any, node: "Distribution", tag: str) -> Any:
        return representer.represent_sequence("!" + cls.yaml_tag, node.values)


class Uniform(Distribution, tag_override="uniform"):
    """``!uniform [low, high]``: a float drawn uniformly."""

    yaml_tag = "uniform"

    def to_tune(self) -> Any:
        from ray import tune
        return tune.uniform(*self.values)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(*self.values)


class LogUniform(Distribution, tag_override="loguniform"):
    """``!loguniform [low, high]``: a float whose logarithm is uniform (both bounds positive)."""

    yaml_tag = "loguniform"

    def validate(self) -> None:
        super().validate()
        if self.values[0] <= 0:
            raise SearchOptionError("'!loguniform' bounds must be positive", location=self.location)

    def to_tune(self) -> Any:
        from ray import tune
        return tune.loguniform(*self.values)

    def sample(self, rng: random.Random) -> float:
        low, high = (math.log(v) for v in self.values)
        return math.exp(rng.uniform(low, high))


class RandInt(Distribution, tag_override="randint"):
    """``!randint [low, high]``: an integer in [low, high) (Ray Tune's convention)."""

    yaml_tag = "randint"

    def validate(self) -> None:
        super().validate()
        if not all(isinstance(v, int) for v in self.values):
            raise SearchOptionError("'!randint' bounds must be integers", location=self.location)

    def to_tune(self) -> Any:
        from ray import tune
        return tune.randint(*self.values)

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(*self.values)


class Choice(Distribution, tag_override="choice"):
    """``!choice [a, b, ...]``: one of the values, chosen by the search algorithm."""

    yaml_tag = "choice"

    def validate(self) -> None:
        if not self.values:
            raise SearchOptionError("'!choice' needs at least one value", location=self.location)

    def to_tune(self) -> Any:
        from ray import tune
        return tune.choice(self.values)

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)
