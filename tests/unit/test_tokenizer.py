"""Unit tests for flambe.tokenizer: word, char, n-gram and label tokenizers."""

from __future__ import annotations

import pytest

import flambe
from flambe.compile import yaml
from flambe.tokenizer import (
    ENGLISH_STOP_WORDS,
    CharTokenizer,
    LabelTokenizer,
    NGramsTokenizer,
    Tokenizer,
    WordTokenizer,
)


# ---------------------------------------------------------------------- Tokenizer
def test_tokenizer_is_abstract():
    with pytest.raises(TypeError):
        Tokenizer()


def test_tokenizer_call_is_tokenize():
    tok = WordTokenizer()
    assert tok("Hello, world") == tok.tokenize("Hello, world") == ["Hello", ",", "world"]


# ---------------------------------------------------------------------- WordTokenizer
def test_word_docs_sentences():
    # The 9-entry vocabulary of the docs' TextField example comes from these 7 distinct tokens.
    tok = WordTokenizer()
    assert tok.tokenize("Flambe is awesome") == ["Flambe", "is", "awesome"]
    assert tok.tokenize("This framework rocks!") == ["This", "framework", "rocks", "!"]


def test_word_splits_punctuation():
    assert WordTokenizer().tokenize('He said: "stop" (now); ok?') == \
        ["He", "said", ":", '"', "stop", '"', "(", "now", ")", ";", "ok", "?"]


@pytest.mark.parametrize("text, tokens", [
    ("don't", ["do", "n't"]),
    ("can't", ["ca", "n't"]),
    ("WON'T", ["WO", "N'T"]),
    ("isn't it", ["is", "n't", "it"]),
    ("I'm here", ["I", "'m", "here"]),
    ("she's", ["she", "'s"]),
    ("we'll they're you've I'd", ["we", "'ll", "they", "'re", "you", "'ve", "I", "'d"]),
    ("I cannot", ["I", "can", "not"]),
])
def test_word_contractions_penn_style(text, tokens):
    assert WordTokenizer().tokenize(text) == tokens


def test_word_keeps_pretokenized_sst_text():
    text = "they wo n't sit still , however entertainingly presented ; it 's bug-eyed ."
    assert WordTokenizer().tokenize(text) == text.split()


@pytest.mark.parametrize("text, tokens", [
    ("re-imagining of 1930s films", ["re-imagining", "of", "1930s", "films"]),
    ("pi is 3.14 and $1,000,000", ["pi", "is", "3.14", "and", "$", "1,000,000"]),
    ("the U.S. and e.g. this", ["the", "U.S.", "and", "e.g.", "this"]),
    ("wait... what -- no", ["wait", "...", "what", "--", "no"]),
    ("end.", ["end", "."]),
    ("Héllo wörld, ça va?", ["Héllo", "wörld", ",", "ça", "va", "?"]),
])
def test_word_keeps_words_numbers_and_abbreviations_whole(text, tokens):
    assert WordTokenizer().tokenize(text) == tokens


def test_word_empty_and_blank():
    assert WordTokenizer().tokenize("") == []
    assert WordTokenizer().tokenize("  \t\n ") == []


def test_word_accepts_kwargs_for_compatibility():
    assert WordTokenizer(language="english").tokenize("a b") == ["a", "b"]


# ---------------------------------------------------------------------- CharTokenizer
def test_char_tokenizer_keeps_spaces():
    assert CharTokenizer().tokenize("ab c!") == ["a", "b", " ", "c", "!"]
    assert CharTokenizer().tokenize("") == []


# ---------------------------------------------------------------------- NGramsTokenizer
def test_ngrams_default_is_words():
    assert NGramsTokenizer().tokenize("hi how are you?") == ["hi", "how", "are", "you", "?"]


def test_bigrams():
    assert NGramsTokenizer(ngrams=2).tokenize("hi how are you?") == ["hi how", "how are", "are you", "you ?"]


def test_ngram_list_grouped_by_n_in_order():
    assert NGramsTokenizer(ngrams=[1, 2]).tokenize("hi how are") == ["hi", "how", "are", "hi how", "how are"]
    assert NGramsTokenizer(ngrams=[3, 1]).tokenize("a b c") == ["a b c", "a", "b", "c"]


def test_ngrams_longer_than_text():
    assert NGramsTokenizer(ngrams=4).tokenize("one two three") == []


def test_ngrams_exclude_default_stopwords_case_insensitive():
    tok = NGramsTokenizer(ngrams=[1, 2], exclude_stopwords=True)
    assert tok.tokenize("The cat is on the mat") == ["cat", "mat", "cat mat"]


def test_ngrams_custom_stopwords():
    tok = NGramsTokenizer(exclude_stopwords=True, stop_words=["CAT"])
    assert tok.tokenize("the cat sat") == ["the", "sat"]


def test_ngrams_stopwords_ignored_unless_excluded():
    assert NGramsTokenizer(stop_words=["cat"]).tokenize("the cat") == ["the", "cat"]


def test_builtin_stop_words():
    assert {"the", "a", "is", "not", "n't"} <= ENGLISH_STOP_WORDS
    assert "cat" not in ENGLISH_STOP_WORDS


@pytest.mark.parametrize("bad", [0, -1, [], [1, 0], "2", True])
def test_ngrams_rejects_bad_sizes(bad):
    with pytest.raises(ValueError):
        NGramsTokenizer(ngrams=bad)


def test_ngrams_static_tokenize_on_text():
    assert NGramsTokenizer._tokenize("a b c", 2) == ["a b", "b c"]


# ---------------------------------------------------------------------- LabelTokenizer
def test_label_single():
    assert LabelTokenizer().tokenize("positive") == ["positive"]
    assert LabelTokenizer().tokenize("a,b") == ["a,b"]


def test_label_multilabel_strips_and_drops_empty():
    assert LabelTokenizer(multilabel_sep=",").tokenize(" sports, news,,tech ") == ["sports", "news", "tech"]


def test_label_numbers_become_strings():
    assert LabelTokenizer().tokenize(3) == ["3"]


def test_label_empty_separator_rejected():
    with pytest.raises(ValueError):
        LabelTokenizer(multilabel_sep="")


# ---------------------------------------------------------------------- YAML and save/load
def test_tokenizers_build_from_yaml():
    tok = yaml.load("!NGramsTokenizer {ngrams: [1, 2], exclude_stopwords: true}")()
    assert isinstance(tok, NGramsTokenizer)
    assert tok("the red fox") == ["red", "fox", "red fox"]
    assert yaml.load("!LabelTokenizer {multilabel_sep: '|'}")()("a|b") == ["a", "b"]
    assert yaml.load("!CharTokenizer")()("ab") == ["a", "b"]
    assert yaml.load("!WordTokenizer {}")()("a.") == ["a", "."]


def test_tokenizer_save_load_round_trip(tmp_path):
    tok = NGramsTokenizer(ngrams=[2], exclude_stopwords=True, stop_words=["x"])
    flambe.save(tok, str(tmp_path / "tok"))
    loaded = flambe.load(str(tmp_path / "tok"))
    assert isinstance(loaded, NGramsTokenizer)
    assert loaded.sizes == [2]
    assert loaded.tokenize("a x b c") == ["a b", "b c"]
