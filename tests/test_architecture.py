"""The shape of the code, derived from its import graph: no cycle between modules or layers
(so the layers have an order, and no layer imports one above it), modules of one job, and
planning without TensorFlow."""

import argparse
import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

from swin_gao_lib.bench.command import add_arguments
from swin_gao_lib.config import datasets, make_config, params
from swin_gao_lib.runs.runner import plan_suite

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "swin_gao_lib"
#: About the most one job takes; a module past it has usually grown a second job.
MAX_MODULE_LINES = 350


def _module_name(path: Path) -> str:
    parts = [p for p in path.relative_to(PACKAGE).with_suffix("").parts if p != "__init__"]
    return ".".join(parts) or "swin_gao_lib"


MODULES = {_module_name(p) for p in PACKAGE.rglob("*.py")}


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
            found |= {a.name.removeprefix("swin_gao_lib.") for a in node.names
                      if a.name.startswith("swin_gao_lib.")}
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _internal_imports(p) - {_module_name(p)} for p in PACKAGE.rglob("*.py")}


def test_the_import_graph_has_no_cycle_between_modules_or_between_layers():
    # a layer is a subpackage (or a module at the top); its order is the graph's own
    graph = _graph()
    layers: dict[str, set[str]] = {}
    for module, deps in graph.items():
        layers.setdefault(module.split(".")[0], set()).update(d.split(".")[0] for d in deps)
    for name, deps in layers.items():
        deps.discard(name)
    for g in (graph, layers):
        tuple(graphlib.TopologicalSorter(g).static_order())  # raises CycleError naming it


def test_the_graph_sees_imports_inside_functions(tmp_path):
    bad = tmp_path / "config.py"
    bad.write_text("def f():\n    from swin_gao_lib.training.train import train\n")
    assert _internal_imports(bad) == {"training.train"}


def test_no_module_outgrows_one_job():
    big = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"split by job: {big}"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_run_all_plans_without_tensorflow():
    proc = _python(
        "import sys\nfrom pathlib import Path\n"
        "from swin_gao_lib.cli import build_parser\n"
        "from swin_gao_lib.records import RunFolder\n"
        "from swin_gao_lib.runs.runner import plan_suite\n"
        "build_parser()\n"
        "plans = plan_suite(sorted(Path('params/study-quick').glob('*.yaml')), Path('unused'))\n"
        "[RunFolder(p.run_dir).complete for p in plans]\n"
        "print(len(plans), [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules])\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["170", "[]"]


def test_planning_resolves_each_point_once(monkeypatch):
    reads, expands = [], []
    read, expand = params.read_params, params.expand
    monkeypatch.setattr(params, "read_params", lambda p: reads.append(p) or read(p))
    monkeypatch.setattr(params, "expand", lambda *a: expands.append(a) or expand(*a))
    files = sorted((ROOT / "params" / "study-quick").glob("*.yaml"))
    plans = plan_suite(files, Path("unused"))
    assert len(plans) == 170 and len(reads) == len(expands) == len(files)


def test_registry_is_the_source_of_dataset_choices():
    for name, spec in datasets.DATASETS.items():
        assert datasets.title(name) == spec.title
        cfg = make_config(dataset=name, source="sample" if spec.sample else "keras")
        assert cfg.num_classes == spec.num_classes
    bench = add_arguments(argparse.ArgumentParser())
    choices = next(a.choices for a in bench._actions if a.dest == "dataset")
    assert tuple(choices) == datasets.with_sample()


def test_the_report_notebook_never_imports_a_backend(tmp_path):
    # a report reads records: TensorFlow, Keras or JAX would be ~4 s of import for nothing
    cells = json.loads((ROOT / "notebooks" / "report.ipynb").read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    before = code[:next(i for i, source in enumerate(code) if "build_report(" in source)]
    setup = "\n".join(line for source in before for line in source.splitlines()
                      if not line.startswith("%"))
    proc = _python(
        f"import sys\n{setup}\n"
        "from swin_gao_lib.analysis.report import build_report\n"
        f"build_report('examples/quick', {str(tmp_path / 'report')!r})\n"
        "print([m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules])\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "[]"
