"""Fields: raw column values to tensors (vocabularies, labels, bags of words)."""

from flambe.field.bow import BoWField
from flambe.field.field import Field
from flambe.field.label import LabelField
from flambe.field.text import TextField

__all__ = ["Field", "TextField", "LabelField", "BoWField"]
