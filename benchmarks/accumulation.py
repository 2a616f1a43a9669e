"""Benchmark the time and memory cost of gradient accumulation.

Same as ``swin-gao bench``; see ``swin_gao_lib/bench/specs.py`` for the method.
Example (the README's table)::

    python benchmarks/accumulation.py --models paper --batch 128 --n 1 2 4 8 --jit both --repeats 3
"""

import sys

from swin_gao_lib.bench.command import main

if __name__ == "__main__":
    sys.exit(main())
