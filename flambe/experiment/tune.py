"""Running one stage's variants as Ray Tune trials (public API only: Tuner, a class Trainable,
TuneConfig, RunConfig, FailureConfig, CheckpointConfig, Callback, Stopper).

The driver hands Tune one trial per variant; a search-algorithm stage gets ``num_samples`` trials
whose distributions the algorithm samples. Workers step a :class:`TrialRunner`; this driver-side
module records what they report (the only writer of progress and results).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ray import tune

from flambe.compile.errors import FlambeError
from flambe.experiment.progress import ProgressState, VariantRecord, last_line
from flambe.experiment.trial import ERROR_FILE, TrialRunner, TrialSpec
from flambe.experiment.variants import Variant, is_scalar, sampled_variant

logger = logging.getLogger(__name__)
METRIC = "metric"
CALLS = "flambe_calls"
MORE = "flambe_more"  # the component's own answer (Tune sets "done" itself when a scheduler stops a trial)


@dataclass
class StagePlan:
    """What the driver asks the backend to run for one stage."""

    stage: str
    specs: Dict[str, TrialSpec]                     # variant id → spec (enumerated variants)
    variants: Dict[str, Variant]                    # variant id → variant
    lower_is_better: bool
    storage: str                                    # Ray Tune's own working folder
    devices: Dict[str, float] = field(default_factory=dict)
    scheduler: Any = None
    search: Any = None
    bases: Dict[str, Tuple[Variant, TrialSpec]] = field(default_factory=dict)  # search stages
    num_samples: int = 0
    max_failures: int = 0
    stop_on_failure: bool = True
    verbose: bool = False


def _overrides(variant: Variant, config: Mapping[str, Any]) -> Dict[Tuple[Any, ...], Any]:
    """Own scalar choices that the config changed (a PBT mutation): path → new value."""
    out = {}
    for choice in variant.choices:
        if choice.key in config and config[choice.key] != choice.value:
            out[choice.path] = config[choice.key]
    return out


def resolve_trial(config: Mapping[str, Any], specs: Mapping[str, TrialSpec],
                  bases: Mapping[str, Tuple[Variant, TrialSpec]], trial_id: str = "") -> Tuple[Variant, TrialSpec]:
    """The variant (and spec) a trial's config stands for, on the driver and in workers alike."""
    if "variant" in config:
        spec = specs[config["variant"]]
        return spec.variant, spec
    base, template = bases[config["base"]]
    variant = sampled_variant(base, config.get("params", {}), trial_id)
    spec = TrialSpec(stage=template.stage, variant=variant,
                     variant_dir=os.path.join(os.path.dirname(template.variant_dir), variant.name),
                     upstream=dict(template.upstream), resources=dict(template.resources), seed=template.seed)
    return variant, spec


