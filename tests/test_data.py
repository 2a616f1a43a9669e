"""Data loaders against the published formats, corrupt files, and the pipeline."""

import gzip
import hashlib
import pickle
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import FASHION
from swin_gao_lib.config import make_config
from swin_gao_lib.data import arrays
from swin_gao_lib.data.arrays import EvalBatches, TrainBatches
from swin_gao_lib.data.formats import read_idx
from swin_gao_lib.data.pipeline import make_datasets, random_crop_flip
from swin_gao_lib.data.splits import load_splits, split
from swin_gao_lib.data.sources import (expected_train_images, load_cifar_dir, load_idx_dir,
                                       load_raw, load_sample, sample_manifest)
from swin_gao_lib.errors import DataError


# ---------------------------------------------------------------- writers per the published specs
def idx_bytes(array: np.ndarray) -> bytes:
    """IDX as LeCun documents it: 0,0, type 0x08, ndim, big-endian uint32 dims, data."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.astype(np.uint8).tobytes()


def write_idx_dir(folder, n_train=20, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(a)))
    return arrays


def cifar_batch_bytes(images_chw_flat: np.ndarray, labels) -> bytes:
    return pickle.dumps({b"batch_label": b"x", b"labels": list(labels), b"data": images_chw_flat},
                        protocol=2)


def write_cifar_dir(folder, n=6, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        (folder / name).write_bytes(cifar_batch_bytes(data, labels))
        batches[name] = (data, labels)
    return batches


# ---------------------------------------------------------------- IDX
def test_idx_reader_matches_spec(tmp_path):
    arrays = write_idx_dir(tmp_path / "m")
    raw = load_idx_dir(tmp_path / "m")
    np.testing.assert_array_equal(raw.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert raw.x_train.shape == (20, 28, 28, 1) and raw.x_train.dtype == np.uint8


def test_idx_plain_uncompressed_file(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "f").write_bytes(idx_bytes(a))
    np.testing.assert_array_equal(read_idx(tmp_path / "f", 3), a)


def _damage_idx(name, damage):
    """Rewrite ``name`` (gzipped IDX) of the folder with ``damage`` of its decompressed bytes."""
    def apply(folder):
        f = folder / f"{name}.gz"
        f.write_bytes(gzip.compress(damage(gzip.decompress(f.read_bytes()))))
    return apply


IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


@pytest.mark.parametrize("damage,message", [
    (_damage_idx(IMAGES, lambda b: b"\x00\x00\x08\x02" + b[4:]),
     r"images-idx3-ubyte.gz: bad IDX magic number 0x00000802, expected 0x00000803"),
    (_damage_idx(IMAGES, lambda b: b"\x00\x00\x0d\x03" + b[4:]), r"bad IDX magic number 0x00000d03"),
    (_damage_idx(IMAGES, lambda b: b[:-100]),
     r"file truncated: header says 20x28x28 = 15680 bytes of data, found 15580"),
    (_damage_idx(IMAGES, lambda b: b + b"\x00"),
     r"file has trailing bytes: header says 20x28x28 = 15680 bytes of data, found 15681"),
    (_damage_idx(IMAGES, lambda b: b[:2]), r"images-idx3-ubyte.gz: only 2 bytes, too short"),
    (lambda f: (f / "t10k-images-idx3-ubyte.gz").write_bytes(
        (f / "t10k-images-idx3-ubyte.gz").read_bytes()[:200]),
     r"t10k-images-idx3-ubyte.gz: the gzip stream is truncated or corrupt"),
    (lambda f: (f / f"{LABELS}.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(19)))),
     r"holds 20 images but .*train-labels-idx1-ubyte.gz holds 19 labels"),
    (lambda f: (f / f"{LABELS}.gz").write_bytes(gzip.compress(idx_bytes(np.full(20, 12)))),
     r"train-labels-idx1-ubyte.gz: label 12 is outside 0..9"),
    (lambda f: (f / "t10k-labels-idx1-ubyte.gz").unlink(), r"missing t10k-labels-idx1-ubyte.gz"),
])
def test_idx_corrupt_contents(tmp_path, damage, message):
    write_idx_dir(tmp_path)
    damage(tmp_path)
    with pytest.raises(DataError, match=message):
        load_idx_dir(tmp_path)


# ---------------------------------------------------------------- CIFAR
class Evil:
    """A pickle that would run code when loaded."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_reader_matches_spec(tmp_path):
    batches = write_cifar_dir(tmp_path / "cifar-10-batches-py")
    raw = load_raw("cifar10", f"dir:{tmp_path}")  # the parent folder works too
    data, labels = batches["data_batch_1"]
    assert raw.x_train.shape == (30, 32, 32, 3)
    # pixel (r, c) of channel k is data[1024 * k + 32 * r + c]
    for k in range(3):
        for r, c in [(0, 0), (5, 17), (31, 31)]:
            assert raw.x_train[0, r, c, k] == data[0, 1024 * k + 32 * r + c]
    assert raw.y_train[: len(labels)].tolist() == labels


