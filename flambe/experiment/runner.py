"""The driver loop: stage after stage, variants to trials, resume, reduce, failures, the terminal view."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import shutil
import sys
import threading
import warnings
from typing import Any, Dict, List, Optional

from flambe.experiment.console import ExperimentView
from flambe.experiment.progress import FINISHED, ProgressState, VariantRecord
from flambe.experiment.trial import TrialRunner, TrialSpec, checkpoint_path
from flambe.experiment.validate import stage_direction
from flambe.experiment.variants import Variant, stage_variants

logger = logging.getLogger(__name__)


class ExperimentRunner:
    """Runs an :class:`~flambe.experiment.Experiment` whose config has been checked.

    Parameters
    ----------
    experiment : Experiment
        What to run.
    output : str
        Its output directory (created, guarded and holding ``experiment.yaml`` already).
    resources : dict
        Resource name → value, for links.
    resumed : list of str
        Stages whose completed variants are reused.
    debug : bool
        Run trials here, one at a time, stopping in pdb before each ``run()``.
    verbose : bool
        Show trial logs on the console.
    """

    def __init__(self, experiment: Any, output: str, resources: Dict[str, Any], resumed: List[str],
                 debug: bool = False, verbose: bool = False) -> None:
        self.experiment = experiment
        self.output = output
        self.resources = resources
        self.resumed = set(resumed)
        self.debug = debug
        self.verbose = verbose
        self.progress = ProgressState(experiment.name, output, list(experiment.pipeline))
        self.view = ExperimentView(self.progress)
        self.survivors: Dict[str, List[Variant]] = {}
        self.variants: Dict[str, Dict[str, Variant]] = {}
        self._ray_started = False

    # ------------------------------------------------------------------ the loop
    def run(self) -> List[VariantRecord]:
        """Run every stage; return the failed variants' records."""
        status = "failed"
        try:
            for stage in self.experiment.pipeline:
                stopped = self.run_stage(stage)
                if stopped:
                    break
            failures = self.progress.failures()
            status = "failed" if failures else "done"
            self.view.summary()
            return failures
        finally:
            self.progress.finish(status)
            if self._ray_started:
                import ray
                ray.shutdown()

    def run_stage(self, stage: str) -> bool:
        """Run one stage; return True when the experiment must stop (a failure with stop_on_failure)."""
        exp = self.experiment
        schema = exp.pipeline[stage]
        searched = stage in exp.search
        variants = stage_variants(stage, schema, self.survivors, exp.num_samples.get(stage, 1), exp.seed,
                                  searched=searched)
        lower = stage_direction(schema)
        if stage not in self.resumed:  # the stage starts over: nothing an earlier run left is kept
            shutil.rmtree(os.path.join(self.output, stage), ignore_errors=True)
            self.progress.store.clear_stage(stage)
        self.progress.stage_started(stage, lower)
        to_run: List[Variant] = []
        bases: List[Variant] = []
        for variant in variants:
            if searched and variant.distributions:
                bases.append(variant)
                continue
            if not self._reuse(variant, stage):
                to_run.append(variant)
        samples = 0
        if bases:
            done = self._previous_samples(stage, {v.id for v in variants})
            samples = max(exp.num_samples.get(stage, 1) - len(done), 0)
        self.view.start_stage(stage)
        try:
            if to_run or samples:
                if self.debug:
                    self._run_here(to_run, bases, samples)
                else:
                    self._run_on_tune(stage, to_run, bases, samples, lower)
        finally:
            self.view.stop_stage()
        record = self.progress.stages[stage]
        finished = [r for r in record.variants.values() if r.status in FINISHED]
        kept = self._reduce(stage, finished, lower)
        self.survivors[stage] = [r.variant for r in kept]
        self.variants[stage] = {r.variant.id: r.variant for r in record.variants.values()}
        self.progress.stage_finished(stage, [r.variant.id for r in kept] if stage in exp.reduce else None)
        return exp.stop_on_failure and any(r.status == "failed" for r in record.variants.values())

    def _previous_samples(self, stage: str, enumerated: set) -> List[VariantRecord]:
        """Reuse the finished sampled variants an earlier run left in a resumed search stage (they count
        towards ``num_samples``); ``enumerated`` are the stage's own grid variants, handled apart."""
        from flambe.experiment.progress import read_json
        if stage not in self.resumed:
            return []
        folder = os.path.join(self.output, stage)
        out = []
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            saved = read_json(os.path.join(folder, name, "variant.json"))
            if saved and saved.get("id") not in enumerated and saved.get("status") in FINISHED \
                    and os.path.isdir(checkpoint_path(os.path.join(folder, name))):
                variant = _restored_variant(saved, self.experiment.pipeline[stage])
                record = self.progress.add_variant(variant)
                record._digest = saved.get("config_digest")
                self.progress.variant_reused(record, saved)
                out.append(record)
        return out

    def _reuse(self, variant: Variant, stage: str) -> bool:
        """Register the variant; True when an earlier run completed it (and its stage is resumed)."""
        record = self.progress.add_variant(variant)
        saved = self.progress.previous(variant) if stage in self.resumed else None
        if saved and saved.get("config_digest") != record.digest:
            self.view.note(f"{stage}/{variant.name}: its config changed since the earlier run; it runs again")
            saved = None
        if saved and saved.get("status") in FINISHED and saved.get("id") == variant.id \
                and os.path.isdir(record.checkpoint):
            self.progress.variant_reused(record, saved)
            return True
        if stage not in self.resumed or not saved or saved.get("status") == "failed":
            shutil.rmtree(record.directory, ignore_errors=True)  # starts over
            self.progress.variant_reset(record)
        else:
            self.progress.variant_continued(record, saved)  # interrupted: continues from its checkpoint
        return False

    def _reduce(self, stage: str, finished: List[VariantRecord], lower: bool) -> List[VariantRecord]:
        k = self.experiment.reduce.get(stage)
        if not k:
            return finished
        scored = [r for r in finished if r.metric is not None]
        if len(scored) < len(finished):
            self.view.note(f"reduce {stage}: {len(finished) - len(scored)} variant(s) reported no metric() and "
                           "are ranked last")
        ranked = sorted(scored, key=lambda r: r.metric, reverse=not lower)
        ranked += [r for r in finished if r.metric is None]
        return ranked[:k]

    # ------------------------------------------------------------------ backends
    def _spec(self, variant: Variant) -> TrialSpec:
        upstream = {}
        for up_stage, up_id in variant.upstream.items():
            up_variant = self.variants[up_stage][up_id]
            upstream[up_stage] = checkpoint_path(self.progress.variant_dir(up_variant))
        return TrialSpec(stage=variant.stage, variant=variant, variant_dir=self.progress.variant_dir(variant),
                         upstream=upstream, resources=dict(self.resources), seed=self.experiment.seed)

    def _run_here(self, to_run: List[Variant], bases: List[Variant], samples: int) -> None:
        """``debug: true``: trials in this process, one at a time, pdb before each ``run()``."""
        import random

        from flambe.experiment.variants import sampled_variant
        rng = random.Random(f"flambe-debug:{self.experiment.seed}")
        todo = list(to_run)
        for index in range(samples):
            base = bases[index % len(bases)]
            values = {key: dist.sample(rng) for key, (_, dist) in base.distributions.items()}
            todo.append(sampled_variant(base, values, f"debug-{index}"))
        for variant in todo:
            record = self.progress.add_variant(variant)
            self.progress.variant_started(record)
            runner: Optional[TrialRunner] = None
            try:
                runner = TrialRunner(self._spec(variant), debug=True)
                more = True
                while more:
                    more, metric = runner.step()
                    self.progress.variant_result(record, runner.calls, metric)
                self.progress.variant_finished(record, "done")
            except Exception as exc:  # noqa: BLE001 - a trial's failure is recorded, not raised
                import traceback
                self.progress.variant_finished(record, "failed", "".join(traceback.format_exception(exc)))
                if self.experiment.stop_on_failure:
                    return
            finally:
                if runner is not None:
                    runner.close()

    def _run_on_tune(self, stage: str, to_run: List[Variant], bases: List[Variant], samples: int,
                     lower: bool) -> None:
        self._init_ray()
        from flambe.experiment.tune import StagePlan, run_stage
        exp = self.experiment
        storage = os.path.join(self.output, ".tune")
        shutil.rmtree(os.path.join(storage, stage), ignore_errors=True)
        plan = StagePlan(stage=stage, specs={v.id: self._spec(v) for v in to_run},
                         variants={v.id: v for v in to_run}, lower_is_better=lower, storage=storage,
                         devices=dict(exp.devices), scheduler=_build(exp.schedulers.get(stage)),
                         search=_build(exp.search.get(stage)), bases={b.id: (b, self._spec(b)) for b in bases},
                         num_samples=samples, max_failures=exp.max_failures, stop_on_failure=exp.stop_on_failure,
                         verbose=self.verbose)
        if plan.bases and plan.specs:
            # A search stage whose grid part has no distributions: those variants run as their own trials.
            run_stage(dataclasses.replace(plan, bases={}, search=None, num_samples=0), self.progress)
            plan.specs, plan.variants = {}, {}
        if plan.specs or plan.num_samples:
            run_stage(plan, self.progress)
        for record in self.progress.stages[stage].variants.values():
            if record.status == "running":  # stopped by flambe (a failure elsewhere): not complete
                self.progress.variant_finished(record, "interrupted")
            elif record.status == "pending" and os.path.isdir(record.directory):
                self.progress.variant_changed(record)

    def _init_ray(self) -> None:
        import ray
        if ray.is_initialized():
            return
        # Ray Tune takes a second or two to import; do it while ray.init waits for its processes.
        importer = threading.Thread(target=importlib.import_module, args=("flambe.experiment.tune",), daemon=True)
        importer.start()
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
        # Workers import what the driver can import (extensions on sys.path, the config's folder).
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        current = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + ([current] if current else [])))
        cluster = getattr(self.experiment, "cluster", None)
        if cluster is not None:
            cluster.connect(log_to_driver=self.verbose)
        else:
            ray.init(include_dashboard=False, log_to_driver=self.verbose,
                     logging_level=logging.DEBUG if self.verbose else logging.ERROR)
        self._ray_started = True
        importer.join()
        if not self.verbose:  # a failed trial is shown once, by flambe, with its log path
            for name in ("ray.tune", "ray.train", "ray.air"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            warnings.filterwarnings("ignore", module=r"ray\.")


def _build(schema: Any) -> Any:
    """Build a scheduler or search algorithm from its config (distributions become Tune domains)."""
    if schema is None:
        return None
    from flambe.compile.options import Distribution
    from flambe.compile.schema import Schema
    if not isinstance(schema, Schema):
        return schema

    def convert(value: Any) -> Any:
        if isinstance(value, Distribution):
            return value.to_tune()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value
    schema.keywords = {k: convert(v) for k, v in schema.keywords.items()}
    return schema()


def _restored_variant(saved: Dict[str, Any], schema: Any) -> Variant:
    """A finished sampled variant of an earlier run, as a record for this one (its config is not rebuilt)."""
    return Variant(stage=saved["stage"], id=saved["id"], name=saved["name"], schema=schema,
                   parents=dict(saved.get("parents", {})), upstream=dict(saved.get("upstream", {})),
                   inherited=dict(saved.get("inherited", {})))
