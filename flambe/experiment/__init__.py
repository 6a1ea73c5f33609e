"""Experiments: a pipeline of stages expanded into variants and run on Ray Tune.

Ray is imported only when a stage runs; importing this package is cheap.
"""

from flambe.compile.options import GridSearchOptions, SampledUniformSearchOptions
from flambe.experiment.experiment import Experiment
from flambe.experiment.progress import ProgressState
from flambe.experiment.variants import Variant

__all__ = ["Experiment", "ProgressState", "Variant", "GridSearchOptions", "SampledUniformSearchOptions"]
