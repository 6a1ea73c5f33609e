"""NLP components: classification, few-shot classification and language modeling."""

from flambe.nlp.classification import NewsGroupDataset, SSTDataset, TextClassifier, TRECDataset
from flambe.nlp.fewshot import PrototypicalTextClassifier
from flambe.nlp.language_modeling import LanguageModel, LMField, PTBDataset

__all__ = [
    "SSTDataset", "TRECDataset", "NewsGroupDataset", "TextClassifier", "PrototypicalTextClassifier",
    "PTBDataset", "LMField", "LanguageModel",
]
