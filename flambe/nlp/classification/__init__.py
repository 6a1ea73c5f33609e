"""Text classification: the SST, TREC and 20 Newsgroups datasets and TextClassifier."""

from flambe.nlp.classification.datasets import NewsGroupDataset, SSTDataset, TRECDataset
from flambe.nlp.classification.model import TextClassifier

__all__ = ["SSTDataset", "TRECDataset", "NewsGroupDataset", "TextClassifier"]
