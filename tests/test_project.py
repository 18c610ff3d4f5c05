"The project around the code: packaging rules, notebook layout, and the README that comes from index.ipynb."
import configparser
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE_NOTEBOOKS = ["00_core", "01_geometry", "02_labels", "03_losses", "04_data.synthetic", "05_data.coco",
                    "06_data.tasks", "07_models", "08_training", "09_evaluation", "10_experiments",
                    "11_analysis", "12_cli"]


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
