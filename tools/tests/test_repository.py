"""The repository around the kit: CITATION.cff and the CI workflow against their schemas (as
``check-jsonschema`` bundles them, offline) and zizmor, the checklist's links, the tools that keep
docs and addresses current, and the house rules a linter would check."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
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

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "swin_gao_lib"
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


# --- tools that keep the docs current, and house rules -------------------------------

def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_configuration_reference_is_current_and_its_check_sees_a_stale_one(tmp_path):
    from swin_gao_lib.config import RunConfig

    proc = _tool("tools/config_reference.py", "--check")
    assert proc.returncode == 0, proc.stderr
    stale = tmp_path / "configuration.md"
    stale.write_text("# an old reference\n")
    proc = _tool("tools/config_reference.py", "--check", "--out", str(stale))
    assert proc.returncode == 1 and "stale" in proc.stderr
    text = (ROOT / "docs" / "configuration.md").read_text()
    for f in dataclasses.fields(RunConfig):
        assert f.metadata.get("help"), f"{f.name} has no help line"
        assert f"| `{f.name}` |" in text


def test_repository_address_is_kept_in_one_place():
    # README badges, docs and the notebooks' Colab install cells all follow pyproject.toml
    proc = _tool("tools/sync_repository.py", "--check")
    assert proc.returncode == 0, proc.stderr
    spec = importlib.util.spec_from_file_location("sync_repository",
                                                  ROOT / "tools" / "sync_repository.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = ('[badge](https://colab.research.google.com/github/swin-gao/swin-gao/blob/main/x.ipynb)'
            ' `pip install git+https://github.com/swin-gao/swin-gao`'
            ' "git+https://github.com/swin-gao/swin-gao"')
    assert tool.rewrite(text, "fork/kit") == text.replace("swin-gao/swin-gao", "fork/kit")


def test_outputs_folder_is_kept_and_runs_in_it_are_ignored():
    assert (ROOT / "outputs" / "README.md").is_file()
    paths = ["outputs/README.md", "outputs/quick/run/metrics.json", "notebooks/outputs/x/a"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.stdout.split() == paths[1:]


@pytest.mark.parametrize("pattern", ["NUM_CLASSES", "._iterations", '"cifar10": "CIFAR-10"'])
def test_no_scattered_facts(pattern):
    # class counts come from the registry, titles from labels, update counts from one helper
    hits = [str(p.relative_to(ROOT)) for p in [*PACKAGE.rglob("*.py"), *(ROOT / "tools").glob("*.py")]
            if pattern in p.read_text()]
    exempt = {"._iterations": ["tools/keras_accumulation_report.py"]}.get(pattern, [])
    assert [h for h in hits if h not in exempt] == [], hits


def test_code_names_no_issue_numbers():
    # history is CHANGELOG's (committed params headers keep theirs: dated predictions)
    found = [f"{p.relative_to(ROOT)}:{i}"
             for folder in ("swin_gao_lib", "tools", "benchmarks", "tests")
             for p in (ROOT / folder).rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bissues? #\d+", line)]
    assert not found, f"say what the code does instead: {found}"


def test_the_bundled_example_is_examples_quick_file_for_file():
    proc = _tool("tools/bundle_example.py", "--check")
    assert proc.returncode == 0, proc.stderr


def test_the_gpu_benchmark_scripts_parse():
    # the GPU run itself needs a GPU (or ~5 CPU minutes: benchmarks/gpu/run.sh OUT --smoke)
    import py_compile

    gpu = ROOT / "benchmarks" / "gpu"
    for script in ("run.sh", "fetch_wheels.sh"):
        assert subprocess.run(["bash", "-n", str(gpu / script)]).returncode == 0, script
    py_compile.compile(str(gpu / "equivalence.py"), doraise=True)


def test_notebooks_alones_noise_check_sees_tensorflow_start_up_lines():
    sys.path.insert(0, str(ROOT / "tools"))
    import notebooks_alone as alone

    nb = {"cells": [{"outputs": [{"name": "stderr", "output_type": "stream", "text": [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1795929592.312520   27768 port.cc:153] oneDNN custom operations are on.\n"]}]}]}
    assert len(alone.noise(nb, "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n")) == 3
    assert not alone.noise({"cells": [{"outputs": [{"text": "epoch 1: loss 0.5\n"}]}]})
