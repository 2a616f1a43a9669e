"""swin_gao_lib: reproduce and explain gradient accumulation on a small Swin Transformer
(layers: docs/architecture.md)."""

import os

# TensorFlow is the default backend (the paper's); an explicit KERAS_BACKEND wins.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
