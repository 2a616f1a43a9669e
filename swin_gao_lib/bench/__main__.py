"""``python -m swin_gao_lib.bench``: the benchmark, and its worker entry point."""

import sys

from swin_gao_lib.bench.command import main

sys.exit(main())
