"""docs/checklist.md, CITATION.cff and the CI workflow (.github/workflows/ci.yml).

CITATION.cff is validated against the Citation File Format 1.2.0 schema and
the workflow against GitHub's workflow schema, both as ``check-jsonschema``
bundles them (copies of citation-file-format/citation-file-format's
``schema.json`` and SchemaStore's ``github-workflow.json``), so no network is
needed; the workflow is also linted with zizmor, offline. Each validator is
shown a broken copy too, so that a pass means something.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "paper" / "aburass-dorgham-2023.txt"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def bundled_schema(name: str) -> dict:
    return json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                      .joinpath(f"{name}.json").read_text())


# --- CITATION.cff ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


@pytest.fixture(scope="module")
def cff_validator():
    schema = bundled_schema("citation-file-format")
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_citation_cff_is_valid_cff_1_2_0(cff, cff_validator):
    assert cff["cff-version"] == "1.2.0"
    errors = [e.message for e in cff_validator.iter_errors(cff)]
    assert errors == []
    broken = copy.deepcopy(cff)
    del broken["authors"]
    broken["references"][0]["identifiers"][1]["value"] = "not a doi"
    assert len(list(cff_validator.iter_errors(broken))) >= 2


def test_citation_cff_follows_pyproject(cff):
    assert cff["version"] == PYPROJECT["version"]
    assert cff["repository-code"] == PYPROJECT["urls"]["Repository"]
    assert cff["license"] == PYPROJECT["license"]["text"]


def test_citation_cff_cites_the_paper_as_its_text_gives_it(cff):
    (paper,) = [r for r in cff["references"] if r["type"] == "article"]
    assert paper["year"] == 2023
    assert [(a["given-names"], a["family-names"]) for a in paper["authors"]] == [
        ("Sanad", "Aburass"), ("Osama", "Dorgham")]
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not at {PAPER}")
    text = PAPER.read_text()
    assert text.splitlines()[0].strip() == paper["title"]
    assert "Sanad Aburass" in text and "Osama Dorgham" in text
    for author in paper["authors"]:  # each affiliation's institution is the paper's
        for institution in re.findall(r"(Maharishi International University|Al-Balqa Applied University|"
                                      r"Skyline University College)", author["affiliation"]):
            assert institution in text


# --- the CI workflow ------------------------------------------------------------------

@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return data


def test_workflow_runs_ci_run_for_the_public_repository(workflow):
    assert PYPROJECT["urls"]["Repository"] in WORKFLOW.read_text()
    assert {"push", "pull_request"} <= set(workflow["on"])
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert 0 < job["timeout-minutes"] <= 90 and job["runs-on"].startswith("ubuntu")
    steps = job["steps"]
    assert steps[-1]["run"] == "./.ci/run"
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses and all(re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", u) for u in uses)  # pinned
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    supported = PYPROJECT["requires-python"]
    assert python["with"]["python-version"] == "3.11" and ">=3.11" in supported


def test_workflow_matches_githubs_workflow_schema(workflow):
    schema = bundled_schema("github-workflows")
    assert schema["$id"] == "https://json.schemastore.org/github-workflow.json"
    validator = jsonschema.Draft7Validator(schema)
    assert [e.message for e in validator.iter_errors(workflow)] == []
    for breakage in ("runs_on", "uses", "on"):
        broken = copy.deepcopy(workflow)
        (job,) = broken["jobs"].values()
        if breakage == "runs_on":
            job["runs_on"] = job.pop("runs-on")
        elif breakage == "uses":
            job["steps"][0]["uses"] = 3
        else:
            broken["on"]["push"] = {"branch": ["main"]}
        assert list(validator.iter_errors(broken)), breakage


def zizmor(path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("zizmor")
    return subprocess.run([str(exe if exe.exists() else "zizmor"), "--offline", "--no-progress", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_workflow_passes_zizmor(tmp_path):
    ours = zizmor(WORKFLOW)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert "No findings" in ours.stdout + ours.stderr
    bad = tmp_path / "bad.yml"  # an unpinned action and a template injection
    bad.write_text("name: bad\non: pull_request_target\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
                   "    steps:\n      - uses: actions/checkout@v4\n"
                   "      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    assert zizmor(bad).returncode != 0


# --- docs/checklist.md ----------------------------------------------------------------

def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)}


def test_every_link_of_the_checklist_leads_somewhere():
    page = ROOT / "docs" / "checklist.md"
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    assert len(links) > 40
    for link in links:
        if link.startswith("http"):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), link
        if anchor:
            assert anchor in anchors(path), link


def test_every_checklist_item_is_answered_or_says_not_yet():
    text = (ROOT / "docs" / "checklist.md").read_text()
    rows = [r for r in text.splitlines() if r.startswith("| ") and not r.startswith("| item")]
    assert len(rows) >= 25
    for row in rows:
        item, mark, answer = [c.strip() for c in row.strip("| ").split(" | ")]
        assert mark in {"✅", "◐", "✗"}, row[:60]
        assert re.search(r"\]\(", answer) or "as in the" in answer, f"no link: {item}"
        if mark != "✅":
            assert re.search(r"not (yet|measured|been run|known)", answer, flags=re.I), item
    for item in ("Specification of dependencies", "Training code", "Evaluation code", "Pre-trained models",
                 "README with results", "number of training and evaluation runs", "Number of parameters",
                 "computing infrastructure", "Hyper-parameters", "error bars"):
        assert item in text, item
