"""Every relative link of the docs leads somewhere, and every number they quote from a
committed file is that file's number.

The convention (docs/testing.md): a quoted number is a Markdown link to the file and line it
comes from, ``[−0.45 pp [−1.23, +0.33]](../examples/study-quick/report/comparisons.csv#L2)``,
optionally titled with the CSV columns it reads, ``(...comparisons.csv#L2 "difference; ci_low;
ci_high")``. Each number of the link's text must be a number of those lines (or columns) at the
precision quoted; one quoted in % or pp may be the file's fraction times 100.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^)\s]+)(?:\s+\"([^\"]*)\")?\)")
LINES = re.compile(r"L(\d+)(?:-L(\d+))?")
SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
NUMBER = re.compile(
    r"(?<![\w.,−-])([−+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
    r"(?:·10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)|[eE]([−+-]?\d+))?(\s?(?:%|pp))?")


def numbers(text: str) -> list[tuple[float, float, bool]]:
    """Each number of ``text``: its value, half a unit of its last digit, whether in % or pp."""
    found = []
    for m in NUMBER.finditer(text):
        sign, whole, decimals, sup, exp, unit = m.groups()
        power = int(sup.translate(SUPERSCRIPT)) if sup else int(exp.replace("−", "-")) if exp else 0
        value = float(whole.replace(",", "") + "." + (decimals or "0")) * 10.0 ** power
        half = 0.5 * 10.0 ** (power - len(decimals or ""))
        found.append((-value if sign in ("−", "-") else value, half, bool(unit)))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def target_values(path: Path, first: int, last: int, columns: str | None) -> list[float]:
    """The numbers of lines ``first``..``last`` of ``path``, or of their ``columns`` (a CSV's)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not 1 <= first <= last <= len(lines):
        raise LookupError(f"{path.name} has {len(lines)} lines, not L{first}-L{last}")
    chosen = lines[first - 1:last]
    if columns:
        header = next(csv.reader([lines[0]]))
        names = [" ".join(c.split()) for c in columns.split(";")]  # a title may wrap
        missing = [c for c in names if c not in header]
        if missing:
            raise LookupError(f"{path.name} has no column {missing}")
        rows = list(csv.reader(io.StringIO("\n".join(chosen))))
        chosen = [row[header.index(c)] for row in rows for c in names]
    text = " ".join(chosen).replace("−", "-")
    values = [v for v, _, _ in numbers(text)]
    # a CSV or JSON line separates numbers with commas: read them without thousands too
    values += [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)]
    return values


def quoted(value: float, half: float, percent: bool, candidates: list[float]) -> bool:
    """Whether a candidate rounds to the quoted value (times 100 for a fraction quoted in % or pp)."""
    scales = (1.0, 100.0) if percent else (1.0,)
    return any(abs(c * s - value) <= half * (1 + 1e-9) + 1e-12 for c in candidates for s in scales)


def problems(page: Path, text: str | None = None) -> tuple[list[str], int]:
    """What is wrong with the page's relative links, and how many numbers it quotes."""
    text = FENCE.sub("", page.read_text(encoding="utf-8") if text is None else text)
    wrong, checked = [], 0
    for label, url, columns in LINK.findall(text):
        if re.match(r"[a-z]+:", url):
            continue
        where, _, anchor = url.partition("#")
        path = (page.parent / where).resolve() if where else page
        if not path.exists():
            wrong.append(f"{url}: no such file")
            continue
        lines = LINES.fullmatch(anchor)
        if lines:
            first = int(lines.group(1))
            try:
                values = target_values(path, first, int(lines.group(2) or first), columns or None)
            except LookupError as e:
                wrong.append(f"{url}: {e}")
                continue
            for value, half, percent in numbers(label):
                checked += 1
                if not quoted(value, half, percent, values):
                    wrong.append(f"[{label}]({url}): {value:g} is not in the file there")
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M)
            if anchor not in {slug(h) for h in headings}:
                wrong.append(f"{url}: no such heading")
    return wrong, checked


def test_the_checker_catches_a_changed_number_and_a_dead_link(tmp_path):
    (tmp_path / "r.csv").write_text("name,difference,ci_low,ci_high,n\n"
                                    "mnist,-0.4523,-1.2315,0.3269,10\ncifar,0.8123,1.25e-05,2,13312\n")
    (tmp_path / "p.md").write_text("# A page: its `heading`\n")
    page = tmp_path / "x.md"
    good = ("[−0.45 pp [−1.23, +0.33]](r.csv#L2 \"difference; ci_low; ci_high\"), [81.2%](r.csv#L3), "
            "[1.3·10⁻⁵](r.csv#L2-L3), [13,312](r.csv#L3), [the heading](p.md#a-page-its-heading), "
            "[web](https://x.y/a#L9), [text](r.csv)")
    assert problems(page, good) == ([], 6)
    assert numbers("CIFAR-10 −0.41 pp, 0.88× and 2.5·10⁻⁷") == [
        (-0.41, 0.005, True), (0.88, 0.005, False), (2.5e-7, 0.5e-8, False)]
    for bad, says in [("[−0.46 pp](r.csv#L2)", "-0.46 is not"), ("[+0.34](r.csv#L2)", "0.34 is not"),
                      ("[81.3%](r.csv#L3)", "81.3 is not"), ("[10](r.csv#L2 \"ci_low; n\")", ""),
                      ("[2](r.csv#L2 \"ci_low; n\")", "2 is not"), ("[x](r.csv#L4)", "has 3 lines"),
                      ("[x](r.csv#L2 \"p\")", "no column"), ("[x](gone.csv#L1)", "no such file"),
                      ("[x](p.md#another)", "no such heading")]:
        wrong, _ = problems(page, bad)
        assert (says in wrong[0]) if says else not wrong, (bad, wrong)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_leads_somewhere_and_every_quoted_number_matches(page):
    wrong, _ = problems(page)
    assert not wrong, f"{page.name}:\n" + "\n".join(wrong)


def test_the_pages_quote_their_numbers_by_link():
    # the convention is in use (317 numbers when written), so the pages cannot drop it unnoticed
    assert sum(problems(page)[1] for page in PAGES) >= 250
