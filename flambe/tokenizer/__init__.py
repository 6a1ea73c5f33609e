"""Tokenizers: strings to lists of token strings."""

from flambe.tokenizer.char import CharTokenizer
from flambe.tokenizer.label import LabelTokenizer
from flambe.tokenizer.tokenizer import Tokenizer
from flambe.tokenizer.word import ENGLISH_STOP_WORDS, NGramsTokenizer, WordTokenizer

__all__ = ["Tokenizer", "WordTokenizer", "CharTokenizer", "NGramsTokenizer", "LabelTokenizer",
           "ENGLISH_STOP_WORDS"]
