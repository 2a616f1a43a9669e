"""``swin-gao bench``: the time and memory cost of accumulation, per backend."""
