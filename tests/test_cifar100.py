"""CIFAR-100 as one registry entry: files in its published python layout (pickled dicts of
channels-first uint8 rows, fine and coarse labels, a ``meta``) read through ``dir:``, keras, a run."""

import pickle

import numpy as np
import pytest

from conftest import TINY_DETERMINISTIC
from swin_gao_lib.config import make_config
from swin_gao_lib.data.pipeline import make_datasets
from swin_gao_lib.data.sources import load_raw
from swin_gao_lib.errors import DataError
from swin_gao_lib.model import build_swin


def _batch(n, rng):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    fine = rng.integers(0, 100, n).tolist()
    return {b"filenames": [b"x.png"] * n, b"batch_label": b"training batch 1 of 1",
            b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine], b"data": data}


def write_cifar100(parent, n_train=40, n_test=12, seed=0, meta_names=100):
    folder = parent / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    batches = {"train": _batch(n_train, rng), "test": _batch(n_test, rng)}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"class{i}".encode() for i in range(meta_names)],
            b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, batches


def test_dir_source_reads_the_published_layout(tmp_path):
    folder, batches = write_cifar100(tmp_path)
    for where in (tmp_path, folder):  # the archive's folder or the one that holds it
        raw = load_raw("cifar100", f"dir:{where}")
        assert raw.x_train.shape == (40, 32, 32, 3) and raw.x_test.shape == (12, 32, 32, 3)
        assert raw.y_train.tolist() == batches["train"][b"fine_labels"]
        assert "CIFAR-100" in raw.description
    # channels-first, row-major: red plane, then green, then blue
    data = batches["test"][b"data"]
    for k in range(3):
        for r, c in [(0, 0), (7, 30), (31, 31)]:
            assert raw.x_test[3, r, c, k] == data[3, 1024 * k + 32 * r + c]


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "test").unlink(), r"missing test; expected the CIFAR-100 python-version files train and test"),
    (lambda f: (f / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"a"] * 10}, protocol=2)),
     r"meta: expected b'fine_label_names' with 100 class names, found 10 names"),
    (lambda f: (f / "train").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8),
                                                       b"fine_labels": [100]}, protocol=2)),
     r"train: label 100 is outside 0..99"),
    (lambda f: (f / "train").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8),
                                                       b"labels": [1]}, protocol=2)),
     r"train: expected a dict with b'data' and b'fine_labels'"),
    (lambda f: (f / "train").write_bytes(b"garbage" * 10), r"not a readable CIFAR-100 python batch"),
])
def test_dir_source_rejects_damaged_files(tmp_path, damage, message):
    folder, _ = write_cifar100(tmp_path)
    damage(folder)
    with pytest.raises(DataError, match=message):
        load_raw("cifar100", f"dir:{tmp_path}")


def test_keras_source_asks_for_fine_labels(monkeypatch):
    import keras

    calls = []

    def load_data(**kwargs):
        calls.append(kwargs)
        rng = np.random.default_rng(1)
        x = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 100, (8, 1)).astype(np.int64)  # keras returns (N, 1) labels
        return (x, y), (x[:4], y[:4])

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", load_data)
    raw = load_raw("cifar100", "keras")
    assert calls == [{"label_mode": "fine"}]
    assert raw.y_train.shape == (8,) and raw.y_train.dtype == np.uint8 and raw.x_test.shape[0] == 4


def test_pipeline_and_model_take_100_classes_from_the_registry(tmp_path):
    write_cifar100(tmp_path)
    cfg = make_config(dataset="cifar100", source=f"dir:{tmp_path}", batch_size=8,
                      validation_split=0.25)
    data = make_datasets(cfg)
    x, y = next(iter(data.train))
    assert x.shape[1:] == (32, 32, 3) and y.shape[1] == 100
    assert y.numpy().sum(axis=1).tolist() == [1.0] * 8
    assert build_swin(cfg).output_shape == (None, 100)


def test_a_cifar100_run_end_to_end(tmp_path):
    from swin_gao_lib.training.train import train

    write_cifar100(tmp_path / "data", n_train=48, n_test=16)
    cfg = make_config({**TINY_DETERMINISTIC, "dataset": "cifar100",
                       "source": f"dir:{tmp_path / 'data'}", "batch_size": 16,
                       "accumulation_steps": 2, "epochs": 1, "validation_split": 0.0,
                       "output_dir": str(tmp_path / "out"), "run_name": "c100"})
    result = train(cfg, verbose=0, log=lambda *a: None)
    assert result.metrics["optimizer_updates"] == 3
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    assert result.model.output_shape == (None, 100)
