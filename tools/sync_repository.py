"""Write the repository's public address, from pyproject.toml, wherever a user meets it.

``[project.urls] Repository`` in ``pyproject.toml`` is the one place the address is
kept. The README's and docs' Colab badges and ``pip install git+...`` lines, and the
notebooks' Colab install cells, are rewritten from it::

    python tools/sync_repository.py           # after changing the address (a fork)
    python tools/sync_repository.py --check   # exit 1 if a file disagrees (a test runs this)
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ["README.md", "docs/*.md", "notebooks/*.ipynb"]
# github.com/<owner>/<name> as written in git+ URLs and Colab links; owner and name as GitHub allows.
GITHUB = re.compile(r"(?P<prefix>git\+https://github\.com/|colab\.research\.google\.com/github/)"
                    r"(?P<slug>[A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?=/blob/|[\s`\"'\\)]|$)")


def canonical() -> str:
    """``owner/name`` of the repository address in pyproject.toml."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    match = re.fullmatch(r"https://github\.com/([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)/?", url)
    if not match:
        raise SystemExit(f"pyproject.toml: Repository {url!r} is not https://github.com/<owner>/<name>")
    return match.group(1)


def rewrite(text: str, slug: str) -> str:
    return GITHUB.sub(lambda m: m.group("prefix") + slug, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file disagrees")
    args = ap.parse_args(argv)
    slug = canonical()
    stale = []
    for pattern in FILES:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            new = rewrite(text, slug)
            if new != text:
                stale.append(path.relative_to(ROOT))
                if not args.check:
                    path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"not at github.com/{slug}: {', '.join(map(str, stale))}; run "
              "`python tools/sync_repository.py`", file=sys.stderr)
        return 1
    for path in stale:
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
