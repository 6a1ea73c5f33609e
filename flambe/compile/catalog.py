"""Where flambe's torch-based components live, so their tags resolve without importing them first.

``!Trainer`` must work in a config that never imported :mod:`flambe.learn`, yet importing every
component package up front would import torch and pandas before ``flambe --help`` answers. This table
maps each bare tag of those packages to the module that defines it; the registry imports that module
the first time one of its tags is looked up. ``tests/unit/test_catalog.py`` checks that the table
lists every registered class of these packages, and nothing else.
"""

from __future__ import annotations

from typing import Dict, Tuple

#: module -> the tags its classes register (class names and aliases)
CATALOG: Dict[str, Tuple[str, ...]] = {
    "flambe.dataset": ("Dataset", "TabularDataset"),
    "flambe.field": ("Field", "TextField", "LabelField", "BoWField"),
    "flambe.tokenizer": ("Tokenizer", "WordTokenizer", "CharTokenizer", "NGramsTokenizer", "LabelTokenizer"),
    "flambe.sampler": ("Sampler", "BaseSampler", "BatchSampler", "EpisodicSampler"),
    "flambe.metric": ("Metric", "Accuracy", "AUC", "BinaryMetric", "BinaryAccuracy", "BinaryPrecision",
                      "BinaryRecall", "Perplexity", "MultiLabelCrossEntropy", "MultiLabelNLLLoss"),
    "flambe.learn": ("Trainer", "Evaluator", "Script", "DistillationTrainer"),
    "flambe.nn": ("Embeddings", "Embedder", "RNNEncoder", "PooledRNNEncoder", "CNNEncoder", "TextCNNEncoder",
                  "MLPEncoder", "MLPDecoder", "SoftmaxLayer", "MixtureOfSoftmax", "Sequential", "FirstPooling",
                  "LastPooling", "SumPooling", "AvgPooling", "MaxPooling", "Transformer", "TransformerEncoder",
                  "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer", "DistanceModule",
                  "MeanModule", "EuclideanDistance", "EuclideanMean", "CosineDistance", "CosineMean",
                  "HyperbolicDistance", "HyperbolicMean"),
    "flambe.model": ("LogisticRegression",),
    "flambe.nlp": ("SSTDataset", "TRECDataset", "NewsGroupDataset", "TextClassifier", "PTBDataset", "LMField",
                   "LanguageModel", "PrototypicalTextClassifier"),
    "flambe.vision": ("MNISTDataset", "ImageClassifier"),
    "flambe.pipeline": ("Pipe", "HookedPassThroughPipe", "LoopingPipe", "ShufflerPipe", "IndexMapperPipe",
                        "BatchingPipe", "RepeaterPipe", "FunctionPipe", "LabelerPipe", "Normalizer", "TensorPipe",
                        "Title2LabelPipe", "TextLinesPipe", "FastaPipe", "BioSeqPipe", "CachingPipe", "Junction",
                        "HubJunction", "RandomHubJunction", "ClockworkHubJunction", "SwitchJunction", "Model",
                        "PipeDataset", "PipeSampler", "TablePipe", "DBPipe", "SQLDataset", "Factory",
                        "LocalMemoryFactory", "SQLFactory", "Message", "TensorMessage", "MessageCache",
                        "UnlimitedCache", "LRUCache", "LFUCache", "RRCache", "ExperimentFolder"),
}

#: tag -> module, derived from :data:`CATALOG`
TAG_MODULES: Dict[str, str] = {tag: module for module, tags in CATALOG.items() for tag in tags}
