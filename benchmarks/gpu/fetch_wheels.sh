#!/usr/bin/env bash
# Download, here (with network), the wheels the GPU machine lacks into .whl/ (ignored by
# git; name it in the device call's `carry`): Keras and the two of its dependencies that
# the machine's image does not hold (namex, optree), for CPython 3.12 on x86-64. The image
# already has JAX with CUDA, numpy, ml-dtypes, absl-py, h5py, rich, packaging, PyYAML,
# pandas, matplotlib, seaborn, scipy and tabulate (/work/.library/device/KINDS.md), and one
# version of each package must stay: benchmarks/gpu/run.sh installs only these with
# `pip install --no-index --no-deps --target /tmp/site .whl/*.whl` when Keras is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d .whl keras==3.13.2 namex optree
ls -la .whl
du -sh .whl