@pytest.mark.parametrize("content,message", [
    (lambda good: good[: len(good) // 2], r"not a readable CIFAR-10 python batch, truncated or corrupt"),
    (lambda good: b"garbage" * 10, r"not a readable CIFAR-10 python batch"),
    (lambda good: pickle.dumps({b"labels": [1]}, protocol=2), r"expected a dict with b'data' and b'labels'"),
    (lambda good: cifar_batch_bytes(np.zeros((2, 100), np.uint8), [1, 2]), r"b'data' is uint8 \(2, 100\), expected uint8 \(N, 3072\)"),
    (lambda good: cifar_batch_bytes(np.zeros((2, 3072), np.uint8), [1]), r"2 images but 1 labels"),
    (lambda good: cifar_batch_bytes(np.zeros((1, 3072), np.uint8), [10]), r"label 10 is outside 0..9"),
    (lambda good: pickle.dumps(Evil(), protocol=2),
     r"holds a pickled (__builtin__|builtins).print, which no CIFAR-10 batch contains; refusing"),
    (None, r"missing data_batch_3"),
])
def test_cifar_corrupt(tmp_path, content, message):
    write_cifar_dir(tmp_path)
    f = tmp_path / "data_batch_3"
    if content is None:
        f.unlink()
    else:
        f.write_bytes(content(f.read_bytes()))
    with pytest.raises(DataError, match=message if content is None else f"data_batch_3: {message}"):
        load_cifar_dir(tmp_path)


# ---------------------------------------------------------------- sample and real files
@pytest.mark.parametrize("dataset,shape,n_train,n_test,balanced", [
    ("mnist", (28, 28, 1), 15000, 2000, True), ("fashion_mnist", (28, 28, 1), 3000, 1000, True),
    # the whole offline CIFAR-10 subset: the first 1,017 rows of each published batch
    ("cifar10", (32, 32, 3), 5085, 1017, False),
])
def test_bundled_sample(dataset, shape, n_train, n_test, balanced):
    raw = load_sample(dataset)
    assert raw.x_train.shape == (n_train, *shape) and raw.x_test.shape == (n_test, *shape)
    assert "SAMPLE" in raw.description and str(n_train) in raw.description
    counts = np.bincount(raw.y_train, minlength=10)
    if balanced:  # the same count of every class
        assert set(counts) == {n_train // 10}
    else:  # within a few percent, as the published batches are
        assert counts.min() > 0.9 * n_train / 10 and counts.max() < 1.1 * n_train / 10
    assert raw.x_train.std() > 20  # real images, not blanks


def test_sample_rows_are_the_published_rows(shared_datasets):
    manifest = sample_manifest()
    for dataset, folder in [("mnist", shared_datasets / "mnist"),
                            ("cifar10", shared_datasets / "cifar10")]:
        full = load_raw(dataset, f"dir:{folder}")
        sample = load_sample(dataset)
        rows = manifest[dataset]["train_rows"]
        np.testing.assert_array_equal(sample.x_train, full.x_train[rows])
        np.testing.assert_array_equal(sample.y_test, full.y_test[manifest[dataset]["test_rows"]])


def test_real_shared_files_parse(shared_datasets):
    sums = dict(reversed(line.split()) for line in
                (shared_datasets / "SHA256SUMS").read_text().splitlines() if line.strip())
    mnist = load_raw("mnist", f"dir:{shared_datasets / 'mnist'}")
    assert mnist.x_train.shape == (17435, 28, 28, 1) and mnist.x_test.shape == (10000, 28, 28, 1)
    assert mnist.y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the published first labels
    cifar = load_raw("cifar10", f"dir:{shared_datasets / 'cifar10'}")
    assert cifar.x_train.shape == (5085, 32, 32, 3) and cifar.x_test.shape == (1017, 32, 32, 3)
    assert cifar.y_train[:5].tolist() == [6, 9, 9, 4, 1]
    key = next(k for k in sums if k.endswith("mnist/train-images-idx3-ubyte.gz"))
    digest = hashlib.sha256((shared_datasets / "mnist/train-images-idx3-ubyte.gz").read_bytes())
    assert digest.hexdigest() == sums[key]


def test_debian_fashion_mnist():
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("apt-get install dataset-fashion-mnist for this test")
    raw = load_raw("fashion_mnist", f"dir:{FASHION}")
    assert raw.x_train.shape == (60000, 28, 28, 1) and raw.x_test.shape == (10000, 28, 28, 1)
    assert set(np.bincount(raw.y_train)) == {6000}


# ---------------------------------------------------------------- split and pipeline
def test_split_is_deterministic_disjoint_and_padded():
    raw = load_sample("mnist")
    cfg = make_config(dataset="mnist", validation_split=0.2, seed=7)
    a, b = split(raw, cfg), split(raw, cfg)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert len(a.y_train) == 12000 and len(a.y_val) == 3000
    assert a.x_train.shape[1:] == (32, 32, 1)
    assert not a.x_train[:, :2].any() and not a.x_train[:, :, -2:].any()  # zero border
    np.testing.assert_array_equal(a.x_test[:, 2:30, 2:30], raw.x_test)
    # train and validation are disjoint and together are the whole train set
    flat = lambda x: {hashlib.md5(r.tobytes()).hexdigest() for r in x}
    tr, va = flat(a.x_train[:, 2:30, 2:30]), flat(a.x_val[:, 2:30, 2:30])
    assert not tr & va and len(tr | va) == len(flat(raw.x_train))
    other = split(raw, make_config(dataset="mnist", validation_split=0.2, seed=8))
    assert not np.array_equal(other.y_val, a.y_val)


def _brute_force_crop_offsets(image, out, padding):
    """Every (dy, dx) such that out is the padded image's window at that offset."""
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    h, w = image.shape[:2]
    hits = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            window = padded[dy:dy + h, dx:dx + w]
            if np.array_equal(window, out):
                hits.append((dy, dx, False))
            if np.array_equal(window[:, ::-1], out):
                hits.append((dy, dx, True))
    return hits


def _check_crops(crop_flip):
    """``crop_flip(images, flip)``: every output a crop (and maybe flip) of its own image."""
    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8, 3)).astype("float32")
    out = crop_flip(images, True)
    assert out.shape == images.shape
    offsets, flips = set(), set()
    for img, o in zip(images, out):
        hits = _brute_force_crop_offsets(img, o, 2)
        assert hits, "every output is a crop of its own padded image"
        offsets.add(hits[0][:2])
        flips.add(hits[0][2])
    assert len(offsets) > 10 and flips == {True, False}  # per-image randomness
    np.testing.assert_array_equal(out, crop_flip(images, True))  # a pure function of its key
    no_flip = crop_flip(images, False)
    assert all(not h[2] for img, o in zip(images, no_flip) for h in _brute_force_crop_offsets(img, o, 2)[:1])


def test_random_crop_flip_against_brute_force():
    _check_crops(lambda images, flip: random_crop_flip(
        tf.constant(images), tf.constant([1, 2], tf.int64), 2, flip=flip).numpy())


def test_digits_are_never_flipped_cifar_is():
    def flipped_any(dataset):
        cfg = make_config(dataset=dataset, crop_padding=0, batch_size=64, max_train_samples=256,
                          validation_split=0.0)
        data = make_datasets(cfg)
        seen = {hashlib.md5((x * 255).round().astype(np.uint8).tobytes()).hexdigest()
                for xb, _ in data.train.take(data.steps_per_epoch) for x in xb.numpy()}
        originals = {hashlib.md5(x.tobytes()).hexdigest() for x in data.splits.x_train}
        return len(seen - originals) > 0
    assert not flipped_any("mnist")
    assert flipped_any("cifar10")


def test_pipeline_batches_labels_and_reshuffles():
    cfg = make_config(dataset="cifar10", batch_size=32, max_train_samples=128, augment=False,
                      epochs=2)
    data = make_datasets(cfg)
    assert data.steps_per_epoch == 4
    both = [y.numpy().argmax(1) for _, y in data.train]  # the two epochs back to back
    first, second = both[:4], both[4:]
    assert [y.numpy().argmax(1).tolist() for _, y in make_datasets(cfg, first_epoch=1).train] \
        == [b.tolist() for b in second]
    assert [len(b) for b in first] == [32] * 4
    assert sorted(np.concatenate(first)) == sorted(data.splits.y_train.tolist())
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))  # new order per epoch
    x, y = next(iter(data.test))
    assert x.dtype == tf.float32 and 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    assert y.shape[1] == 10
    # the same seed gives the same first-epoch order in a new pipeline
    again = [y.numpy().argmax(1) for _, y in make_datasets(cfg).train.take(4)]
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(first))


