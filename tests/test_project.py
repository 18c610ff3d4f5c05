"The project around the code: packaging rules, notebook layout, and the README that comes from index.ipynb."
import configparser
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE_NOTEBOOKS = ["00_core", "01_geometry", "02_labels", "03_losses", "04_data.synthetic", "05_data.coco",
                    "06_data.tasks", "07_models", "08_training", "09_evaluation", "10a_experiments.config",
                    "10b_experiments.store", "10c_experiments.context", "10d_experiments.runs", "10e_experiments.workers",
                    "10f_experiments.tuning", "10g_experiments.probe", "10h_experiments.sweep", "11_analysis", "12_cli"]


def settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def test_setup_py_has_no_pkg_resources():
    assert "pkg_resources" not in re.sub(r'^".*"$', "", (ROOT / "setup.py").read_text(), flags=re.M)


def test_settings():
    cfg = settings()
    assert cfg["tst_flags"].split() == ["notest", "slow", "cuda"]
    reqs = cfg["requirements"].split()
    torch = [r for r in reqs if re.match(r"torch\b", r)]
    assert torch == ["torch>=2.11"], "torch stays unpinned (a lower bound only) in the package metadata"
    for pin in ("nbdev==2.4.14", "execnb<0.2", "ghapi<2"): assert pin in cfg["dev_requirements"].split()
    assert any(r.startswith("fastcore") and "<1.15" in r for r in reqs)


@pytest.mark.parametrize("name", MODULE_NOTEBOOKS)
def test_notebook_opens_with_title_summary_and_purpose(name):
    nb = nbformat.read(ROOT / "nbs" / f"{name}.ipynb", as_version=4)
    first, second = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and re.fullmatch(r"# .+\n\n> .+", first.source), first.source
    assert second.cell_type == "markdown" and len(second.source) > 200, "a paragraph on what the module is for"
    module = name.split("_", 1)[1]
    assert any(c.cell_type == "code" and c.source.strip() == f"#| default_exp {module}" for c in nb.cells)
    assert (ROOT / "soft_grounding" / (module.replace(".", "/") + ".py")).exists()


