"""Integration tests of dataset downloads: a real HTTP server on 127.0.0.1 serves the files.

The harvardnlp files come from ``../shared/data/harvardnlp-sent-conv`` (those tests skip when it is absent);
MNIST idx files, PTB text files and a 20 Newsgroups tarball are generated small. ``FLAMBE_HOME`` points at a
temporary folder and ``FLAMBE_DATA_MIRROR`` at the server, so nothing leaves this machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import tarfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QuietHandler, serve_directory

from flambe.compile.errors import LoadError
from flambe.nlp.classification import NewsGroupDataset, SSTDataset, TRECDataset
from flambe.nlp.language_modeling import PTBDataset
from flambe.utils.download import ChecksumError, fetch, sha256_of
from flambe.vision.classification.datasets import MNISTDataset, parse_idx

pytestmark = pytest.mark.integration

SENT_CONV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "harvardnlp-sent-conv"
needs_sent_conv = pytest.mark.skipif(not SENT_CONV.is_dir(),
                                     reason=f"the Kim (2014) data folder {SENT_CONV} is absent")

REQUESTS: Counter = Counter()
_LOCK = threading.Lock()


class CountingHandler(QuietHandler):
    """Static files; counts GET requests per file name."""

    def do_GET(self) -> None:
        with _LOCK:
            REQUESTS[self.path.lstrip("/")] += 1
        if self.path == "/truncated.txt":  # announces 1000 bytes, sends 10, closes: a dropped connection
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


# ---------------------------------------------------------------------- generated files
def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


MNIST_TRAIN = (np.arange(10 * 28 * 28) % 256).astype(np.uint8).reshape(10, 28, 28)
MNIST_TRAIN_LABELS = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype=np.uint8)
MNIST_TEST = np.full((4, 28, 28), 255, dtype=np.uint8)
MNIST_TEST_LABELS = np.array([7, 0, 7, 0], dtype=np.uint8)
MNIST_FILES = dict(zip(MNISTDataset.FILES, (MNIST_TRAIN, MNIST_TRAIN_LABELS, MNIST_TEST, MNIST_TEST_LABELS)))

PTB = {
    "ptb.train.txt": " the cat sat on the mat \n the dog sat \n\n a cat ran \n",
    "ptb.valid.txt": " the mat \n",
    "ptb.test.txt": " a dog sat on the cat \n the end \n",
}

NEWS = {  # (split, group, message name) -> bytes; one message holds Latin-1 bytes
    **{("train", "sci.space", str(100 + i)): f"Subject: orbit {i}\n\nthe moon and the stars".encode()
       for i in range(6)},
    **{("train", "rec.autos", str(200 + i)): f"Subject: car {i}\n\nengine oil".encode() for i in range(4)},
    ("test", "sci.space", "300"): "Subject: launch\n\nrocket".encode(),
    ("test", "rec.autos", "400"): "Subject: caf\xe9\n\nbrakes".encode("latin-1"),
}


def write_newsgroups_tarball(path: Path) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for (split, group, name), payload in NEWS.items():
            info = tarfile.TarInfo(f"20news-bydate-{split}/{group}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        folder = tarfile.TarInfo("20news-bydate-train/sci.space")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A folder with every served file, and the server's base URL."""
    root = tmp_path_factory.mktemp("mirror")
    if SENT_CONV.is_dir():
        for item in SENT_CONV.iterdir():
            shutil.copyfile(item, root / item.name)
    for name, array in MNIST_FILES.items():
        (root / name).write_bytes(gzip.compress(idx_bytes(array)))
    for name, text in PTB.items():
        (root / name).write_text(text)
    write_newsgroups_tarball(root / NewsGroupDataset.FILENAME)
    with serve_directory(root, CountingHandler) as url:
        yield root, url