class FlambeTrainable(tune.Trainable):
    """A trial: one variant of one stage, stepped one ``run()`` call at a time."""

    def setup(self, config: Dict[str, Any], specs: Any = None, bases: Any = None, echo: bool = False) -> None:
        self._specs, self._bases, self._echo = specs or {}, bases or {}, echo
        self._runner: Optional[TrialRunner] = None
        self._begin(config)

    def _begin(self, config: Dict[str, Any]) -> None:
        variant, spec = resolve_trial(config, self._specs, self._bases, self.trial_id)
        self._runner = TrialRunner(spec, _overrides(variant, config), echo=self._echo)

    def step(self) -> Dict[str, Any]:
        more, metric = self._runner.step()
        result: Dict[str, Any] = {CALLS: self._runner.calls, MORE: more, "done": not more}
        if metric is not None:
            result[METRIC] = metric
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self._runner.save(os.path.join(checkpoint_dir, "checkpoint.flambe"))

    def load_checkpoint(self, checkpoint: Any) -> None:
        self._runner.restore(os.path.join(checkpoint, "checkpoint.flambe"))

    def reset_config(self, new_config: Dict[str, Any]) -> bool:
        self.cleanup()
        self._begin(new_config)
        return True

    def cleanup(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


class StopAll(tune.Stopper):
    """Stops the whole stage at the first failure when ``stop_on_failure`` is on."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.failed


class Recorder(tune.Callback):
    """Driver side: turns Tune's trial events into progress, variant files and results.

    It lives in the driver only; Tune pickles its configuration, so the live state is left out.
    """

    def __init__(self, plan: StagePlan, progress: ProgressState, stopper: StopAll) -> None:
        self.plan, self.progress, self.stopper = plan, progress, stopper
        self.by_trial: Dict[str, VariantRecord] = {}

    def __getstate__(self) -> Dict[str, Any]:
        return {"plan": None, "progress": None, "stopper": None, "by_trial": {}}

    def _record(self, trial: Any) -> VariantRecord:
        if trial.trial_id not in self.by_trial:
            variant, _ = resolve_trial(trial.config, self.plan.specs, self.plan.bases, trial.trial_id)
            self.by_trial[trial.trial_id] = self.progress.add_variant(variant)
        return self.by_trial[trial.trial_id]

    def on_trial_start(self, iteration: int, trials: List[Any], trial: Any, **info: Any) -> None:
        self.progress.variant_started(self._record(trial))

    def on_trial_result(self, iteration: int, trials: List[Any], trial: Any, result: Dict[str, Any],
                        **info: Any) -> None:
        self.progress.variant_result(self._record(trial), int(result.get(CALLS, 0)), result.get(METRIC))

    def on_trial_complete(self, iteration: int, trials: List[Any], trial: Any, **info: Any) -> None:
        record = self._record(trial)
        record.params.update({k: v for k, v in trial.config.items()
                              if k in record.variant.params and v != record.variant.params[k]})
        ended = not (trial.last_result or {}).get(MORE, True)
        self.progress.variant_finished(record, "done" if ended else "stopped")

    def on_trial_recover(self, iteration: int, trials: List[Any], trial: Any, **info: Any) -> None:
        record = self._record(trial)
        logger.warning("%s/%s failed; retrying (log: %s)", self.plan.stage, record.variant.name, record.log)

    def on_trial_error(self, iteration: int, trials: List[Any], trial: Any, **info: Any) -> None:
        record = self._record(trial)
        self.progress.variant_finished(record, "failed", _error_text(record, trial))
        if self.plan.stop_on_failure:
            self.stopper.failed = True


def _error_text(record: VariantRecord, trial: Any) -> str:
    for path in (os.path.join(record.directory, ERROR_FILE), getattr(trial, "error_file", None)):
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read().strip()
            if text:
                return text
    return "the trial's process died without reporting an error (out of memory, or killed?)"


def run_stage(plan: StagePlan, progress: ProgressState) -> None:
    """Run every trial of ``plan`` on Ray Tune; results land in ``progress``."""
    trainable = tune.with_parameters(FlambeTrainable, specs=plan.specs, bases=plan.bases, echo=plan.verbose)
    resources = {k: v for k, v in plan.devices.items() if v}
    trainable = tune.with_resources(trainable, resources or {"cpu": 1})
    mode = "min" if plan.lower_is_better else "max"
    if plan.bases:
        bases = sorted(plan.bases)
        params: Dict[str, Any] = {}
        for base, _ in plan.bases.values():
            params.update({key: dist.to_tune() for key, (_, dist) in base.distributions.items()})
        space: Dict[str, Any] = {"base": tune.choice(bases) if len(bases) > 1 else bases[0], "params": params}
        num_samples = plan.num_samples
    else:
        space = {"variant": tune.grid_search(sorted(plan.specs))}
        for choice_key in {c.key for v in plan.variants.values() for c in v.choices if is_scalar(c.value)}:
            space[choice_key] = tune.sample_from(_lookup(plan.variants, choice_key))
        num_samples = 1
    stopper = StopAll()
    # Tune insists every result carries the metric it is told about: name it only where a scheduler or a
    # search algorithm compares variants (a model stage has no metric to report).
    compares = plan.scheduler is not None or plan.search is not None
    tuner = tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=METRIC if compares else None, mode=mode if compares else None,
                                    scheduler=plan.scheduler, search_alg=plan.search, num_samples=num_samples,
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=plan.stage, storage_path=plan.storage, verbose=0, stop=stopper,
            callbacks=[Recorder(plan, progress, stopper)],
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None if _exploits(plan.scheduler) else 1,
                                                    checkpoint_at_end=False)))
    try:
        tuner.fit()
    except tune.TuneError as exc:
        text = str(exc)
        hint = None
        if "did not include the specified metric" in text:
            hint = (f"stage '{plan.stage}' has a scheduler or search algorithm, so its component must return a "
                    "number from metric() after every run() call")
        raise FlambeError(f"Ray Tune failed while running stage '{plan.stage}': {last_line(text)}",
                          hint=hint) from exc


def _exploits(scheduler: Any) -> bool:
    """Whether the scheduler copies checkpoints between trials (PBT and its kin): keep them all."""
    from ray.tune.schedulers import PopulationBasedTraining
    return isinstance(scheduler, PopulationBasedTraining)


class _lookup:
    """``tune.sample_from`` function giving a variant's own value for one key (so PBT can mutate it)."""

    def __init__(self, variants: Mapping[str, Variant], key: str) -> None:
        self.values = {vid: next((c.value for c in v.choices if c.key == key), None) for vid, v in variants.items()}

    def __call__(self, spec: Any) -> Any:
        return self.values[spec.config["variant"]]
