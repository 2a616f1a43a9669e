"""What the documentation names exists: every file path, dotted name and import it shows.

The package was rearranged by layer; a page that still names a module
where it used to be sends a reader nowhere. CHANGELOG.md is left out on purpose:
it names the old paths to say where they went.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
PATH = re.compile(r"swin_gao_lib/[A-Za-z0-9_/]*[A-Za-z0-9_](?:\.[a-z]+)?")
DOTTED = re.compile(r"(?<![\w/.])swin_gao_lib(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
IMPORT = re.compile(r"^\s*(from swin_gao_lib[\w.]* import [\w, ()]+|import swin_gao_lib[\w.]*)\s*$",
                    re.M)


def resolves(dotted: str) -> bool:
    """Import the longest module prefix of ``dotted``, then look up the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_the_pages_name_what_the_checker_reads():
    # the patterns find what a page shows (a checker that finds nothing passes everything)
    text = "see `swin_gao_lib/runs/plan.py`, `swin_gao_lib.config.params` and\n" \
           "from swin_gao_lib.training.train import train\n"
    assert PATH.findall(text) == ["swin_gao_lib/runs/plan.py"]
    assert "swin_gao_lib.config.params" in DOTTED.findall(text)
    assert IMPORT.findall(text) == ["from swin_gao_lib.training.train import train"]
    assert not resolves("swin_gao_lib.runs.no_such_module")
    assert not resolves("swin_gao_lib.config.params.no_such_function")
    # ... and the pages do name many (41 paths, 7 dotted names, 2 imports when written)
    assert sum(len(set(PATH.findall(p.read_text()))) for p in PAGES) > 30


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_named_file_and_module_exists(page):
    text = page.read_text()
    missing = [p for p in sorted(set(PATH.findall(text)))
               if not (ROOT / p).exists() and not (ROOT / f"{p}.py").exists()]
    assert not missing, f"{page.name} names files that do not exist: {missing}"
    unresolved = [d for d in sorted(set(DOTTED.findall(text))) if not resolves(d)]
    assert not unresolved, f"{page.name} names modules or objects that do not exist: {unresolved}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_import_a_page_shows_works(page):
    for statement in IMPORT.findall(page.read_text()):
        exec(statement, {})  # noqa: S102 -- the page's own import line


PLACEHOLDER = re.compile(r"\[\[[A-Z][^\]]*\]\]|__[A-Z]{3,}__")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_holds_a_placeholder_for_a_number(page):
    # a measurement still to be made is said in words, with its command, never left as a mark
    assert PLACEHOLDER.findall("[[MEASURE seeds]] and __BUDGET__ and [[x]]") == [
        "[[MEASURE seeds]]", "__BUDGET__"]
    assert PLACEHOLDER.findall(page.read_text()) == []
