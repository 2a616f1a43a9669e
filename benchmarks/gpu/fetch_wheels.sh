#!/usr/bin/env bash
# Download, here (with network), the wheels the GPU machine lacks into .whl/ (ignored by
# git; it travels with the working tree): Keras and its small dependencies, PyYAML and
# seaborn (the bench figure uses the kit's plots), as manylinux wheels for CPython 3.12 on
# x86-64. The GPU machine already has JAX (with CUDA), numpy, ml_dtypes, pandas and
# matplotlib; benchmarks/gpu/run.sh installs these with
# `pip install --no-index --no-deps --target /tmp/site .whl/*.whl`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d .whl \
  keras==3.13.2 absl-py namex optree h5py rich markdown-it-py mdurl pygments PyYAML seaborn \
  typing_extensions
ls -la .whl
du -sh .whl
