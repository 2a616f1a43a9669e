"""The data-set registry: every fact about a data set, in one entry (no TensorFlow, no Keras).

Adding a data set is one :class:`DatasetSpec` here plus, for a new file layout, a
parser in :mod:`swin_gao_lib.data.formats`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from swin_gao_lib.errors import ConfigError

#: ``dir:`` layouts the parsers in :mod:`swin_gao_lib.data.formats` know.
IDX, CIFAR_PYTHON = "idx", "cifar_python"


@dataclass(frozen=True)
class DirLayout:
    """The published files of a data set, as a ``dir:<path>`` source expects them.

    Attributes:
        format: ``"idx"`` (IDX pairs, gzipped or not) or ``"cifar_python"`` (pickled batches).
        train: file names of the training split, in order (``idx``: images, then labels).
        test: the same for the test split.
        subfolder: the folder the published archive unpacks to; ``dir:`` may name it
            or the folder that contains it.
        label_key: the key of the labels in a ``cifar_python`` batch.
        meta: a ``cifar_python`` file holding the class names, and its key; read when
            present, to check that it names ``num_classes`` classes.
    """

    format: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    subfolder: str | None = None
    label_key: bytes = b"labels"
    meta: tuple[str, bytes] | None = None

    def files(self) -> tuple[str, ...]:
        """Every file name a ``dir:`` folder must hold."""
        return self.train + self.test


_IDX = DirLayout(IDX, train=("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 test=("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


@dataclass(frozen=True)
class DatasetSpec:
    """One data set: what it is called, what its images are, where it comes from.

    Attributes:
        name: the value of ``dataset:`` in a config; ``title``: how figures name it.
        shape: ``(height, width, channels)`` of one image as published.
        num_classes: labels are integers in ``0 .. num_classes - 1``.
        flip: whether a left-right flip keeps an image in its class (photos, not digits).
        keras_loader: the ``keras.datasets`` module; ``keras_kwargs``: its ``load_data``'s.
        layout: the published files a ``dir:`` source reads.
        sample: whether a real subset ships with the kit (``source: sample``).
        train_images: training images of the published data set (what ``keras`` loads).
    """

    name: str
    title: str
    shape: tuple[int, int, int]
    num_classes: int
    flip: bool
    keras_loader: str
    layout: DirLayout
    keras_kwargs: dict[str, Any] = field(default_factory=dict)
    sample: bool = False
    train_images: int = 50_000


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("mnist", "MNIST", (28, 28, 1), 10, flip=False, keras_loader="mnist",
                layout=_IDX, sample=True, train_images=60_000),
    DatasetSpec("fashion_mnist", "Fashion-MNIST", (28, 28, 1), 10, flip=False,
                keras_loader="fashion_mnist", layout=_IDX, sample=True, train_images=60_000),
    DatasetSpec("cifar10", "CIFAR-10", (32, 32, 3), 10, flip=True, keras_loader="cifar10",
                layout=DirLayout(CIFAR_PYTHON,
                                 train=tuple(f"data_batch_{i}" for i in range(1, 6)),
                                 test=("test_batch",), subfolder="cifar-10-batches-py",
                                 label_key=b"labels", meta=("batches.meta", b"label_names")),
                sample=True),
    # The keras-io Swin example's own data: 100 "fine" classes of 600 photos each.
    DatasetSpec("cifar100", "CIFAR-100", (32, 32, 3), 100, flip=True, keras_loader="cifar100",
                keras_kwargs={"label_mode": "fine"},
                layout=DirLayout(CIFAR_PYTHON, train=("train",), test=("test",),
                                 subfolder="cifar-100-python", label_key=b"fine_labels",
                                 meta=("meta", b"fine_label_names"))),
)}


def get(name: str) -> DatasetSpec:
    """The registry entry of ``name``; a :class:`ConfigError` naming the choices otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), DATASETS, n=1)
        extra = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"dataset: '{name}' is not one of {', '.join(DATASETS)}{extra}") from None


def title(name: str) -> str:
    """The display title of a data set (its name when it is not registered)."""
    spec = DATASETS.get(name)
    return spec.title if spec else name


def with_sample() -> tuple[str, ...]:
    """Names of the data sets that ship a real sample with the kit."""
    return tuple(name for name, spec in DATASETS.items() if spec.sample)
