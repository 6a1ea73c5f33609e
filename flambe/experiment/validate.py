"""Checks an Experiment passes before any stage runs (``parse()`` and ``--dry-run``)."""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Dict, Mapping, Optional, Sequence

from flambe.compile.errors import ConfigError, LinkError, Location
from flambe.compile.link import ClusterResource, Link, LinkResolver
from flambe.compile.options import Distribution, SearchOption
from flambe.compile.schema import Schema, _walk
from flambe.experiment.variants import links_in

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else f"stages are: {', '.join(choices) or '(none)'}"


def check_name(name: Any, location: Optional[Location]) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"Experiment name {name!r} is not valid", location=location, key_path=["name"],
                          hint="use letters, digits, '_', '-' and '.', starting with a letter or digit "
                               "(it names the output folder output__<name>)")


def check_stage_keys(option: str, mapping: Any, stages: Sequence[str], location: Optional[Location],
                     positive_int: bool = False) -> None:
    """``search``/``schedulers``/``reduce``/``num_samples`` must name real stages."""
    if mapping is None:
        return
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"'{option}' must map stage names to values", location=location, key_path=[option],
                          hint=f"e.g. {option}: {{{stages[-1] if stages else 'stage'}: ...}}")
    for key, value in mapping.items():
        if key not in stages:
            raise ConfigError(f"'{option}' names stage '{key}', which is not in the pipeline", location=location,
                              key_path=[option, key], hint=_suggest(str(key), stages))
        if positive_int and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"'{option}: {{{key}: {value!r}}}' must be a positive integer", location=location,
                              key_path=[option, key])


def check_links(pipeline: Mapping[str, Any], resources: Mapping[str, Any], remote: Mapping[str, Any],
                location: Optional[Location]) -> None:
    """Every link names an earlier stage, its own stage or a resource, and its keys exist."""
    stages = list(pipeline)
    root: Dict[str, Any] = {**resources, **remote, **pipeline}
    resolver = LinkResolver(root)
    for position, (stage, schema) in enumerate(pipeline.items()):
        for link in links_in(schema):
            head = link.schematic_path[0]
            if head in remote and head not in pipeline and head not in resources:
                raise LinkError(f"Link '!@ {link.text}' in stage '{stage}' points to remote resource '{head}', "
                                "which exists only on a cluster", location=link.location or location,
                                hint="run with --cluster, or move the resource under resources: local:")
            if head in pipeline:
                index = stages.index(head)
                if index > position:
                    raise LinkError(f"Link '!@ {link.text}' in stage '{stage}' points to stage '{head}', which "
                                    "comes later in the pipeline", location=link.location or location,
                                    hint=f"move '{head}' above '{stage}', or link only to earlier stages")
            elif head not in resources:
                known = stages[:position + 1] + list(resources)
                raise LinkError(f"Link '!@ {link.text}' in stage '{stage}' points to '{head}', which is neither "
                                "an earlier stage nor a resource", location=link.location or location,
                                hint=_suggest(str(head), known))
            if _walks_options(root, link):
                continue
            resolver.target(link)  # raises a LinkError naming the missing key


def _walks_options(root: Mapping[str, Any], link: Link) -> bool:
    """Whether the link's keys pass through a search option (checked per variant, at build time)."""
    node: Any = root
    for key in link.schematic_path:
        if isinstance(node, (SearchOption, Link)):
            return True
        container = node.keywords if isinstance(node, Schema) else node
        try:
            node = container[key]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, SearchOption)


def resolve_resources(resources: Any, base_dir: str, location: Optional[Location], remote_run: bool = False
                      ) -> Dict[str, Dict[str, Any]]:
    """``{'local': {name: absolute path}, 'remote': {name: path}}``, checked.

    Local paths are taken relative to the config's folder and must exist. ``!cluster`` values and the
    ``remote`` section are for cluster runs.
    """
    out: Dict[str, Dict[str, Any]] = {"local": {}, "remote": {}}
    if resources is None:
        return out
    if not isinstance(resources, Mapping) or set(resources) - {"local", "remote"}:
        unknown = sorted(set(resources) - {"local", "remote"}) if isinstance(resources, Mapping) else []
        raise ConfigError("'resources' must have a 'local' and/or a 'remote' section"
                          + (f" (found {', '.join(map(str, unknown))})" if unknown else ""),
                          location=location, key_path=["resources"],
                          hint="resources:\n  local:\n    data: path/to/file\n  remote:\n    emb: /path/on/hosts")
    for section in ("local", "remote"):
        entries = resources.get(section) or {}
        if not isinstance(entries, Mapping):
            raise ConfigError(f"'resources: {section}' must map names to paths", location=location,
                              key_path=["resources", section])
        for name, value in entries.items():
            if isinstance(value, ClusterResource) and not remote_run:
                raise ConfigError(f"Resource '{name}' is '!cluster {value.path}', which exists only on a cluster",
                                  location=value.location or location, key_path=["resources", section, name],
                                  hint="run with --cluster cluster.yaml, or give a local path")
            if section == "local" and isinstance(value, str):
                path = value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))
                path = os.path.expanduser(path)
                if not os.path.exists(path):
                    raise ConfigError(f"Local resource '{name}' does not exist: {path}", location=location,
                                      key_path=["resources", "local", name],
                                      hint="relative paths are taken from the config file's folder")
                value = path
            out[section][name] = value
    return out


def check_options_placement(experiment_schema: Any, location: Optional[Location]) -> None:
    """Search options belong inside the pipeline."""
    if not isinstance(experiment_schema, Schema):
        return
    for key, value in experiment_schema.keywords.items():
        if key == "pipeline":
            continue
        for node in _walk(value):
            if isinstance(node, SearchOption) and not (key == "schedulers" and isinstance(node, Distribution)):
                raise ConfigError(f"A search option is written under '{key}'; options are only expanded inside "
                                  "the pipeline", location=getattr(node, "location", None) or location,
                                  key_path=[key])


def stage_direction(schema: Any) -> bool:
    """``lower_is_better`` of a stage: its argument, else its class default, else False.

    A stage written as ``!g`` of components takes the direction its alternatives share.
    """
    from flambe.compile.options import GridSearchOptions
    from flambe.compile.schema import signature_of
    if isinstance(schema, GridSearchOptions):
        directions = {stage_direction(option) for option in schema.options}
        if len(directions) > 1:
            raise ConfigError("The alternatives of this stage disagree on 'lower_is_better', so its variants "
                              "cannot be compared", location=schema.location,
                              hint="give every alternative the same lower_is_better")
        return directions.pop()
    if not isinstance(schema, Schema):
        return False
    value = schema.keywords.get("lower_is_better")
    if isinstance(value, bool):
        return value
    if isinstance(value, SearchOption):
        raise ConfigError("'lower_is_better' cannot be a search option: it decides how variants are compared",
                          location=value.location or schema.location)
    sig = signature_of(schema.factory)
    if sig is not None and "lower_is_better" in sig.parameters:
        default = sig.parameters["lower_is_better"].default
        if isinstance(default, bool):
            return default
    attr = getattr(schema.component_subclass, "lower_is_better", False)
    return attr if isinstance(attr, bool) else False
