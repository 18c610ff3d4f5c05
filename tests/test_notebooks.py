"Every notebook in nbs/ is one pytest test, run by nbdev's own `test_nb`, skipping cells flagged with `tst_flags`."
import os
from pathlib import Path

import pytest
from nbdev.config import get_config
import nbdev.test  # not `from ... import test_nb`: pytest would collect it as a test

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
                   if not p.name.startswith(("_", ".")) and ".ipynb_checkpoints" not in p.parts)


def skip_flags():
    "settings.ini's `tst_flags`, less those named in $SOFT_GROUNDING_TEST_FLAGS (e.g. `slow` to run slow cells too)."
    forced = set(os.environ.get("SOFT_GROUNDING_TEST_FLAGS", "").split())
    return [f for f in get_config(path=ROOT).tst_flags.split() if f not in forced]


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 21, f"expected the 20 module notebooks and index.ipynb in nbs/, found {len(NOTEBOOKS)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(notebook):
    ok, seconds = nbdev.test.test_nb(notebook, skip_flags=skip_flags(), showerr=True)
    assert ok, f"{notebook.relative_to(ROOT)} failed after {seconds:.1f}s; its traceback is in the captured stderr"