def test_notebooks_are_clean():
    "nbdev_clean's work: no execution counts and no cell metadata beyond what nbdev keeps."
    for path in sorted((ROOT / "nbs").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code": assert cell.execution_count is None, path.name


def load_build_docs():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quick_start(markdown):
    "The commands of the first ```sh block under '## Quick start'."
    section = markdown.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_readme_is_generated_from_index():
    readme = (ROOT / "README.md").read_text()
    assert readme == load_build_docs().readme_text(ROOT / "nbs" / "index.ipynb"), "run `make readme`"


def test_quick_start_is_two_commands():
    index = "\n".join(c.source for c in nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4).cells)
    assert quick_start(index) == quick_start((ROOT / "README.md").read_text()) == ["make experiment", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("experiment", "test"): assert re.search(rf"^{target}:", makefile, re.M)


def test_exported_modules_define_what_they_use():
    "An exported function must not lean on a name that only a notebook's test cell imported (pyflakes: undefined name)."
    from pyflakes.api import checkPath
    from pyflakes.reporter import Reporter
    import io
    out, err = io.StringIO(), io.StringIO()
    for path in sorted((ROOT / "soft_grounding").rglob("*.py")):
        if path.name != "_modidx.py": checkPath(str(path), Reporter(out, err))
    problems = [line for line in out.getvalue().splitlines() if "undefined name" in line or "imported but unused" in line]
    assert not problems, "\n".join(problems)


# The layering (DESIGN.md): lowest first. `experiments.sweep` (and the package's `__init__`, which re-exports it) sits
# above `analysis`, because the main job writes the report; `analysis` reads results through `experiments.store`.
LAYERS = ["assets", "core", "geometry", "labels", "losses", "data", "models", "decoding", "training", "ranking", "evaluation",
          "experiments.config", "experiments.store", "experiments.context", "experiments.runs", "experiments.workers",
          "experiments.tuning", "experiments.probe", "experiments.plan", "curves", "candidates", "analysis", "experiments.sweep",
          "experiments", "cli"]


def module_name(path):
    "soft_grounding/experiments/store.py -> 'experiments.store'; a package's __init__ -> the package's name."
    parts = list(path.relative_to(ROOT / "soft_grounding").with_suffix("").parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    return ".".join(parts)


def layer(name):
    "The rank of a module in `LAYERS`: its own entry, else its package's ('data.coco' ranks as 'data')."
    while name not in LAYERS and "." in name: name = name.rsplit(".", 1)[0]
    return LAYERS.index(name)


def package_module(dotted):
    "'soft_grounding.experiments.store' -> 'experiments.store' when it is a module of the package, else None."
    rel = dotted.removeprefix("soft_grounding.") if dotted.startswith("soft_grounding.") else None
    if not rel: return None
    path = ROOT / "soft_grounding" / rel.replace(".", "/")
    return rel if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() else None


def imports_of(source, name, is_package=False):
    "The package's modules that the code `source` of module `name` imports, function-level imports included."
    import ast
    package = ["soft_grounding", *name.split(".")] if name else ["soft_grounding"]
    if not is_package: package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import): names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level: base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            modules = [f"{base}.{a.name}" for a in node.names if package_module(f"{base}.{a.name}")]
            names = modules or [base]  # `from pkg import module` imports the module, `from pkg import name` the package
        else: continue
        found |= {m for m in map(package_module, names) if m}
    return found - {name}


def import_graph():
    "{module: {modules of soft_grounding it imports}}."
    paths = [p for p in sorted((ROOT / "soft_grounding").rglob("*.py")) if p.name != "_modidx.py"]
    return {module_name(p): imports_of(p.read_text(), module_name(p), p.name == "__init__.py") for p in paths}


def upward(graph):
    "The imports of `graph` that go up the layering."
    return [f"{m} imports {t}" for m, ts in graph.items() for t in sorted(ts) if layer(t) > layer(m)]


def test_every_module_has_a_layer():
    for name in import_graph():
        if name: layer(name)  # raises a ValueError naming a module missing from LAYERS


def test_imports_run_one_way():
    "No module imports one above it in `LAYERS` (so there is no cycle either); a sub-package's modules count one by one."
    graph = import_graph()
    assert not upward(graph), "imports that go up the layering (DESIGN.md):\n" + "\n".join(upward(graph))
    reads = {m for m in graph["analysis"] if m.startswith("experiments")}
    assert reads <= {"experiments.store", "experiments.config"}, reads


def test_import_graph_has_no_cycle():
    import graphlib
    graphlib.TopologicalSorter(import_graph()).static_order()  # raises CycleError naming the cycle


def test_the_import_check_can_fail():
    "A function-level upward import, relative or absolute, is seen and reported."
    source = "def f():\n    from ..training import train\n    import soft_grounding.analysis\n"
    found = imports_of(source, "experiments.runs")
    assert found == {"training", "analysis"}, found
    assert upward({"experiments.runs": found}) == ["experiments.runs imports analysis"]
    assert imports_of("from .models import generate", "evaluation") == {"models"}
    assert imports_of("from soft_grounding import models", "training") == {"models"}
    assert imports_of("from .store import read_json", "experiments", is_package=True) == {"experiments.store"}
    assert imports_of("from . import config", "experiments.tuning") == {"experiments.config"}  # not the facade
    assert imports_of("from .experiments import run_sweep", "", is_package=True) == {"experiments"}  # the root package


def test_importing_a_lower_module_loads_nothing_above_it():
    "The facade is lazy: `analysis` (through `experiments.store`) never loads `experiments.sweep`, which imports it."
    import subprocess
    import sys
    code = ("import sys, soft_grounding.analysis, soft_grounding.experiments.store, soft_grounding.experiments.runs; "
            "print(sorted(m for m in sys.modules if m.startswith('soft_grounding.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "soft_grounding.experiments.store" in loaded and "soft_grounding.experiments.sweep" not in loaded, loaded
    assert "soft_grounding.cli" not in loaded and "soft_grounding.experiments.tuning" not in loaded, loaded


def test_experiments_names_import_from_the_package():
    "The split keeps every public name where users import it: `from soft_grounding.experiments import ...`."
    import soft_grounding.experiments as experiments
    from soft_grounding.experiments import METHODS, SweepConfig, run_experiment  # noqa: F401
    for name in ("run_sweep", "read_results", "SweepContext", "tune", "probe_beyond_grid", "default_workers",
                 "tuned_at_edges", "beyond_grid_trials", "load_sweep_config", "results_table", "tune_preset"):
        assert callable(getattr(experiments, name)), name
    assert len(experiments.__all__) == len(set(experiments.__all__))


def test_code_lines_are_readable():
    "No exported code line over 130 characters (the docs pages cut longer ones); line 1, nbdev's module docstring, aside."
    long = [f"{p.relative_to(ROOT)}:{k}: {len(line)}" for p in sorted((ROOT / "soft_grounding").rglob("*.py"))
            if p.name != "_modidx.py" for k, line in enumerate(p.read_text().splitlines(), 1) if k > 1 and len(line) > 130]
    assert not long, "\n".join(long)


def test_experiments_modules_are_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "soft_grounding" / "experiments").glob("*.py")}
    assert sizes and max(sizes.values()) <= 500, sizes
