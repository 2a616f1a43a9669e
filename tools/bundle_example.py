"""Copy ``examples/quick``'s run records into the package, for the report notebook alone.

Opened from its Colab badge, the report notebook has no clone beside it: with no
``suite_dir`` it reports on the records bundled in ``swin_gao_lib/example_suite/``
(:data:`swin_gao_lib.records.EXAMPLE_SUITE`). They are the committed example's
``config.yaml``, ``history.csv``, ``lr.csv`` and ``metrics.json`` of each run,
nothing else. After regenerating ``examples/quick``::

    python tools/bundle_example.py           # copy them
    python tools/bundle_example.py --check   # exit 1 if the bundle differs (a test runs this)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_gao_lib.records import EXAMPLE_FILES, EXAMPLE_SUITE, METRICS  # noqa: E402

SOURCE = ROOT / "examples" / "quick"


def wanted() -> dict[str, bytes]:
    """Relative path -> bytes of every file the bundle must hold."""
    files = {}
    for run in sorted(p for p in SOURCE.iterdir() if (p / METRICS).is_file()):
        for name in EXAMPLE_FILES:
            if (run / name).is_file():
                files[f"{run.name}/{name}"] = (run / name).read_bytes()
    return files


def bundled() -> dict[str, bytes]:
    if not EXAMPLE_SUITE.is_dir():
        return {}
    return {p.relative_to(EXAMPLE_SUITE).as_posix(): p.read_bytes()
            for p in sorted(EXAMPLE_SUITE.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the bundle differs")
    args = ap.parse_args(argv)
    want = wanted()
    if not want:
        print(f"{SOURCE}: no complete runs to bundle", file=sys.stderr)
        return 1
    if args.check:
        if bundled() != want:
            print(f"{EXAMPLE_SUITE} differs from {SOURCE}'s records; run "
                  "`python tools/bundle_example.py`", file=sys.stderr)
            return 1
        return 0
    shutil.rmtree(EXAMPLE_SUITE, ignore_errors=True)
    for rel, data in want.items():
        (EXAMPLE_SUITE / rel).parent.mkdir(parents=True, exist_ok=True)
        (EXAMPLE_SUITE / rel).write_bytes(data)
    print(f"bundled {len(want)} files of {SOURCE} in {EXAMPLE_SUITE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
