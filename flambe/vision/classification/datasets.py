"""The MNIST handwritten digits dataset and a parser of the idx file format."""

from __future__ import annotations

import gzip
import struct
from typing import List, Optional, Sequence, Tuple, overload

import numpy as np
import torch

from flambe.compile import registrable_factory
from flambe.dataset import Dataset
from flambe.utils.download import fetch, local_or_fetch

__all__ = ["MNISTDataset", "ImageSplit", "get_dataset", "parse_idx", "read_idx_file"]

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes) -> np.ndarray:
    """Parse the bytes of an idx file (gzip-compressed or not) into an array.

    The idx format: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C``
    int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions, each dimension as a big-endian
    uint32, then the values in C order, big-endian.

    Raises
    ------
    ValueError
        If the header is malformed or the number of values does not match the dimensions.

    """
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("Not an idx file: it must start with two zero bytes")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"Unknown idx type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError("Truncated idx header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"idx data of shape {list(shape)} needs {expected} bytes, found {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_file(path: str) -> np.ndarray:
    """Read a local idx file, gzip-compressed or not (see :func:`parse_idx`)."""
    with open(path, "rb") as handle:
        return parse_idx(handle.read())


class ImageSplit(Sequence):
    """One split of an image dataset: item ``i`` is ``(image [1 x H x W] float in [0, 1], label)``.

    Images are kept as uint8 and converted on access. ``raw`` gives ``(images, labels)`` numpy arrays.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"Expected images [N x H x W] and labels [N], got {list(images.shape)} and "
                             f"{list(labels.shape)}")
        self.images = np.ascontiguousarray(images)
        self.labels = np.ascontiguousarray(labels)

    @property
    def raw(self) -> Tuple[np.ndarray, np.ndarray]:
        """The images and labels, unprocessed."""
        return self.images, self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def _item(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.images[index].astype(np.float32))
        if self.images.dtype == np.uint8:
            image = image / 255.0
        return image.unsqueeze(0), torch.tensor(int(self.labels[index]), dtype=torch.long)

    @overload
    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]: ...

    @overload
    def __getitem__(self, index: slice) -> List[Tuple[torch.Tensor, torch.Tensor]]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a split of {len(self)} images")
        return self._item(index)


def get_dataset(images: np.ndarray, labels: np.ndarray) -> ImageSplit:
    """The sequence of ``(image, label)`` tensor pairs of ``images`` [N x H x W] and ``labels`` [N]."""
    return ImageSplit(images, labels)


class MNISTDataset(Dataset):
    """The MNIST handwritten digits (60000 training and 10000 test images of 28 x 28 pixels, 10 classes).

    Items are ``(image, label)``: a FloatTensor ``[1 x 28 x 28]`` scaled to ``[0, 1]`` and a 0-d LongTensor.
    With no arrays given, the four idx files are read from ``data_dir`` or downloaded once from :attr:`URL`
    (override with ``FLAMBE_DATA_MIRROR``; no checksum is pinned, the idx header and size are validated).

    Parameters
    ----------
    train_images, train_labels, test_images, test_labels : np.ndarray, optional
        The data (images ``[N x H x W]``, labels ``[N]``); give all four or none.
    val_ratio : float
        The share of the training images held out as the validation split.
    seed : int, optional
        Seed of the train/val split; None means 0, so the split is the same on every run and after a load.
    data_dir : str, optional
        A local folder holding the four files (gzip-compressed, named as on :attr:`URL`).

    """

    URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    CACHE_SUBDIR = "mnist"
    FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    data_type = "image"

    def __init__(self, train_images: Optional[np.ndarray] = None, train_labels: Optional[np.ndarray] = None,
                 test_images: Optional[np.ndarray] = None, test_labels: Optional[np.ndarray] = None,
                 val_ratio: Optional[float] = 0.2, seed: Optional[int] = None,
                 data_dir: Optional[str] = None) -> None:
        super().__init__()
        arrays = [train_images, train_labels, test_images, test_labels]
        given = [a is not None for a in arrays]
        if any(given) and not all(given):
            raise ValueError("Give all four of train_images, train_labels, test_images and test_labels, or none "
                             "of them (to read data_dir or download MNIST)")
        if not any(given):
            arrays = [read_idx_file(local_or_fetch(data_dir, self.URL, self.CACHE_SUBDIR, name))
                      for name in self.FILES]
        train_images, train_labels, test_images, test_labels = (np.asarray(a) for a in arrays)
        ratio = float(val_ratio or 0.0)
        if not 0 <= ratio < 1:
            raise ValueError(f"val_ratio must be in [0, 1), got {val_ratio}")
        if len(train_images) != len(train_labels):
            raise ValueError(f"{len(train_images)} training images but {len(train_labels)} labels")
        order = np.random.RandomState(0 if seed is None else seed).permutation(len(train_labels))
        n_val = int(round(ratio * len(train_labels)))
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        self._train = ImageSplit(train_images[train_idx], train_labels[train_idx])
        self._val = ImageSplit(train_images[val_idx], train_labels[val_idx])
        self._test = ImageSplit(test_images, test_labels)

    @property
    def train(self) -> ImageSplit:
        """The training split."""
        return self._train

    @property
    def val(self) -> ImageSplit:
        """The validation split (``val_ratio`` of the training images)."""
        return self._val

    @property
    def test(self) -> ImageSplit:
        """The test split."""
        return self._test

    @registrable_factory
    @classmethod
    def from_path(cls, train_images_path: str, train_labels_path: str, test_images_path: str,
                  test_labels_path: str, val_ratio: Optional[float] = 0.2,
                  seed: Optional[int] = None) -> "MNISTDataset":
        """Build the dataset from four local idx files (each gzip-compressed or not)."""
        paths = [train_images_path, train_labels_path, test_images_path, test_labels_path]
        arrays = [read_idx_file(path) for path in paths]
        return cls(*arrays, val_ratio=val_ratio, seed=seed)

    @classmethod
    def _parse_local_gzipped_idx(cls, path: str) -> np.ndarray:
        """Parse a local idx file (gzip-compressed or not)."""
        return read_idx_file(path)

    @classmethod
    def _parse_downloaded_idx(cls, url: str) -> np.ndarray:
        """Parse the idx file at ``url``, downloaded once into the MNIST cache folder."""
        name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return read_idx_file(fetch(url, cls.CACHE_SUBDIR, name))

    @classmethod
    def _parse_idx(cls, data: bytes) -> np.ndarray:
        """Parse the bytes of an idx file (see :func:`parse_idx`)."""
        return parse_idx(data)
