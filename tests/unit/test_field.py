"""Unit tests for flambe.field: TextField, LabelField, BoWField (vocabularies, embeddings, state)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

import flambe
from flambe.compile import yaml
from flambe.field import BoWField, Field, LabelField, TextField
from flambe.tokenizer import CharTokenizer, WordTokenizer

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "harvardnlp-sent-conv"

GLOVE = "the 0.1 0.2 0.3\ncat 1.0 1.0 1.0\nsat -1 0 1\n<unk> 9 9 9\n"


@pytest.fixture
def glove(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text(GLOVE)
    return str(path)


def _ids(tensor):
    return tensor.tolist()


# ---------------------------------------------------------------------- Field
def test_field_is_abstract():
    with pytest.raises(TypeError):
        Field()


class UpperField(Field):
    def process(self, example):
        return torch.tensor([ord(c) for c in example.upper()])


def test_field_subclass_needs_only_process():
    field = UpperField()
    field.setup(["anything"])  # the base setup keeps no state
    assert _ids(field.process("ab")) == [65, 66]


# ---------------------------------------------------------------------- TextField: vocabulary
def test_docs_example():
    # Flambé's docs: vocab_size 9 = pad + unk + 7 tokens (Flambe is awesome This framework rocks !).
    # The docs print process("Flambe rocks") -> [6, 1], which maps the in-vocabulary 'rocks' to unk;
    # ids here follow first appearance, so 'Flambe' is 2 and 'rocks' is 7.
    field = TextField(WordTokenizer())
    field.setup(np.array(["Flambe is awesome", "This framework rocks!"]))
    assert field.vocab_size == 9
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "Flambe": 2, "is": 3, "awesome": 4, "This": 5,
                           "framework": 6, "rocks": 7, "!": 8}
    assert _ids(field.process("Flambe rocks")) == [2, 7]


def test_process_returns_1d_long_tensor():
    field = TextField()
    field.setup(["a b"])
    out = field.process("b a")
    assert out.dtype == torch.long and out.shape == (2,)
    empty = field.process("")
    assert empty.dtype == torch.long and empty.shape == (0,)


def test_specials_order_pad_unk_sos_eos():
    field = TextField(sos_token="<s>", eos_token="</s>")
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    field.setup(["hi there"])
    assert _ids(field.process("hi you")) == [2, 4, 1, 3]
    assert field.specials == ["<pad>", "<unk>", "<s>", "</s>"]


def test_specials_can_be_left_out():
    field = TextField(pad_token=None, eos_token="<eos>")
    assert field.vocab == {"<unk>": 0, "<eos>": 1}
    assert field.pad_idx is None and field.unk_idx == 0
    field.setup(["x"])
    assert _ids(field.process("x y")) == [2, 0, 1]


def test_unknown_tokens_map_to_unk():
    field = TextField()
    field.setup(["known words"])
    assert _ids(field.process("known unknown words !")) == [2, 1, 3, 1]


def test_no_unk_token_raises_on_unknown():
    field = TextField(unk_token=None)
    field.setup(["a"])
    assert _ids(field.process("a a")) == [1, 1]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        field.process("a b")


def test_lower():
    field = TextField(lower=True)
    field.setup(["Hello HELLO hello World"])
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "hello": 2, "world": 3}
    assert _ids(field.process("WORLD Hello")) == [3, 2]


def test_case_kept_without_lower():
    field = TextField()
    field.setup(["Hello hello"])
    assert field.vocab_size == 4


def test_setup_over_several_splits_and_2d_columns():
    field = TextField()
    train = np.array([["a b"], ["b c"]], dtype=object)
    test = np.array([["d"]], dtype=object)
    field.setup(train, test)
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, "d": 5}


def test_setup_is_stateful_and_ids_never_change():
    field = TextField()
    field.setup(["a b"])
    before = dict(field.vocab)
    field.setup(["c b a", "d"])
    assert field.vocab == {**before, "c": 4, "d": 5}
    field.setup(["a b c d"])
    assert field.vocab_size == 6


def test_numbers_are_text():
    field = TextField()
    field.setup(np.array([12, 3.5], dtype=object))
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "12": 2, "3.5": 3}
    assert _ids(field.process(12)) == [2]


def test_char_tokenizer_vocab():
    field = TextField(tokenizer=CharTokenizer(), pad_token=None, unk_token=None)
    field.setup(["abca"])
    assert field.vocab == {"a": 0, "b": 1, "c": 2}


def test_max_seq_len_keeps_start_and_end():
    field = TextField(sos_token="<s>", eos_token="</s>", max_seq_len=4)
    field.setup(["a b c d"])
    assert _ids(field.process("a b c d")) == [2, 4, 5, 3]
    assert _ids(field.process("a")) == [2, 4, 3]
    with pytest.raises(ValueError):
        TextField(sos_token="<s>", eos_token="</s>", max_seq_len=2)


def test_setup_is_fast_on_sst2_train():
    path = DATA / "stsa.binary.train"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is not checked out)")
    texts = np.array([line.split(" ", 1)[1] for line in path.read_text().splitlines()], dtype=object)
    field = TextField()
    start = time.perf_counter()
    field.setup(texts)
    elapsed = time.perf_counter() - start
    assert len(texts) == 6920
    assert field.vocab_size > 10000
    assert elapsed < 1.0, f"setup took {elapsed:.2f}s"


# ---------------------------------------------------------------------- TextField: embeddings
def test_glove_embeddings_keep_only_known_words(glove):
    field = TextField(embeddings=glove)
    field.setup(["the cat sat on the mat"])
    # 'on' and 'mat' are not in the file: they stay out of the vocabulary and map to unk
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "the": 2, "cat": 3, "sat": 4}
    assert _ids(field.process("the mat")) == [2, 1]
    matrix = field.embedding_matrix
    assert matrix.dtype == torch.float32 and matrix.shape == (5, 3)
    assert matrix[0].tolist() == [0.0, 0.0, 0.0]  # pad
    assert matrix[1].tolist() == [9.0, 9.0, 9.0]  # '<unk>' has a vector in the file
    assert torch.allclose(matrix[2], torch.tensor([0.1, 0.2, 0.3]))
    assert matrix[3].tolist() == [1.0, 1.0, 1.0]
    assert matrix[4].tolist() == [-1.0, 0.0, 1.0]


def test_embeddings_unk_init_all_gives_random_rows(glove):
    field = TextField(embeddings=glove, unk_init_all=True, unk_token="[UNK]")
    field.setup(["the cat sat on the mat"])
    assert list(field.vocab) == ["<pad>", "[UNK]", "the", "cat", "sat", "on", "mat"]
    matrix = field.embedding_matrix
    assert matrix.shape == (7, 3)
    assert matrix[4].tolist() == [-1.0, 0.0, 1.0]
    for row in (1, 5, 6):  # no vector in the file: random, nonzero
        assert matrix[row].abs().sum() > 0
    assert not torch.equal(matrix[5], matrix[6])
    again = TextField(embeddings=glove, unk_init_all=True, unk_token="[UNK]")
    again.setup(["the cat sat on the mat"])
    assert torch.equal(again.embedding_matrix, matrix)  # deterministic


def test_embeddings_grow_with_setup(glove):
    field = TextField(embeddings=glove, unk_init_all=True)
    field.setup(["the dog"])
    first = field.embedding_matrix.clone()
    field.setup(["cat and dog"])
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "the": 2, "dog": 3, "cat": 4, "and": 5}
    assert field.embedding_matrix.shape == (6, 3)
    assert torch.equal(field.embedding_matrix[:4], first)
    assert field.embedding_matrix[4].tolist() == [1.0, 1.0, 1.0]


def test_embeddings_lowercase_matching(glove):
    field = TextField(embeddings=glove, lower=True)
    field.setup(["The CAT"])
    assert list(field.vocab)[2:] == ["the", "cat"]


def test_word2vec_text_embeddings(tmp_path):
    path = tmp_path / "vectors.w2v"
    path.write_text("2 2\nhello 0.5 -0.5\nworld 1 2\n")
    field = TextField(embeddings=str(path), embeddings_format="word2vec")
    field.setup(["hello world"])
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "hello": 2, "world": 3}
    assert field.embedding_matrix[2:].tolist() == [[0.5, -0.5], [1.0, 2.0]]


def test_word2vec_binary_embeddings(tmp_path):
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as handle:
        handle.write(b"2 3\n")
        handle.write(b"hello " + np.array([1, 2, 3], dtype="<f4").tobytes() + b"\n")
        handle.write("café ".encode() + np.array([-1, 0.5, 4], dtype="<f4").tobytes() + b"\n")
    field = TextField(embeddings=str(path), embeddings_format="word2vec", embeddings_binary=True)
    field.setup(["café hello bye"])
    assert list(field.vocab)[2:] == ["café", "hello"]
    assert field.embedding_matrix[2:].tolist() == [[-1.0, 0.5, 4.0], [1.0, 2.0, 3.0]]


def test_embeddings_errors(tmp_path, glove):
    with pytest.raises(ValueError, match="embeddings_format"):
        TextField(embeddings=glove, embeddings_format="elmo")
    with pytest.raises(ValueError, match="text"):
        TextField(embeddings=glove, embeddings_binary=True).setup(["the"])
    with pytest.raises(FileNotFoundError):
        TextField(embeddings=str(tmp_path / "missing.txt")).setup(["the"])
    with pytest.raises(ValueError, match="header"):
        TextField(embeddings=glove, embeddings_format="word2vec").setup(["the"])
    bad = tmp_path / "bad.txt"
    bad.write_text("the 1 2\ncat 1\n")
    with pytest.raises(ValueError, match="1 values, expected 2"):
        TextField(embeddings=str(bad)).setup(["the cat"])


def test_no_embeddings_means_no_matrix():
    field = TextField()
    field.setup(["a"])
    assert field.embedding_matrix is None


# ---------------------------------------------------------------------- TextField: save/load
def test_text_field_save_load_round_trip(tmp_path, glove):
    field = TextField(embeddings=glove, unk_init_all=True, sos_token="<s>", lower=True)
    field.setup(["The cat sat on the mat"])
    field.setup(["a second call"])
    flambe.save(field, str(tmp_path / "field"))
    loaded = flambe.load(str(tmp_path / "field"))
    assert isinstance(loaded, TextField)
    assert loaded.vocab == field.vocab
    assert list(loaded.vocab) == list(field.vocab)
    assert torch.equal(loaded.embedding_matrix, field.embedding_matrix)
    assert loaded.lower and loaded.sos == "<s>"
    assert torch.equal(loaded.process("THE MAT call"), field.process("THE MAT call"))


def test_text_field_from_yaml():
    field = yaml.load("!TextField {lower: true, sos_token: <s>, tokenizer: !CharTokenizer {}}")()
    field.setup(["Ab"])
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "<s>": 2, "a": 3, "b": 4}


# ---------------------------------------------------------------------- LabelField
def test_label_vocab_sorted():
    field = LabelField()
    field.setup(np.array(["neg", "pos", "neg", "neutral"], dtype=object))
    assert field.vocab == {"neg": 0, "neutral": 1, "pos": 2}
    assert field.vocab_size == 3
    out = field.process("pos")
    assert out.dtype == torch.long and out.shape == () and out.item() == 2


def test_label_integers_sorted_by_value():
    field = LabelField()
    field.setup(np.array([10, 2, 1, 2], dtype=object))
    assert field.vocab == {"1": 0, "2": 1, "10": 2}
    assert field.process(10).item() == 2


def test_label_given_order():
    field = LabelField(labels=["pos", "neg"])
    assert field.vocab == {"pos": 0, "neg": 1}
    field.setup(["neg", "neg"])
    assert field.vocab == {"pos": 0, "neg": 1}
    with pytest.raises(ValueError, match="not among the given labels"):
        field.setup(["maybe"])
    with pytest.raises(ValueError, match="duplicates"):
        LabelField(labels=["a", "a"])


def test_label_counts_and_frequencies():
    field = LabelField()
    field.setup(["a", "b", "a", "a"], ["b", "c", "a", "a"])  # a: 5, b: 2, c: 1
    assert field.label_count.tolist() == [5.0, 2.0, 1.0]
    assert field.label_freq.tolist() == [5 / 8, 2 / 8, 1 / 8]
    assert torch.allclose(field.label_inv_freq, torch.tensor([8 / 5, 4.0, 8.0]))


def test_label_inv_freq_of_unseen_label_is_zero():
    field = LabelField(labels=["x", "y"])
    field.setup(["x"])
    assert field.label_inv_freq.tolist() == [1.0, 0.0]


def test_label_one_hot():
    field = LabelField(one_hot=True)
    field.setup(["b", "a", "c"])
    out = field.process("b")
    assert out.dtype == torch.float and out.tolist() == [0.0, 1.0, 0.0]


def test_label_multilabel_multi_hot():
    field = LabelField(multilabel_sep=",")
    field.setup(["news,sports", "tech", "sports"])
    assert field.vocab == {"news": 0, "sports": 1, "tech": 2}
    assert field.label_count.tolist() == [1.0, 2.0, 1.0]
    assert field.process("tech,news").tolist() == [1.0, 0.0, 1.0]


def test_label_new_labels_appended_later():
    field = LabelField()
    field.setup(["b", "d"])
    field.setup(["c", "a", "b"])
    assert field.vocab == {"b": 0, "d": 1, "a": 2, "c": 3}


def test_label_unknown_in_process():
    field = LabelField()
    field.setup(["a"])
    with pytest.raises(ValueError, match="Unknown label 'z'"):
        field.process("z")


def test_label_field_save_load_round_trip(tmp_path):
    field = LabelField(multilabel_sep="|")
    field.setup(["x|y", "y", "z"])
    flambe.save(field, str(tmp_path / "label"))
    loaded = flambe.load(str(tmp_path / "label"))
    assert loaded.vocab == field.vocab
    assert loaded.label_counts == {"x": 1, "y": 2, "z": 1}
    assert torch.equal(loaded.label_count, field.label_count)
    assert loaded.process("z|x").tolist() == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------------- BoWField
def test_bow_docs_example():
    field = BoWField(min_freq=2, normalize=True)
    field.setup(["thank you", "thank you very much", "thanks a lot"])
    assert field.vocab == {"<unk>": 0, "thank": 1, "you": 2}
    # 'really', '.', 'You', 'help', 'was', 'awesome' are unknown: 6 of 8 tokens
    assert field.process("thank you really. You help was awesome").tolist() == [0.75, 0.125, 0.125]


def test_bow_counts():
    field = BoWField(min_freq=1)
    field.setup(["a b a"])
    out = field.process("a a a b c")
    assert out.dtype == torch.float and out.tolist() == [1.0, 3.0, 1.0]
    assert field.process("").tolist() == [0.0, 0.0, 0.0]


def test_bow_scale_factor_and_lower():
    field = BoWField(min_freq=1, lower=True, normalize=True, scale_factor=10.0)
    field.setup(["A b"])
    assert field.process("a B b A").tolist() == [0.0, 5.0, 5.0]


def test_bow_without_unk_drops_unknown_words():
    field = BoWField(min_freq=1, unk_token=None)
    field.setup(["a b"])
    assert field.vocab == {"a": 0, "b": 1}
    assert field.process("b c c").tolist() == [0.0, 1.0]


def test_bow_min_freq_accumulates_over_setups():
    field = BoWField(min_freq=3)
    field.setup(["x y x"])
    assert field.vocab_size == 1
    field.setup(["y x"])
    assert field.vocab == {"<unk>": 0, "x": 1}
    with pytest.raises(ValueError):
        BoWField(min_freq=0)


def test_bow_field_save_load_round_trip(tmp_path):
    field = BoWField(min_freq=2)
    field.setup(["p q p r q"])
    flambe.save(field, str(tmp_path / "bow"))
    loaded = flambe.load(str(tmp_path / "bow"))
    assert loaded.vocab == {"<unk>": 0, "p": 1, "q": 2}
    assert loaded.word_counts == {"p": 2, "q": 2, "r": 1}
    loaded.setup(["r"])  # the saved counts carry over
    assert loaded.vocab == {"<unk>": 0, "p": 1, "q": 2, "r": 3}
