"""The docs site: built offline from the notebooks, then opened in headless Chromium.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the browser test is
skipped with a loud reason; the build itself is still tested."""
import os
import re
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
# TeX that the notebooks' markdown writes, inline ($...$) and display ($$...$$), as MathJax finds it on the page
FORMULAS = {"losses": [("inline", r"q = \operatorname{softmax}(z / \beta)"),
                       ("display", r"L_t = \sum_k t_k \sum_j q_j w_{kj} (z_j - z_k).")],
            "labels": [("inline", r"(1 + d_j / \mathrm{scale})^{-\mathrm{power}}"), ("inline", r"\exp(-d / \tau)")]}
TEX_COMMAND = re.compile(r"\\(?:sum|operatorname|mathrm|mathbb|exp|log|propto|beta|tau|sigma|epsilon|odot|lfloor)\b")


@pytest.fixture(scope="module")
def site():
    res = subprocess.run([*BUILD, "--out", str(SITE)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"docs build failed:\n{res.stdout}\n{res.stderr}"
    return SITE


def test_one_page_per_notebook(site):
    for name in ["index", "core", "geometry", "labels", "losses", "data.synthetic", "data.coco", "data.tasks",
                 "models", "decoding", "training", "evaluation", "ranking", "experiments.config", "experiments.store", "experiments.context",
                 "experiments.runs", "experiments.workers", "experiments.tuning", "experiments.probe", "experiments.sweep",
                 "analysis", "curves", "candidates", "cli"]:
        assert (site / f"{name}.html").stat().st_size > 1000, name
    core = (site / "core.html").read_text()
    assert "Every experiment in soft_grounding has to be repeatable" in core  # the notebook's prose
    assert 'id="seed_everything"' in core  # show_doc's heading for an exported function
    assert "data:image/png;base64" in core  # the saved plot, as an image
    assert "#|" not in core  # nbdev directives never reach the page
    nav = (site / "index.html").read_text()
    for name in ["experiments.config", "experiments.sweep", "analysis"]: assert f'href="{name}.html"' in nav, name


def test_maths_is_served_by_the_site(site):
    "MathJax comes from the site's own copy, by a relative URL: nothing is fetched from the network."
    mathjax = site / "mathjax"
    assert (mathjax / "MathJax.js").is_file() and (mathjax / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    size = sum(f.stat().st_size for f in mathjax.rglob("*") if f.is_file())
    assert size < 3_000_000, f"the MathJax copy takes {size / 1e6:.1f} MB; copy only what the pages load"
    for page in FORMULAS:
        html = (site / f"{page}.html").read_text()
        assert '<script src="mathjax/MathJax.js?config=' in html
        urls = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', html)
        assert not [u for u in urls if re.match(r"(?:https?:)?//", u)], urls
        for _, tex in FORMULAS[page]: assert tex in html, tex  # the markdown renderer left the TeX alone


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


def open_page(browser, path):
    "Load a page and wait until it is the document shown and it has loaded (chromedriver can return a little early)."
    from selenium.webdriver.support.ui import WebDriverWait
    url = path.as_uri()
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "return document.readyState === 'complete' && location.href.split('#')[0] === arguments[0]", url),
        message=f"{url} did not load in 30 s")


def test_page_in_browser(site, browser):
    open_page(browser, site / "core.html")
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
    open_page(browser, site / "index.html")
    links = browser.execute_script("return [...document.querySelectorAll('nav.sg-nav a, footer.sg-pager a')].map(a => a.href)")
    assert len(links) >= 15
    for href in set(links):
        assert href.startswith("file://") and Path(href[len("file://"):].split("#")[0]).exists(), href
    browser.find_element("css selector", "nav.sg-nav a[href='labels.html']").click()
    assert browser.title == "Soft labels"
    assert browser.find_element("css selector", "nav.sg-nav a.sg-current").text == "Soft labels"


MATHJAX_STATE = """
if (!window.MathJax || !MathJax.Hub || !MathJax.Hub.Startup) return null;
const posted = [...MathJax.Hub.signal.posted, ...MathJax.Hub.Startup.signal.posted].map(String);
const errors = posted.filter(m => /file load error|web font error|parse error/i.test(m));
const done = MathJax.Hub.Startup.signal.posted.map(String).includes("End");
return (done || errors.length) ? {done: done, errors: errors, version: MathJax.version} : null;
"""


@pytest.mark.parametrize("page", sorted(FORMULAS))
def test_maths_typeset_in_browser(site, browser, page):
    "The formulas of a page are typeset by MathJax offline, from file://, and no raw TeX is left in the visible text."
    from selenium.webdriver.support.ui import WebDriverWait
    open_page(browser, site / f"{page}.html")
    assert browser.execute_script("return !!window.MathJax"), f"MathJax did not load from {site / 'mathjax'}"
    # MathJax 2 posts "End" when the page is typeset; a missing file or font stalls it with an error instead
    state = WebDriverWait(browser, 60).until(lambda b: b.execute_script(MATHJAX_STATE),
                                             message="MathJax did not finish typesetting in 60 s")
    assert state["done"] and not state["errors"], state
    found = browser.execute_script("""return [...document.querySelectorAll('script[type^="math/tex"]')].map(s =>
        [s.type.includes("mode=display") ? "display" : "inline", s.text,
         !!s.previousElementSibling && s.previousElementSibling.matches(".MathJax, .MathJax_Display")])""")
    for kind, tex in FORMULAS[page]: assert [kind, tex, True] in found, (kind, tex)  # tex2jax found $...$ and $$...$$
    assert all(typeset for _, _, typeset in found), [tex for _, tex, typeset in found if not typeset]
    assert browser.execute_script("return document.querySelectorAll('.MathJax .merror').length") == 0
    text = browser.find_element("tag name", "body").text
    for _, tex in FORMULAS[page]: assert tex not in text
    assert not TEX_COMMAND.findall(text), TEX_COMMAND.findall(text)


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


def test_home_page_links_and_figure_resolve(site):
    "The README's table links to sections of the analysis page, and its headline figure is copied beside the page."
    import re
    home = (site / "index.html").read_text()
    links = re.findall(r'href="(analysis\.html)#([^"]+)"', home)
    assert len(links) >= 4, links  # made relative from the docs host's URL
    ids = set(re.findall(r'id="([^"]+)"', (site / "analysis.html").read_text()))
    from html import unescape
    missing = [anchor for _, anchor in links if unescape(anchor) not in ids]
    assert not missing, f"links to sections that analysis.html does not have: {missing}"
    assert 'src="results/full/report/curves.png"' in home
    assert (site / "results" / "full" / "report" / "curves.png").stat().st_size > 10_000
    readme = (ROOT / "README.md").read_text()
    assert "](nbs/results/full/report/curves.png)" in readme and (ROOT / "nbs/results/full/report/curves.png").is_file()
