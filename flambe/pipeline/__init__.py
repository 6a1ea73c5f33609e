"""The Fireworks-style data layer: Messages and the pipes that stream, cache, shuffle and batch them, SQL
sources and sinks, Fireworks models, experiment folders and hyperparameter factories."""

from flambe.compile.registry import register
from flambe.pipeline.batching import BatchingPipe, RepeaterPipe
from flambe.pipeline.bridge import PipeDataset, PipeSampler
from flambe.pipeline.cache import LFUCache, LRUCache, MessageCache, RRCache, UnlimitedCache
from flambe.pipeline.caching import CachingPipe
from flambe.pipeline.database import TablePipe, create_table, reflect_table
from flambe.pipeline.experiment_folder import Experiment, ExperimentFolder, load_experiment
from flambe.pipeline.factory import Factory, LocalMemoryFactory, SQLFactory
from flambe.pipeline.junction import (
    ClockworkHubJunction,
    HubJunction,
    Junction,
    RandomHubJunction,
    SwitchJunction,
)
from flambe.pipeline.message import Message, cat, merge
from flambe.pipeline.model import Model
from flambe.pipeline.pipe import HookedPassThroughPipe, Pipe
from flambe.pipeline.pipes import IndexMapperPipe, LoopingPipe, ShufflerPipe, train_test_split
from flambe.pipeline.preprocessing import FunctionPipe, LabelerPipe, Normalizer, TensorPipe, Title2LabelPipe
from flambe.pipeline.readers import BioSeqPipe, FastaPipe, TextLinesPipe
from flambe.pipeline.sql_dataset import DBPipe, SQLDataset
from flambe.pipeline.tensor_message import TensorMessage

__all__ = [
    "Message", "TensorMessage", "cat", "merge",
    "Pipe", "HookedPassThroughPipe", "LoopingPipe", "ShufflerPipe", "IndexMapperPipe", "train_test_split",
    "BatchingPipe", "RepeaterPipe", "FunctionPipe", "LabelerPipe", "Normalizer", "TensorPipe", "Title2LabelPipe",
    "TextLinesPipe", "FastaPipe", "BioSeqPipe",
    "MessageCache", "UnlimitedCache", "LRUCache", "LFUCache", "RRCache", "CachingPipe",
    "Junction", "HubJunction", "RandomHubJunction", "ClockworkHubJunction", "SwitchJunction",
    "Model", "PipeDataset", "PipeSampler",
    "create_table", "reflect_table", "TablePipe", "DBPipe", "SQLDataset",
    "Experiment", "ExperimentFolder", "load_experiment", "Factory", "LocalMemoryFactory", "SQLFactory",
]

# Data classes that are not Components still get tags, so a config can build them:
# ``!Message {text: [a, b], label: [0, 1]}``, ``!LRUCache {max_rows: 1000}``, ``!ExperimentFolder {...}``.
for _cls in (Message, TensorMessage, MessageCache, UnlimitedCache, LRUCache, LFUCache, RRCache, ExperimentFolder):
    register(_cls, _cls.__name__)
del _cls