@pytest.fixture
def env(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """FLAMBE_HOME in a fresh temporary folder, FLAMBE_DATA_MIRROR at the server; request counts reset."""
    root, url = served
    home = tmp_path / "home"
    monkeypatch.setenv("FLAMBE_HOME", str(home))
    monkeypatch.setenv("FLAMBE_DATA_MIRROR", url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with _LOCK:
        REQUESTS.clear()
    return home, root, url


def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty FLAMBE_HOME and a mirror nobody listens on: any download attempt would fail."""
    home = tmp_path / "offline-home"
    monkeypatch.setenv("FLAMBE_HOME", str(home))
    monkeypatch.setenv("FLAMBE_DATA_MIRROR", "http://127.0.0.1:9")
    return home


# ---------------------------------------------------------------------- the fetch helper
def test_fetch_rejects_a_wrong_digest_and_leaves_nothing_cached(env):
    home, root, url = env
    with pytest.raises(ChecksumError) as info:
        fetch("https://example.invalid/data/ptb.valid.txt", "ptb", "ptb.valid.txt", sha256="0" * 64)
    message = str(info.value)
    assert f"{url}/ptb.valid.txt" in message and "0" * 64 in message
    assert sha256_of(root / "ptb.valid.txt") in message
    assert list((home / "data" / "ptb").iterdir()) == []  # no partial or temporary file left


def test_fetch_http_error_names_the_url(env):
    home, _, _ = env
    with pytest.raises(LoadError, match=r"missing\.txt.*HTTP 404"):
        fetch("https://example.invalid/missing.txt", "misc", "missing.txt")
    assert list((home / "data" / "misc").iterdir()) == []


def test_fetch_interrupted_download_leaves_nothing_cached(env):
    home, _, _ = env
    with pytest.raises(LoadError, match=r"truncated\.txt"):
        fetch("https://example.invalid/truncated.txt", "misc", "truncated.txt")
    assert list((home / "data" / "misc").iterdir()) == []


def test_fetch_reuses_the_cached_file_without_a_request(env):
    home, root, _ = env
    first = fetch("https://example.invalid/ptb.test.txt", "ptb", "ptb.test.txt",
                  sha256=sha256_of(root / "ptb.test.txt"))
    second = fetch("https://example.invalid/ptb.test.txt", "ptb", "ptb.test.txt",
                   sha256=sha256_of(root / "ptb.test.txt"))
    assert first == second == str(home / "data" / "ptb" / "ptb.test.txt")
    assert REQUESTS["ptb.test.txt"] == 1
    assert Path(first).read_text() == PTB["ptb.test.txt"]


# ---------------------------------------------------------------------- SST and TREC
@needs_sent_conv
def test_sst_downloads_once_then_reuses_the_cache(env):
    home, _, _ = env
    dataset = SSTDataset()
    names = ["stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"]
    assert {name: REQUESTS[name] for name in names} == dict.fromkeys(names, 1)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (6920, 872, 1821)
    assert dataset.text.vocab_size == 17498  # 17496 distinct WordTokenizer tokens of the 3 files + <pad>, <unk>
    assert dataset.label.vocab_size == 2
    text, label = dataset.train[0]
    assert text.dtype == torch.long and label.dtype == torch.long and label.dim() == 0
    first = dataset.train.raw[0]
    assert list(first) == [first[0], "1"] and first[0].startswith("a stirring , funny")
    for name in names:
        assert (home / "data" / "harvardnlp-sent-conv" / name).is_file()

    again = SSTDataset()
    assert sum(REQUESTS.values()) == 3  # no request the second time
    assert again.text.vocab == dataset.text.vocab


@needs_sent_conv
def test_sst_corrupted_cache_fails_its_checksum(env):
    home, _, url = env
    SSTDataset()
    cached = home / "data" / "harvardnlp-sent-conv" / "stsa.binary.dev"
    cached.write_bytes(b"0 corrupted\n")
    with pytest.raises(ChecksumError) as info:
        SSTDataset()
    message = str(info.value)
    assert f"{url}/stsa.binary.dev" in message
    assert SSTDataset.SHA256["stsa.binary.dev"] in message
    assert hashlib.sha256(b"0 corrupted\n").hexdigest() in message
    assert not cached.exists()
    assert len(SSTDataset().val) == 872  # downloaded afresh
    assert REQUESTS["stsa.binary.dev"] == 2


@needs_sent_conv
def test_trec_reads_latin1_and_splits_val_stably(env):
    dataset = TRECDataset()
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (4907, 545, 500)
    texts = [row[0] for row in dataset.train.raw] + [row[0] for row in dataset.val.raw]
    assert "Which city has the oldest relationship as a sister\u00f0city with Los Angeles ?" in texts
    assert dataset.label.vocab_size == 6
    again = TRECDataset()
    assert [list(r) for r in again.val.raw] == [list(r) for r in dataset.val.raw]
    assert REQUESTS["TREC.train.all"] == 1
    # train + val is the whole training file, in order within each part
    lines = (SENT_CONV / "TREC.train.all").read_bytes().decode("latin-1").splitlines()
    assert sorted(texts) == sorted(line.split(" ", 1)[1].strip() for line in lines if line.strip())


@needs_sent_conv
def test_data_dir_needs_no_server(monkeypatch, tmp_path):
    home = offline(monkeypatch, tmp_path)
    dataset = SSTDataset(binary=False, data_dir=str(SENT_CONV))
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (8544, 1101, 2210)
    assert dataset.label.vocab_size == 5
    assert not home.exists()
    with pytest.raises(LoadError, match="stsa.binary.train.*not found"):
        SSTDataset(data_dir=str(tmp_path))


# ---------------------------------------------------------------------- MNIST, PTB, 20 Newsgroups
def test_mnist_download_parses_idx(env):
    dataset = MNISTDataset(val_ratio=0.2, seed=3)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (8, 2, 4)
    assert all(REQUESTS[name] == 1 for name in MNISTDataset.FILES)
    image, label = dataset.test[0]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert torch.equal(image, torch.ones(1, 28, 28)) and label.dtype == torch.long and label.item() == 7
    labels = sorted(int(dataset.train[i][1]) for i in range(8)) + sorted(int(y) for _, y in dataset.val)
    assert sorted(labels) == sorted(MNIST_TRAIN_LABELS.tolist())
    # each training image is found back, scaled to [0, 1]
    for i in range(len(dataset.train)):
        image, label = dataset.train[i]
        source = [j for j in range(10) if torch.equal(image[0], torch.from_numpy(MNIST_TRAIN[j] / 255.0).float())]
        assert len(source) == 1 and MNIST_TRAIN_LABELS[source[0]] == label.item()
    assert [int(y) for _, y in MNISTDataset(seed=3).val] == [int(y) for _, y in dataset.val]
    assert sum(REQUESTS.values()) == 4


def test_mnist_from_path_reads_raw_and_gzipped_files(served, tmp_path, monkeypatch):
    root, _ = served
    offline(monkeypatch, tmp_path)
    raw = tmp_path / "train-labels-idx1-ubyte"
    raw.write_bytes(idx_bytes(MNIST_TRAIN_LABELS))
    paths = [str(root / name) for name in MNISTDataset.FILES]
    paths[1] = str(raw)
    dataset = MNISTDataset.from_path(*paths, val_ratio=0.0)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (10, 0, 4)
    assert [int(y) for _, y in dataset.train] == MNIST_TRAIN_LABELS.tolist()
    assert np.array_equal(parse_idx(idx_bytes(np.arange(6, dtype=">i4").reshape(2, 3))),
                          np.arange(6).reshape(2, 3))
    local = MNISTDataset(data_dir=str(root), val_ratio=0.5)
    assert len(local.val) == 5 and len(local.train) == 5


def test_ptb_download_and_lm_items(env):
    dataset = PTBDataset()
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (3, 1, 2)
    assert [row[0] for row in dataset.train.raw] == ["the cat sat on the mat", "the dog sat", "a cat ran"]
    vocab = dataset.text.vocab
    source, target = dataset.train[1]
    ids = [vocab[w] for w in ("the", "dog", "sat")] + [vocab["<eos>"]]
    assert source.tolist() == ids[:-1] and target.tolist() == ids[1:]
    PTBDataset()
    assert all(REQUESTS[name] == 1 for name in PTB)


def test_newsgroups_tarball(env):
    dataset = NewsGroupDataset()
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (9, 1, 2)
    assert dataset.label.vocab_size == 2
    test_rows = {row[1]: row[0] for row in dataset.test.raw}
    assert test_rows == {"sci.space": "Subject: launch\n\nrocket", "rec.autos": "Subject: caf\u00e9\n\nbrakes"}
    groups = Counter(row[1] for row in list(dataset.train.raw) + list(dataset.val.raw))
    assert groups == {"sci.space": 6, "rec.autos": 4}
    text, label = dataset.val[0]
    assert text.dim() == 1 and label.dim() == 0
    assert REQUESTS[NewsGroupDataset.FILENAME] == 1
    assert NewsGroupDataset().val.raw.tolist() == dataset.val.raw.tolist()
    assert REQUESTS[NewsGroupDataset.FILENAME] == 1


def test_newsgroups_rejects_a_foreign_tarball(tmp_path, monkeypatch):
    offline(monkeypatch, tmp_path)
    with tarfile.open(tmp_path / NewsGroupDataset.FILENAME, "w:gz") as archive:
        info = tarfile.TarInfo("something/else.txt")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValueError, match="not a 20 Newsgroups"):
        NewsGroupDataset(data_dir=str(tmp_path))
    assert os.path.exists(tmp_path / NewsGroupDataset.FILENAME)


# ---------------------------------------------------------------------- save / load
@needs_sent_conv
def test_trec_save_load_round_trip_uses_the_cache(env, tmp_path):
    import flambe

    dataset = TRECDataset()
    flambe.save(dataset, str(tmp_path / "trec"))
    loaded = flambe.load(str(tmp_path / "trec"))
    assert isinstance(loaded, TRECDataset)
    assert loaded.text.vocab == dataset.text.vocab and loaded.label.vocab == dataset.label.vocab
    assert [t.tolist() for t in loaded.val[3]] == [t.tolist() for t in dataset.val[3]]
    assert REQUESTS["TREC.train.all"] == 1 and REQUESTS["TREC.test.all"] == 1


def test_mnist_and_ptb_save_load_round_trip(env, tmp_path):
    import flambe

    mnist = MNISTDataset(seed=5)
    flambe.save(mnist, str(tmp_path / "mnist"))
    loaded = flambe.load(str(tmp_path / "mnist"))
    assert [int(y) for _, y in loaded.val] == [int(y) for _, y in mnist.val]
    ptb = PTBDataset()
    flambe.save(ptb, str(tmp_path / "ptb"))
    loaded_ptb = flambe.load(str(tmp_path / "ptb"))
    assert loaded_ptb.text.vocab == ptb.text.vocab
    assert [t.tolist() for t in loaded_ptb.test[0]] == [t.tolist() for t in ptb.test[0]]
    assert sum(REQUESTS.values()) == 7  # 4 MNIST files and 3 PTB files, each fetched once
