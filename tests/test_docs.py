"""The docs site: built offline from the notebooks, then opened in headless Chromium.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the browser test is
skipped with a loud reason; the build itself is still tested."""
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_site"  # the real build directory: the screenshot stays there for people to look at
BUILD = [sys.executable, str(ROOT / "tools" / "build_docs.py")]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def site():
    res = subprocess.run([*BUILD, "--out", str(SITE)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"docs build failed:\n{res.stdout}\n{res.stderr}"
    return SITE


def test_one_page_per_notebook(site):
    for name in ["index", "core", "geometry", "labels", "losses", "data.synthetic", "data.coco", "data.tasks",
                 "models", "training", "evaluation", "experiments", "analysis", "cli"]:
        assert (site / f"{name}.html").stat().st_size > 1000, name
    core = (site / "core.html").read_text()
    assert "Every experiment in soft_grounding has to be repeatable" in core  # the notebook's prose
    assert 'id="seed_everything"' in core  # show_doc's heading for an exported function
    assert "data:image/png;base64" in core  # the saved plot, as an image
    assert "#|" not in core  # nbdev directives never reach the page


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        reason = (f"LOUD SKIP: headless Chromium not found ({CHROMIUM}, {CHROMEDRIVER}); "
                  "install Debian's chromium and chromium-driver (bash .ci/run does) to test the docs in a browser")
        warnings.warn(reason)
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1600", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_page_in_browser(site, browser):
    browser.get((site / "core.html").as_uri())
    assert browser.title == "Core"
    # a rendered plot: an output image that the browser decoded to real pixels
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output img')].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert any(done and w > 100 and h > 100 for done, w, h in sizes), sizes
    # an exported function's documentation: show_doc's heading and its docments
    text = browser.find_element("tag name", "body").text
    assert "seed_everything" in text and "a non-negative integer" in text
    browser.execute_script("document.querySelector('.jp-OutputArea-output img').scrollIntoView({block: 'center'})")
    browser.save_screenshot(str(site / "screenshot.png"))  # shows the plot, for a person to look at
    assert (site / "screenshot.png").stat().st_size > 10_000


def test_navigation_links_resolve(site, browser):
    browser.get((site / "index.html").as_uri())
    links = browser.execute_script("return [...document.querySelectorAll('nav.sg-nav a, footer.sg-pager a')].map(a => a.href)")
    assert len(links) >= 15
    for href in set(links):
        assert href.startswith("file://") and Path(href[len("file://"):].split("#")[0]).exists(), href
    browser.find_element("css selector", "nav.sg-nav a[href='labels.html']").click()
    assert browser.title == "Soft labels"
    assert browser.find_element("css selector", "nav.sg-nav a.sg-current").text == "Soft labels"


def test_broken_notebook_fails_the_build_by_name(tmp_path):
    nbs = tmp_path / "nbs"
    shutil.copytree(ROOT / "nbs", nbs)
    bad = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Broken\n\n> A page that cannot render."),
        nbformat.v4.new_code_cell("#| export\nraise RuntimeError('this notebook cannot render')")])
    nbformat.write(bad, nbs / "99_broken.ipynb")
    res = subprocess.run([*BUILD, "--nbs", str(nbs), "--out", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode != 0
    assert "docs build FAILED" in res.stderr and "99_broken.ipynb" in res.stderr