def test_an_epoch_does_not_depend_on_the_epochs_before_it():
    # What resume relies on: epoch e's batches (order and crops) are the same in a
    # pipeline that starts at epoch 0 and in one that starts at e.
    cfg = make_config(dataset="cifar10", batch_size=32, max_train_samples=96, epochs=5, seed=4)
    data = make_datasets(cfg)
    whole = [x.numpy() for x, _ in data.train]
    resumed = [x.numpy() for x, _ in make_datasets(cfg, first_epoch=3).train]
    assert len(whole) == 15 and len(resumed) == 6
    for a, b in zip(whole[9:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(whole[0], whole[3])  # a new order and new crops every epoch
    other = make_datasets(make_config(dataset="cifar10", batch_size=32, max_train_samples=96,
                                      epochs=5, seed=5))
    assert not np.array_equal(next(iter(other.train))[0].numpy(), whole[0])


def test_keras_source_failure_names_offline_sources(monkeypatch):
    def offline():
        raise OSError("network is unreachable")
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError, match=r"source keras: could not download cifar10.*'sample'.*'dir:<path>'"):
        load_raw("cifar10", "keras")


def test_expected_train_images_without_loading_the_data():
    n_sample = len(sample_manifest()["mnist"]["train_rows"])
    assert n_sample == len(load_raw("mnist", "sample").y_train)
    # the split of splits.py: round(n * validation_split) held out
    assert expected_train_images("mnist", "sample", 0.1, None) == n_sample - round(0.1 * n_sample)
    assert expected_train_images("mnist", "keras", 0.1, None) == 54_000
    assert expected_train_images("cifar10", "keras", 0.0, 1000) == 1000
    assert expected_train_images("cifar10", "dir:/x", 0.2, None) == 40_000  # published size
    cfg = make_config(dataset="cifar10", source="sample", validation_split=0.1)
    assert expected_train_images("cifar10", "sample", 0.1, None) == len(load_splits(cfg).y_train)


# ------------------------------------------------------------------ NumPy pipeline (JAX backend)
def test_numpy_random_crop_flip_against_brute_force():
    _check_crops(lambda images, flip: arrays.random_crop_flip(images, [1, 2], 2, flip=flip))


def test_numpy_batches_are_a_pure_function_of_seed_epoch_and_index():
    # what resume relies on, as for tf.data: epoch e's batches do not depend on the ones before
    cfg = make_config(dataset="cifar10", batch_size=64, max_train_samples=200,
                      validation_split=0.0)
    s = split(load_sample("cifar10"), cfg)
    whole = TrainBatches(s.x_train, s.y_train, cfg, 64, 0, 3)
    resumed = TrainBatches(s.x_train, s.y_train, cfg, 64, 1, 3)
    assert whole.steps == 4 and len(whole) == 12 and len(resumed) == 8
    for i in range(8):
        for a, b in zip(whole[4 + i], resumed[i]):
            np.testing.assert_array_equal(a, b)
    xb, yb = whole[0]
    assert xb.dtype == np.float32 and 0.0 <= xb.min() and xb.max() <= 1.0
    assert yb.shape == (64, 10) and (yb.sum(1) == 1).all()
    labels = [np.concatenate([whole[e * 4 + k][1].argmax(1) for k in range(4)]) for e in range(2)]
    assert len(labels[0]) == 200 and sorted(labels[0]) == sorted(s.y_train.tolist())
    assert not np.array_equal(labels[0], labels[1])  # a new order each epoch
    assert whole[3][0].shape[0] == 200 - 3 * 64  # a short last batch
    ev = EvalBatches(s.x_train, s.y_train, 64, 10)
    assert len(ev) == 4 and np.array_equal(ev[0][1].argmax(1), s.y_train[:64])


def test_the_tf_data_pipelines_run_without_autotuning():
    # autotuning's thread made every long fit end with a wait of up to a minute (the iterator's
    # destructor waits for it; benchmarks/tfdata_teardown.py)
    cfg = make_config(dataset="mnist", source="sample", max_train_samples=96, max_test_samples=32,
                      batch_size=32, epochs=2)
    data = make_datasets(cfg)
    for name in ("train", "validation", "test", "train_eval"):
        ds = getattr(data, name)
        assert ds.options().autotune.enabled is False, name
    assert sum(1 for _ in data.train) == 2 * data.steps_per_epoch
