"""The shape of the code: layers import only downward, planning needs no TensorFlow,
one owner per concept, and the generated configuration reference is current."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "swin_gao_lib"

#: The layers, bottom to top: one subpackage each, in the order data flows through a run
#: (params -> config -> data -> model -> train step -> run records -> report), then the
#: drivers. Run records sit below training: ``training/train.py`` writes them, and the
#: analysis reads them back.
LAYERS = ("base", "runtime", "config", "data", "model", "records", "training", "analysis",
          "runs", "bench", "cli")


def layer_of(module: str) -> str:
    """The layer a module belongs to: its subpackage, or ``base`` for the package's own files."""
    head = module.split(".")[0]
    return head if head in LAYERS else "base"


def layer_rank(module: str) -> int:
    return LAYERS.index(layer_of(module))


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "swin_gao_lib"


def _internal_imports(path: Path) -> set[str]:
    """Every swin_gao_lib module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("swin_gao_lib"):
            base = node.module.removeprefix("swin_gao_lib").lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}".lstrip(".")
                found.add(candidate if candidate in MODULES else (base or "swin_gao_lib"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("swin_gao_lib."):
                    found.add(alias.name.removeprefix("swin_gao_lib."))
    return found


MODULES = {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _internal_imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_sits_in_a_layer():
    strays = [m for m in MODULES if layer_of(m) == "base"
              and m not in ("swin_gao_lib", "errors", "files", "cli")]
    assert not strays, "put each module into the layer of its job"


def test_the_tree_shows_the_layers():
    # `ls swin_gao_lib/` shows the layers: a subpackage per layer, and at the top only the
    # base (errors, files), the command line and the package data.
    top = {p.name for p in PACKAGE.iterdir() if not p.name.startswith(("__", "."))}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS) - {"base", "cli"}
    assert top - packages == {"errors.py", "files.py", "cli.py", "example_suite"}
    for name in packages:  # every layer says what it holds
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc, name


def test_no_module_outgrows_one_job():
    big = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"split by job: {big}"


#: About the most one job takes; a module past it has usually grown a second job.
MAX_MODULE_LINES = 350


def test_imports_only_go_down_the_layers():
    # derived from the import graph: a module imports its own layer or lower ones; inside a
    # layer, the order is whatever the graph says, and the cycle check below keeps it an order
    climbs = [f"{mod} ({layer_of(mod)}) imports {dep} ({layer_of(dep)})"
              for mod, deps in _graph().items() for dep in deps
              if dep != mod and layer_rank(dep) > layer_rank(mod)]
    assert not climbs, "\n".join(climbs)


def test_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node, path):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph.get(node, ()):
            if dep != node:
                visit(dep, path + [node])
        state[node] = 2

    for node in graph:
        visit(node, [])


def test_graph_checker_sees_a_climb(tmp_path):
    # The checker itself: a lower layer importing a higher one is found.
    bad = tmp_path / "config.py"
    bad.write_text("def f():\n    from swin_gao_lib.training.train import train\n")
    assert "training.train" in _internal_imports(bad)
    assert layer_rank("training.train") > layer_rank("config.checks")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_run_all_plans_without_tensorflow():
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from swin_gao_lib.cli import build_parser\n"
        "from swin_gao_lib.runs.runner import plan_suite\n"
        "build_parser()\n"
        "files = sorted(Path('params/study-quick').glob('*.yaml'))\n"
        "plans = plan_suite(files, Path('unused'))\n"
        "from swin_gao_lib.records import RunFolder\n"
        "[RunFolder(p.run_dir).complete for p in plans]\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "print(len(plans), heavy)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["170", "[]"]


def test_planning_resolves_each_point_once(monkeypatch):
    # run-all reads and expands each params file once, not once per point.
    from swin_gao_lib.config import params
    from swin_gao_lib.runs.runner import plan_suite

    reads, expands = [], []
    read, expand = params.read_params, params.expand
    monkeypatch.setattr(params, "read_params", lambda p: reads.append(p) or read(p))
    monkeypatch.setattr(params, "expand", lambda *a: expands.append(a) or expand(*a))
    files = sorted((ROOT / "params" / "study-quick").glob("*.yaml"))
    plans = plan_suite(files, Path("unused"))
    assert len(plans) == 170 and len(reads) == len(expands) == len(files)


def test_configuration_reference_is_current():
    proc = subprocess.run([sys.executable, "tools/config_reference.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_configuration_reference_check_fails_when_stale(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text("# an old reference\n")
    proc = subprocess.run([sys.executable, "tools/config_reference.py", "--check", "--out",
                           str(stale)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "stale" in proc.stderr


def test_reference_documents_every_config_key():
    import dataclasses

    from swin_gao_lib.config import RunConfig

    text = (ROOT / "docs" / "configuration.md").read_text()
    for f in dataclasses.fields(RunConfig):
        assert f.metadata.get("help"), f"{f.name} has no help line"
        assert f"| `{f.name}` |" in text


@pytest.mark.parametrize("pattern", ["NUM_CLASSES", "._iterations", '"cifar10": "CIFAR-10"'])
def test_no_scattered_facts(pattern):
    # Class counts come from the registry, titles from labels, update counts from
    # the public helper: none of these is spelled out in another module.
    hits = [str(p.relative_to(ROOT)) for p in list(PACKAGE.rglob("*.py")) + list((ROOT / "tools").glob("*.py"))
            if pattern in p.read_text()]
    # The report for Keras's maintainers is about Keras's private counter (it subclasses the optimizer).
    exempt = {"._iterations": ["tools/keras_accumulation_report.py"]}.get(pattern, [])
    assert [h for h in hits if h not in exempt] == [], hits


def test_registry_is_the_source_of_dataset_choices():
    from swin_gao_lib.config import datasets
    from swin_gao_lib.bench.command import add_arguments
    from swin_gao_lib.config import make_config
    import argparse

    for name, spec in datasets.DATASETS.items():
        assert datasets.title(name) == spec.title
        source = "sample" if spec.sample else "keras"
        cfg = make_config(dataset=name, source=source)
        assert cfg.num_classes == spec.num_classes
    bench = add_arguments(argparse.ArgumentParser())
    choices = next(a.choices for a in bench._actions if a.dest == "dataset")
    assert tuple(choices) == datasets.with_sample()


def test_readme_is_short_and_points_to_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README's table of contents misses {page.name}"
    # CI runs the README's test command verbatim
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in readme


def test_repository_address_is_kept_in_one_place():
    # README badges, docs and the notebooks' Colab install cells all follow pyproject.toml.
    proc = subprocess.run([sys.executable, "tools/sync_repository.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_repository", ROOT / "tools" / "sync_repository.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = ('[badge](https://colab.research.google.com/github/swin-gao/swin-gao/blob/main/x.ipynb)'
            ' `pip install git+https://github.com/swin-gao/swin-gao`'
            ' "git+https://github.com/swin-gao/swin-gao"')
    assert tool.rewrite(text, "fork/kit") == text.replace("swin-gao/swin-gao", "fork/kit")


def test_outputs_folder_is_kept_and_runs_in_it_are_ignored():
    assert (ROOT / "outputs" / "README.md").is_file()
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["outputs/README.md", "outputs/quick/run/metrics.json", "notebooks/outputs/x/a"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.stdout.split() == paths[1:]


def test_the_report_notebook_never_imports_a_backend(tmp_path):
    # A report reads records: its kernel has no use for TensorFlow, Keras or JAX, whose
    # import alone is about 4 s of every report (its setup cell once printed this machine's GPU).
    cells = json.loads((ROOT / "notebooks" / "report.ipynb").read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    before = code[:next(i for i, source in enumerate(code) if "build_report(" in source)]
    setup = "\n".join(line for source in before for line in source.splitlines()
                      if not line.startswith("%"))
    proc = _python(
        "import sys\n"
        f"{setup}\n"
        "from swin_gao_lib.analysis.report import build_report\n"
        f"build_report('examples/quick', {str(tmp_path / 'report')!r})\n"
        "print([m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules])\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "[]"


def test_code_names_no_issue_numbers():
    # An issue number tells a reader nothing the code cannot say itself; history is
    # CHANGELOG's. (Committed params headers keep theirs: they are dated predictions.)
    found = [f"{p.relative_to(ROOT)}:{i}"
             for folder in ("swin_gao_lib", "tools", "benchmarks", "tests")
             for p in (ROOT / folder).rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bissues? #\d+", line)]
    assert not found, f"say what the code does instead: {found}"
