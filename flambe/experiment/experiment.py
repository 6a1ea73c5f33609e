"""``!Experiment``: a pipeline of stages, expanded into variants and run stage by stage on Ray Tune."""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from flambe.compile.errors import ConfigError, FlambeError
from flambe.experiment import validate
from flambe.experiment.variants import Variant, count_variants, draw_sampled, links_in, stage_variants
from flambe.runnable.cluster_runnable import ClusterRunnable
from flambe.runnable.errors import UnsuccessfulRunnableError

logger = logging.getLogger(__name__)
DEFAULT_SAVE_PATH = "flambe-output"


class Experiment(ClusterRunnable):
    """A pipeline of stages run one after the other, every stage as many variants as its options give.

    Parameters
    ----------
    name : str
        Names the output folder ``output__<name>``.
    pipeline : Dict[str, Schema]
        Stage name → component, in order. Links (``!@ stage[key].attr``) may point to earlier stages,
        to the stage's own earlier keys, and to resources.
    resume : bool, str or list of str, optional
        Reuse completed variants: ``true`` for every stage, a stage name for every stage up to and
        including it, or a list of stage names. Unfinished variants continue from their checkpoint.
    debug : bool
        Run trials in this process one at a time and stop in ``pdb`` before each ``run()`` (local only).
    devices : Dict[str, float], optional
        Resources per trial, e.g. ``{cpu: 2, gpu: 1}`` (default one CPU).
    save_path : str, optional
        Where ``output__<name>`` goes (default ``./flambe-output``).
    resources : Dict[str, Dict[str, str]], optional
        ``local`` (paths on this machine, relative to the config's folder) and ``remote`` (paths on the
        cluster's hosts) names that links can point to.
    search : Dict[str, Schema], optional
        Stage → Ray Tune search algorithm (``!ray.OptunaSearch``...), sampling the stage's
        distributions (``!uniform``...) ``num_samples`` times.
    schedulers : Dict[str, Schema], optional
        Stage → Ray Tune scheduler (``!ray.ASHAScheduler``, ``!ray.HyperBandScheduler``...).
    reduce : Dict[str, int], optional
        Stage → k: only the k best variants by ``metric()`` (in the component's ``lower_is_better``
        direction) flow downstream.
    env : optional
        Set when the experiment runs on a cluster.
    max_failures : int
        How many times a failing trial is retried (from its last checkpoint).
    merge_plot : bool
        Kept for compatibility with Flambé configs (TensorBoard plot grouping).
    stop_on_failure : bool
        Stop at the first failed trial (default), or run everything possible and report at the end.
    seed : int
        Seeds ``!s`` draws and distribution samples, so a config always gives the same variants, and
        (with each variant's id) ``random``, numpy and torch in every trial before it builds its variant.
    num_samples : Dict[str, int], optional
        Stage → number of samples, for stages with distributions or a search algorithm.
    """

    def __init__(self, name: str, pipeline: Dict[str, Any], resume: Union[bool, str, List[str], None] = None,
                 debug: bool = False, devices: Optional[Dict[str, float]] = None, save_path: Optional[str] = None,
                 resources: Optional[Dict[str, Dict[str, Any]]] = None, search: Optional[Dict[str, Any]] = None,
                 schedulers: Optional[Dict[str, Any]] = None, reduce: Optional[Dict[str, int]] = None,
                 env: Any = None, max_failures: int = 1, merge_plot: bool = True, stop_on_failure: bool = True,
                 seed: int = 0, num_samples: Optional[Dict[str, int]] = None) -> None:
        super().__init__(env=env)
        self.name = name
        self.pipeline = pipeline
        self.resume = resume
        self.debug = debug
        self.devices = devices or {}
        self.save_path = save_path
        self.resources = resources
        self.search = search or {}
        self.schedulers = schedulers or {}
        self.reduce = reduce or {}
        self.max_failures = max_failures
        self.merge_plot = merge_plot
        self.stop_on_failure = stop_on_failure
        self.seed = seed
        self.num_samples = num_samples or {}
        self._parsed: Optional[Dict[str, Dict[str, Any]]] = None

    # ------------------------------------------------------------------ validation
    @property
    def location(self) -> Any:
        schema = getattr(self, "_flambe_schema", None)
        return getattr(schema, "location", None)

    @property
    def config_dir(self) -> str:
        location = self.location
        if location is not None and location.file and os.path.exists(location.file):
            return os.path.dirname(os.path.abspath(location.file))
        return os.getcwd()

    def where(self, key: str) -> Any:
        """The location of one of the experiment's keys in its config file (or of the experiment)."""
        schema = getattr(self, "_flambe_schema", None)
        return getattr(schema, "key_locations", {}).get(key) or self.location

    def parse(self, remote: bool = False) -> None:
        """Check everything before any stage runs; raise a :class:`FlambeError` naming the problem."""
        if self._parsed is not None and self._parsed.get("remote") == remote:
            return
        where = self.location
        validate.check_name(self.name, self.where("name"))
        if not isinstance(self.pipeline, Mapping) or not self.pipeline:
            raise ConfigError("'pipeline' must map stage names to components", location=where,
                              key_path=["pipeline"], hint="pipeline:\n  model: !MyModel {...}")
        stages = list(self.pipeline)
        for option in ("search", "schedulers"):
            validate.check_stage_keys(option, getattr(self, option), stages, self.where(option))
        validate.check_stage_keys("reduce", self.reduce, stages, self.where("reduce"), positive_int=True)
        validate.check_stage_keys("num_samples", self.num_samples, stages, self.where("num_samples"),
                                  positive_int=True)
        for flag in ("debug", "stop_on_failure", "merge_plot"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"'{flag}' must be true or false, not {getattr(self, flag)!r}",
                                  location=self.where(flag), key_path=[flag])
        if self.debug and remote:
            raise ConfigError("'debug: true' works only for local runs", location=self.where("debug"),
                              key_path=["debug"], hint="remove debug, or run without --cluster")
        if not isinstance(self.max_failures, int) or isinstance(self.max_failures, bool) or self.max_failures < 0:
            raise ConfigError("'max_failures' must be a non-negative integer", location=self.where("max_failures"),
                              key_path=["max_failures"])
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError("'seed' must be an integer", location=self.where("seed"), key_path=["seed"])
        if not isinstance(self.devices, Mapping):
            raise ConfigError("'devices' must map cpu/gpu to numbers", location=self.where("devices"),
                              key_path=["devices"], hint="devices: {cpu: 1, gpu: 0}")
        for key, value in self.devices.items():
            if key not in ("cpu", "gpu") or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"'devices: {{{key}: {value!r}}}' is not valid", location=self.where("devices"),
                                  key_path=["devices", key], hint="devices: {cpu: 1, gpu: 0}")
        self._resume_stages(stages)
        validate.check_options_placement(getattr(self, "_flambe_schema", None), where)
        for stage in stages:
            self.pipeline[stage] = draw_sampled(self.pipeline[stage], self.seed, stage)
            validate.stage_direction(self.pipeline[stage])
        resources = validate.resolve_resources(self.resources, self.config_dir, self.where("resources"),
                                               remote_run=remote)
        validate.check_links(self.pipeline, resources["local"], resources["remote"] if not remote else {},
                             where)
        for stage in stages:
            searched = stage in self.search
            has_dist = any(v.distributions for v in stage_variants(stage, self.pipeline[stage], {}, searched=True))
            if stage in self.num_samples and not (searched or has_dist):
                raise ConfigError(f"'num_samples' is set for stage '{stage}', which has no distributions and no "
                                  "search algorithm", location=self.where("num_samples"),
                                  key_path=["num_samples", stage],
                                  hint="num_samples applies to stages with !uniform/!loguniform/!randint/!choice "
                                       "options or a search algorithm; use !g to list values")
        self._parsed = {**resources, "remote": remote}

    def _resume_stages(self, stages: Sequence[str]) -> List[str]:
        resume = self.resume
        if resume is None or resume is False:
            return []
        if resume is True:
            return list(stages)
        if isinstance(resume, str):
            if resume not in stages:
                raise ConfigError(f"'resume: {resume}' is not a stage", location=self.where("resume"),
                                  key_path=["resume"], hint=validate._suggest(resume, stages))
            return list(stages[:stages.index(resume) + 1])
        if isinstance(resume, (list, tuple)):
            for name in resume:
                if name not in stages:
                    raise ConfigError(f"'resume' lists '{name}', which is not a stage", location=self.where("resume"),
                                      key_path=["resume"], hint=validate._suggest(str(name), stages))
            return list(resume)
        raise ConfigError("'resume' must be true, a stage name or a list of stage names", location=self.where("resume"),
                          key_path=["resume"])

    def variant_counts(self) -> Dict[str, int]:
        """How many variants each stage runs (assuming no failures), without running anything."""
        if self._parsed is None:
            self.parse()
        return count_variants(self.pipeline, self.reduce, self.num_samples, self.search, self.seed)

    def dry_run(self) -> str:
        """The stage DAG with the number of variants per stage, as text."""
        counts = self.variant_counts()
        lines = [f"Experiment '{self.name}': {len(self.pipeline)} stage(s), nothing was run."]
        for stage, schema in self.pipeline.items():
            ups = sorted({link.schematic_path[0] for link in links_in(schema)
                          if link.schematic_path[0] in self.pipeline and link.schematic_path[0] != stage},
                         key=list(self.pipeline).index)
            extras = []
            if stage in self.reduce:
                extras.append(f"reduce to {self.reduce[stage]}")
            if stage in self.schedulers:
                extras.append(f"scheduler {getattr(self.schedulers[stage], 'tag', self.schedulers[stage])}")
            if stage in self.search:
                extras.append(f"search {getattr(self.search[stage], 'tag', self.search[stage])}")
            tag = _describe(schema)
            arrow = f" <- {', '.join(ups)}" if ups else ""
            detail = f" ({'; '.join(extras)})" if extras else ""
            lines.append(f"  {stage} !{tag}: {counts[stage]} variant(s){arrow}{detail}")
        lines.append(f"Output would go to {self.output_dir}")
        return "\n".join(lines)

    @property
    def output_dir(self) -> str:
        base = self.save_path or DEFAULT_SAVE_PATH
        base = os.path.expanduser(base)
        if not os.path.isabs(base):
            base = os.path.join(os.getcwd(), base)
        return os.path.join(base, f"output__{self.name}")

    # ------------------------------------------------------------------ running
    def run(self, force: bool = False, debug: bool = False, verbose: bool = False, **kwargs: Any) -> Optional[str]:
        """Run every stage; return the output directory.

        Raises
        ------
        FlambeError
            For a problem with the config or the output directory.
        UnsuccessfulRunnableError
            When a trial failed (after all the stages that could run have run).
        """
        if self._parsed is None:
            self.parse()
        from flambe.experiment.runner import ExperimentRunner
        output = self.output_dir
        resumed = self._resume_stages(list(self.pipeline))
        self._prepare_output(output, force, bool(resumed))
        self._write_config(output)
        runner = ExperimentRunner(self, output, resources=self._parsed["local"], resumed=resumed,
                                  debug=self.debug or debug, verbose=verbose)
        failures = runner.run()
        if failures:
            first = failures[0]
            raise UnsuccessfulRunnableError(
                f"{len(failures)} variant(s) failed; first: {first.variant.stage}/{first.variant.name} "
                f"(log: {first.log})")
        return output

    def _prepare_output(self, output: str, force: bool, resume: bool) -> None:
        if os.path.isdir(output) and os.listdir(output) and not resume:
            if not force:
                raise FlambeError(f"The output directory {output} already exists and is not empty",
                                  hint="run with --force to replace it, or set 'resume: true' (or a stage "
                                       "name) in the config to continue it")
            shutil.rmtree(output)
        os.makedirs(output, exist_ok=True)

    def _write_config(self, output: str) -> None:
        from flambe.compile.yaml import dump_with_extensions
        from flambe.experiment.progress import write_text
        write_text(os.path.join(output, "experiment.yaml"), dump_with_extensions(self))


def _describe(schema: Any) -> str:
    from flambe.compile.options import GridSearchOptions
    if isinstance(schema, GridSearchOptions):
        return "g [" + ", ".join(_describe(option) for option in schema.options) + "]"
    return getattr(schema, "tag", type(schema).__name__)


__all__ = ["Experiment", "Variant"]
