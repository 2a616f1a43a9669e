"""Shared test setup: quiet TensorFlow, and tiny configs that train in seconds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
FASHION = Path("/usr/share/datasets/fashion-mnist")

#: A small model with every stochastic part off: the equivalence tests need
#: two runs to see the same function.
TINY_DETERMINISTIC = dict(
    embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8, dropout=0.0,
    attention_dropout=0.0, drop_path_rate=0.0, label_smoothing=0.1,
)


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"real data subsets not present at {SHARED}")
    return SHARED
