"""Unit tests for flambe.dataset: TabularDataset (arrays, files, autogen), DataView, YAML, save/load."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import flambe
from flambe.compile import yaml
from flambe.dataset import Dataset, DataView, TabularDataset
from flambe.field import Field, LabelField, TextField

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "harvardnlp-sent-conv"

TRAIN = [["the cat sat", "pos"], ["a dog ran", "neg"], ["the dog sat", "pos"]]
VAL = [["a cat ran", "neg"]]
TEST = [["one bird", "pos"]]


class DsCountingField(Field):
    """Counts process calls; returns the length of the text."""

    def __init__(self) -> None:
        self.calls = 0

    def process(self, example):
        self.calls += 1
        return torch.tensor(len(example))


class DsPairField(Field):
    """Two columns in, two tensors out."""

    def process(self, first, second):
        return torch.tensor(len(first)), torch.tensor(len(second))


def _text_label(**kwargs):
    return TabularDataset(TRAIN, VAL, TEST, transform={"text": TextField(), "label": LabelField()}, **kwargs)


def _items_equal(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------------- Dataset
def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()


def test_dataset_is_immutable():
    dataset = _text_label()
    with pytest.raises(TypeError, match="immutable"):
        dataset[0] = ("x",)
    with pytest.raises(TypeError, match="immutable"):
        del dataset[0]
    with pytest.raises(TypeError):
        dataset.train[0] = ("x",)
    with pytest.raises(TypeError):
        del dataset.train[0]


# ---------------------------------------------------------------------- TabularDataset from rows
def test_transform_keys_are_attributes_and_fields_set_up_on_all_splits():
    dataset = _text_label()
    assert isinstance(dataset.text, TextField) and isinstance(dataset.label, LabelField)
    # vocabulary over train + val + test, in order of appearance
    assert dataset.text.vocab == {"<pad>": 0, "<unk>": 1, "the": 2, "cat": 3, "sat": 4, "a": 5, "dog": 6,
                                  "ran": 7, "one": 8, "bird": 9}
    assert dataset.text.vocab_size == 10
    assert dataset.label.vocab == {"neg": 0, "pos": 1}


def test_items_are_tuples_of_tensors_in_transform_order():
    dataset = _text_label()
    text, label = dataset.train[1]
    assert text.tolist() == [5, 6, 7] and label.item() == 0
    assert dataset.val[0][0].tolist() == [5, 3, 7]
    assert dataset.test[0][0].tolist() == [8, 9]
    assert [len(dataset.train), len(dataset.val), len(dataset.test)] == [3, 1, 1]


def test_transform_order_decides_item_order_not_columns():
    dataset = TabularDataset(TRAIN, transform={"text": TextField(),
                                               "label": LabelField()})
    swapped = TabularDataset(TRAIN, transform={"label": {"columns": 1, "field": LabelField()},
                                               "text": {"columns": 0, "field": TextField()}})
    assert dataset.train[0][1].item() == swapped.train[0][0].item() == 1
    assert torch.equal(dataset.train[0][0], swapped.train[0][1])


def test_named_columns_in_transform():
    dataset = TabularDataset(TRAIN, named_columns=["sentence", "sentiment"],
                             transform={"label": {"columns": "sentiment", "field": LabelField()},
                                        "text": {"columns": ["sentence"], "field": TextField()}})
    assert dataset.named_columns == ["sentence", "sentiment"]
    assert dataset.train[2][0].item() == 1
    assert dataset.train[2][1].tolist() == [2, 6, 4]  # the dog sat


def test_multi_column_field_and_tuple_outputs():
    rows = [["ab", "cde", "x"], ["f", "", "y"]]
    dataset = TabularDataset(rows, transform={"pair": {"columns": [0, 1], "field": DsPairField()},
                                              "tag": {"columns": 2, "field": LabelField()}})
    assert [t.item() for t in dataset.train[0]] == [2, 3, 0]
    assert [t.item() for t in dataset.train[1]] == [1, 0, 1]


def test_without_transform_numeric_cells_become_tensors():
    data = np.random.default_rng(0).random((2, 10))
    dataset = TabularDataset(data)
    item = dataset.train[1]
    assert len(item) == 10 and all(t.dtype == torch.float32 and t.shape == () for t in item)
    assert item[3].item() == pytest.approx(data[1, 3])
    mixed = TabularDataset([["text", 3, True, 1.5]])
    text, number, flag, real = mixed.train[0]
    assert text == "text"
    assert number.dtype == torch.long and number.item() == 3
    assert flag.dtype == torch.bool and real.item() == 1.5


def test_one_dimensional_rows_are_one_column():
    dataset = TabularDataset(["a b", "c"], transform={"text": TextField()})
    assert dataset.cols == 1
    assert dataset.train[1][0].tolist() == [4]


def test_sequence_over_all_splits():
    dataset = _text_label()
    assert len(dataset) == 5
    assert dataset[3][0].tolist() == dataset.val[0][0].tolist()
    assert dataset[-1][0].tolist() == [8, 9]
    assert [item[1].item() for item in dataset] == [1, 0, 1, 0, 1]
    assert len(dataset[1:4]) == 3
    with pytest.raises(IndexError):
        dataset[5]
    with pytest.raises(IndexError):
        dataset[-6]


def test_raw_and_cols():
    dataset = _text_label()
    assert dataset.cols == 2
    assert dataset.raw.shape == (5, 2) and dataset.raw[4, 0] == "one bird"
    assert dataset.train.raw.dtype == object and dataset.train.raw[0, 1] == "pos"


def test_missing_splits_are_empty_views():
    dataset = TabularDataset(TRAIN, transform={"text": TextField()})
    assert dataset.val.is_empty() and len(dataset.test) == 0
    assert dataset.val.cols() == 2
    assert list(dataset.val) == []
    assert not dataset.train.is_empty()


@pytest.mark.parametrize("transform, message", [
    ({"text": TextField(), "label": LabelField(), "extra": TextField()}, "reads column 2"),
    ({"text": {"columns": "nope", "field": TextField()}}, "not among the named columns"),
    ({"train": TextField()}, "cannot be an attribute"),
    ({"cache": TextField()}, "cannot be an attribute"),
    ({"text": "not a field"}, "must be a Field"),
    ({"text": {"field": TextField(), "cols": 0}}, "must be a Field or"),
])
def test_bad_transforms(transform, message):
    with pytest.raises(ValueError, match=message):
        TabularDataset(TRAIN, transform=transform)


def test_bad_shapes():
    with pytest.raises(ValueError, match="different numbers of columns"):
        TabularDataset(TRAIN, [["only one column"]])
    with pytest.raises(ValueError, match="row 1 has 1 columns"):
        TabularDataset([["a", "b"], ["c"]])
    with pytest.raises(ValueError, match="named_columns"):
        TabularDataset(TRAIN, named_columns=["one"])


# ---------------------------------------------------------------------- DataView and caching
def test_dataview_caches_processed_examples():
    field = DsCountingField()
    dataset = TabularDataset([["ab"], ["cde"]], transform={"n": field})
    assert field.calls == 0  # nothing is processed before it is read
    assert dataset.train[1][0].item() == 3
    assert field.calls == 2  # the whole split, once
    _ = [dataset.train[i] for i in range(2)] + list(dataset.train)
    assert field.calls == 2


def test_dataview_without_cache_processes_on_access():
    field = DsCountingField()
    dataset = TabularDataset([["ab"], ["cde"]], cache=False, transform={"n": field})
    dataset.train[0]
    dataset.train[0]
    assert field.calls == 2
    assert [item[0].item() for item in dataset.train[0:2]] == [2, 3]


def test_dataview_direct_use():
    field = TextField()
    field.setup(["x y"])
    view = DataView(np.array([["x y", 1]], dtype=object), [(field, 0)], cache=True)
    assert len(view) == 1 and view.cols() == 2 and not view.is_empty()
    assert view[0][0].tolist() == [2, 3]
    assert view.raw[0, 1] == 1


# ---------------------------------------------------------------------- files
@pytest.fixture
def tsv_files(tmp_path):
    (tmp_path / "train.tsv").write_text('text\tlabel\nthe "cat" sat\tpos\nNA null\tneg\n')
    (tmp_path / "dev.tsv").write_text("text\tlabel\na dog\tneg\n")
    (tmp_path / "test.tsv").write_text("text\tlabel\nthe end\tpos\n")
    return tmp_path


def test_from_path_tsv_with_header(tsv_files):
    dataset = TabularDataset.from_path(str(tsv_files / "train.tsv"), str(tsv_files / "dev.tsv"),
                                       str(tsv_files / "test.tsv"),
                                       transform={"text": TextField(), "label": LabelField()})
    assert dataset.named_columns == ["text", "label"]
    assert [len(dataset.train), len(dataset.val), len(dataset.test)] == [2, 1, 1]
    # quotes are ordinary characters in a TSV; 'NA' and 'null' stay text
    assert dataset.train.raw[0, 0] == 'the "cat" sat'
    assert dataset.train.raw[1, 0] == "NA null"
    assert list(dataset.text.vocab)[2:] == ["the", '"', "cat", "sat", "NA", "null", "a", "dog", "end"]


def test_from_path_without_header_and_column_selection(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,hello world,x\n0,bye,y\n")
    dataset = TabularDataset.from_path(str(path), sep=",", header=None, columns=[1, 0],
                                       transform={"text": TextField(), "label": LabelField()})
    assert dataset.named_columns is None
    assert dataset.train.raw.tolist() == [["hello world", 1], ["bye", 0]]
    assert dataset.label.vocab == {"0": 0, "1": 1}
    assert dataset.train[0][1].item() == 1


def test_from_path_named_column_selection(tsv_files):
    dataset = TabularDataset.from_path(str(tsv_files / "train.tsv"), columns=["label"])
    assert dataset.named_columns == ["label"]
    assert dataset.train.raw.tolist() == [["pos"], ["neg"]]
    with pytest.raises(ValueError, match="Column 'nope'"):
        TabularDataset.from_path(str(tsv_files / "train.tsv"), columns=["nope"])


def test_from_path_directory_concatenates_files(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "b.tsv").write_text("text\tlabel\nsecond\t1\n")
    (folder / "a.tsv").write_text("text\tlabel\nfirst\t0\n")
    (folder / ".hidden").write_text("ignored\n")
    dataset = TabularDataset.from_path(str(folder))
    assert dataset.train.raw.tolist() == [["first", 0], ["second", 1]]


def test_from_path_first_space_format(tmp_path):
    path = tmp_path / "stsa.train"
    path.write_text("1 a stirring , funny film\n0 apparently reassembled .\n\n1 good\n")
    dataset = TabularDataset.from_path(str(path), sep=None,
                                       transform={"label": LabelField(), "text": TextField()})
    assert dataset.train.raw.tolist() == [[1, "a stirring , funny film"], [0, "apparently reassembled ."],
                                          [1, "good"]]
    label, text = dataset.train[1]
    assert label.item() == 0 and text.tolist() == [7, 8, 9]


def test_from_path_latin1(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("0 caf\xe9 cr\xe8me\n1 na\xefve\n".encode("latin-1"))
    dataset = TabularDataset.from_path(str(path), sep=None, encoding="latin-1",
                                       transform={"label": LabelField(), "text": TextField()})
    assert dataset.train.raw[0, 1] == "café crème"
    assert "naïve" in dataset.text.vocab
    with pytest.raises(ValueError, match="latin-1"):
        TabularDataset.from_path(str(path), sep=None)


def test_from_path_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        TabularDataset.from_path(str(tmp_path / "nope.tsv"))


def test_trec_latin1_file():
    path = DATA / "TREC.train.all"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is not checked out)")
    dataset = TabularDataset.from_path(str(path), sep=None, encoding="latin-1",
                                       transform={"label": LabelField(), "text": TextField()})
    assert len(dataset.train) == 5452
    assert dataset.label.vocab == {str(i): i for i in range(6)}
    assert dataset.train.raw[0, 1] == "How did serfdom develop in and then leave Russia ?"
    assert dataset.train[0][1].tolist()[:3] == [2, 3, 4]
    assert int(dataset.label.label_count.sum()) == 5452


# ---------------------------------------------------------------------- autogen
@pytest.fixture
def ten_rows(tmp_path):
    path = tmp_path / "all.tsv"
    path.write_text("text\tlabel\n" + "".join(f"word{i}\t{i % 2}\n" for i in range(10)))
    return path


def _splits(dataset):
    return [sorted(view.raw[:, 0].tolist()) for view in (dataset.train, dataset.val, dataset.test)]


def test_autogen_sizes_and_partition(ten_rows):
    dataset = TabularDataset.autogen(str(ten_rows), seed=7, transform={"text": TextField()})
    train, val, test = _splits(dataset)
    assert (len(train), len(val), len(test)) == (7, 1, 2)  # test 10 * 0.2; val int(8 * 0.2)
    assert sorted(train + val + test) == sorted(f"word{i}" for i in range(10))
    assert dataset.text.vocab_size == 12  # set up on all splits


def test_autogen_is_reproducible_with_a_seed(ten_rows):
    first = TabularDataset.autogen(str(ten_rows), seed=3)
    second = TabularDataset.autogen(str(ten_rows), seed=3)
    assert _splits(first) == _splits(second)
    others = [_splits(TabularDataset.autogen(str(ten_rows), seed=s)) for s in range(4, 9)]
    assert any(split != _splits(first) for split in others)


def test_autogen_keeps_file_order_within_splits(ten_rows):
    dataset = TabularDataset.autogen(str(ten_rows), seed=1)
    numbers = [int(w[4:]) for w in dataset.train.raw[:, 0]]
    assert numbers == sorted(numbers)


def test_autogen_with_test_path_and_ratios(ten_rows, tmp_path):
    test = tmp_path / "test.tsv"
    test.write_text("text\tlabel\nheld\t1\n")
    dataset = TabularDataset.autogen(str(ten_rows), test_path=str(test), seed=0, val_ratio=0.5)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (5, 5, 1)
    assert dataset.test.raw.tolist() == [["held", 1]]
    with pytest.raises(ValueError, match="test_ratio"):
        TabularDataset.autogen(str(ten_rows), test_ratio=1.0)


# ---------------------------------------------------------------------- YAML
def test_from_path_through_yaml(tsv_files):
    schema = yaml.load(f"!TabularDataset.from_path {{train_path: {tsv_files / 'train.tsv'}, "
                       f"test_path: {tsv_files / 'test.tsv'}, "
                       "transform: {text: !TextField {}, label: !LabelField {}}}")
    dataset = schema()
    assert isinstance(dataset, TabularDataset)
    # pad unk the " cat sat NA null end
    assert dataset.text.vocab_size == 9 and dataset.label.vocab == {"neg": 0, "pos": 1}
    assert dataset.test[0][0].tolist() == [2, 8]  # the end


def test_autogen_and_column_forms_through_yaml(ten_rows):
    text = textwrap.dedent(f"""
        !TabularDataset.autogen
        data_path: {ten_rows}
        seed: 5
        transform:
          label:
            columns: label
            field: !LabelField {{one_hot: true}}
          text:
            columns: [0]
            field: !TextField {{lower: true}}
    """)
    dataset = yaml.load(text)()
    label, tokens = dataset.train[0]
    assert label.shape == (2,) and tokens.shape == (1,)
    assert _splits(dataset) == _splits(TabularDataset.autogen(str(ten_rows), seed=5))


# ---------------------------------------------------------------------- save / load
def test_save_load_from_rows(tmp_path):
    dataset = _text_label()
    flambe.save(dataset, str(tmp_path / "ds"))
    assert (tmp_path / "ds" / "text" / "state.pt").exists()
    loaded = flambe.load(str(tmp_path / "ds"))
    assert isinstance(loaded, TabularDataset)
    assert loaded.text.vocab == dataset.text.vocab and loaded.label.vocab == dataset.label.vocab
    assert all(_items_equal(a, b) for a, b in zip(loaded, dataset))
    assert loaded.train.raw.tolist() == TRAIN
    # each field loads on its own too
    assert flambe.load(str(tmp_path / "ds" / "text")).vocab == dataset.text.vocab


def test_save_load_from_path_uses_config_and_state(tsv_files, tmp_path):
    dataset = TabularDataset.from_path(str(tsv_files / "train.tsv"), str(tsv_files / "dev.tsv"),
                                       transform={"text": TextField(lower=True), "label": LabelField()})
    dataset.text.setup(["words only the state knows"])
    flambe.save(dataset, str(tmp_path / "ds"))
    config = (tmp_path / "ds" / "config.yaml").read_text()
    assert config.startswith("!TabularDataset.from_path") and "train.tsv" in config
    loaded = flambe.load(str(tmp_path / "ds"))
    assert loaded.text.vocab == dataset.text.vocab and "knows" in loaded.text.vocab
    assert loaded.named_columns == ["text", "label"]
    assert all(_items_equal(a, b) for a, b in zip(loaded, dataset))


def test_save_load_yaml_built_dataset(tsv_files, tmp_path):
    dataset = yaml.load(f"!TabularDataset.from_path {{train_path: {tsv_files / 'train.tsv'}, "
                        "transform: {text: !TextField {sos_token: <s>}, label: !LabelField {}}}")()
    flambe.save(dataset, str(tmp_path / "ds"))
    loaded = flambe.load(str(tmp_path / "ds"))
    assert loaded.text.vocab == dataset.text.vocab and loaded.text.sos == "<s>"
    assert _items_equal(loaded.train[0], dataset.train[0])


def test_save_load_autogen_without_seed_keeps_the_split(ten_rows, tmp_path):
    dataset = yaml.load(f"!TabularDataset.autogen {{data_path: {ten_rows}, transform: {{text: !TextField {{}}}}}}")()
    flambe.save(dataset, str(tmp_path / "ds"))
    for _ in range(3):  # a fresh random seed each build; the saved one wins
        loaded = flambe.load(str(tmp_path / "ds"))
        assert _splits(loaded) == _splits(dataset)
        assert loaded.text.vocab == dataset.text.vocab


def test_load_state_refreshes_cached_examples():
    dataset = TabularDataset([["a b"]], transform={"text": TextField()})
    assert dataset.train[0][0].tolist() == [2, 3]
    other = TabularDataset([["b a"]], transform={"text": TextField()})
    dataset.load_state(other.get_state())
    assert dataset.text.vocab == {"<pad>": 0, "<unk>": 1, "b": 2, "a": 3}
    assert dataset.train[0][0].tolist() == [3, 2]
