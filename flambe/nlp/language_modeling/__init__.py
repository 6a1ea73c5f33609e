"""Language modeling: the PTB dataset, LMField and LanguageModel."""

from flambe.nlp.language_modeling.datasets import PTBDataset
from flambe.nlp.language_modeling.fields import LMField
from flambe.nlp.language_modeling.model import LanguageModel

__all__ = ["PTBDataset", "LMField", "LanguageModel"]
