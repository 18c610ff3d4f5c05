"""Build the soft_grounding docs site offline, without Quarto, and write README.md from nbs/index.ipynb.

    python tools/build_docs.py [--out _site] [--nbs nbs] [--execute] [--readme-only]

Each notebook goes through nbdev's own processors (`nbdev.processors.FilterDefaults`: the same step `nbdev_docs`
runs before Quarto), which add and render `show_doc` for every exported function, drop `#| hide` cells and turn
the title cell into front matter. nbconvert's HTML exporter then renders each processed notebook with the
template in `tools/docs_template/sg` (nbconvert's `lab` template plus a sidebar, a page header and
previous/next links). Pages show the outputs saved in the notebooks, as `nbdev_docs` does; `--execute`
runs every notebook first. A notebook that cannot be processed or rendered stops the build with its name.

The maths in the notebooks' markdown (`$...$`, `$$...$$`) is typeset in the browser by MathJax 2, from a copy in
`<out>/mathjax/` that the build takes from the `jupyter-server-mathjax` package (a dev requirement): the pages load it
by a relative URL, so the site needs no network when it is built or read, from file:// or from any host.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = Path(__file__).resolve().parent / "docs_template"
# MathJax 2 as jupyter-server-mathjax ships it: its one combined configuration (TeX and MathML input, HTML-CSS output,
# tex2jax, AMSmath, AMSsymbols, noErrors, noUndefined) plus Safe, which nbconvert's own MathJax URL asks for too
MATHJAX_DIR = "mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
# only what that configuration loads, now or on demand: no localisations (English is built in), no SVG output
# (the package has only its font data), no speech-rule engine of the accessibility extensions
MATHJAX_FILES = ("MathJax.js", "LICENSE", "config/TeX-AMS-MML_HTMLorMML-full.js", "config/Safe.js",
                 "extensions/*.js", "extensions/HTML-CSS", "extensions/TeX", "extensions/a11y/accessibility-menu.js",
                 "jax/input/TeX", "jax/element/mml", "jax/output/HTML-CSS", "fonts/HTML-CSS/STIX-Web/woff")
README_HEADER = "<!-- Generated from nbs/index.ipynb by `make readme` (tools/build_docs.py); edit the notebook, not this file. -->\n\n"


class DocsBuildError(RuntimeError):
    "A notebook could not be turned into a page."


def notebook_paths(nbs: Path) -> list[Path]:
    "The notebooks of the site, in page order: `index.ipynb` first, then by file name."
    paths = [p for p in sorted(nbs.rglob("*.ipynb"))
             if not p.name.startswith(("_", ".")) and ".ipynb_checkpoints" not in p.parts]
    if not paths: raise DocsBuildError(f"no notebooks found under {nbs}")
    return sorted(paths, key=lambda p: (p.stem != "index", str(p.relative_to(nbs))))


def page_name(nb: Path, nbs: Path) -> str:
    "The page file of a notebook, named as nbdev names it: `00_core.ipynb` -> `core.html`."
    rel = nb.relative_to(nbs).with_suffix("")
    return "/".join(re.sub(r"^\d+[a-zA-Z0-9]*_", "", part) for part in rel.parts) + ".html"  # as nbdev names a file: 10a_x -> x


def read_title(nb_path: Path) -> tuple[str, str]:
    "The `# Title` and `> summary` of a notebook's first markdown cell."
    import nbformat
    nb = nbformat.read(nb_path, as_version=4)
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title = re.search(r"^#\s+(.+)$", first, re.M)
    summary = re.search(r"^>\s*(.+)$", first, re.M)
    return (title.group(1).strip() if title else nb_path.stem), (summary.group(1).strip() if summary else "")


def process(nb_path: Path, execute: bool = False):
    "Run nbdev's doc processors over a notebook (executing it first when asked); returns an nbformat notebook."
    import nbformat
    from execnb.nbio import nb2str, read_nb
    from nbdev.config import get_config
    from nbdev.processors import FilterDefaults
    nb = read_nb(nb_path)
    if execute:
        from execnb.shell import CaptureShell
        CaptureShell(nb_path).run_all(nb, exc_stop=True)
    FilterDefaults()(nb)
    nb = nbformat.reads(nb2str(nb), as_version=4)
    cfg = get_config()
    site_url = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip("/") + "/"
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.startswith("---"): continue  # Quarto front matter: we write our own header
        cell.source = localise(cell.source, site_url)
        if cell.cell_type == "code":
            directives = [l for l in cell.source.splitlines() if l.startswith("#|")]
            cell.source = "\n".join(l for l in cell.source.splitlines() if not l.startswith("#|")).strip("\n")
            tags = set(cell.metadata.get("tags", []))
            if any(re.match(r"#\|\s*echo:\s*false", d) for d in directives): tags.add("remove_input")
            if not cell.source: tags.add("remove_input")
            cell.metadata["tags"] = sorted(tags)
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "text/markdown" in data: data["text/markdown"] = localise(data["text/markdown"], site_url)
        cells.append(cell)
    nb.cells = cells
    return nb


def localise(text, site_url: str):
    "Make nbdev's doc links relative and drop Quarto-only link attributes (`{target=...}`)."
    if isinstance(text, list): text = "".join(text)
    text = text.replace(site_url, "")
    return re.sub(r"\]\(([^)]*)\)\{[^}]*\}", r"](\1)", text)


def mathjax_source() -> Path:
    "The MathJax 2 files that `jupyter-server-mathjax` ships (found without importing it: it imports jupyter_server)."
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    static = Path(next(iter(spec.submodule_search_locations))) / "static" if spec else None
    if static is None or not (static / "MathJax.js").is_file():
        raise DocsBuildError("MathJax not found: the docs render maths with the copy in jupyter-server-mathjax; "
                             "install the dev requirements (pip install -e '.[dev]')")
    return static


def copy_mathjax(out: Path) -> tuple[str, int]:
    """Copy the MathJax files the pages use into `out/mathjax`, replacing an older copy.
    Returns MathJax's version and the bytes copied."""
    static = mathjax_source()
    version = re.search(r'MathJax\.version="([^"]+)"', (static / "MathJax.js").read_text(encoding="utf-8"))
    dest = out / MATHJAX_DIR
    if dest.exists(): shutil.rmtree(dest)
    for pattern in MATHJAX_FILES:
        found = sorted(static.glob(pattern))
        if not found: raise DocsBuildError(f"MathJax file {pattern} is missing from {static}")
        for src in found:
            target = dest / src.relative_to(static)
            if src.is_dir(): shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return (version.group(1) if version else "unknown"), size


def mathjax_url(href: str) -> str:
    "The URL of the site's MathJax from page `href`, relative so the site works from file:// and from any host."
    return "../" * href.count("/") + f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"


def render(nb, resources: dict, mathjax: str = mathjax_url("index.html")) -> str:
    "HTML of one processed notebook through the `sg` template, loading MathJax from `mathjax` (a URL)."
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATE_DIR)], template_name="sg", mathjax_url=mathjax,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"},
                                                         remove_cell_tags={"remove_cell"}), enabled=True)
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def build_site(nbs: Path, out: Path, execute: bool = False) -> list[Path]:
    "Build one HTML page per notebook under `out`, with navigation; returns the pages written."
    nb_paths = notebook_paths(nbs)
    pages = []
    for p in nb_paths:
        title, summary = read_title(p)
        pages.append({"href": page_name(p, nbs), "title": title, "summary": summary, "source": p})
    from nbdev.config import get_config
    site_title = get_config().title
    out.mkdir(parents=True, exist_ok=True)
    version, size = copy_mathjax(out)
    print(f"docs: MathJax {version} from jupyter-server-mathjax -> {MATHJAX_DIR}/ ({size / 1e6:.1f} MB)", flush=True)
    nav = [{"href": pg["href"], "title": "Home" if pg["href"] == "index.html" else pg["title"]} for pg in pages]
    written = []
    for i, page in enumerate(pages):
        src = page["source"]
        print(f"docs: {src.relative_to(nbs.parent) if nbs.parent in src.parents else src} -> {page['href']}", flush=True)
        try:
            nb = process(src, execute=execute)
            html = render(nb, {"sg": {"site_title": site_title, "pages": nav, "current": page["href"],
                                      "title": page["title"], "summary": page["summary"],
                                      "prev": nav[i - 1] if i > 0 else None,
                                      "next": nav[i + 1] if i + 1 < len(nav) else None},
                               "metadata": {"name": page["title"]}}, mathjax=mathjax_url(page["href"]))
        except Exception as e:
            traceback.print_exc()
            raise DocsBuildError(f"cannot render notebook {src}: {type(e).__name__}: {e}") from e
        dest = out / page["href"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(html, encoding="utf-8")
        for image in local_images(src):  # a figure a markdown cell shows, at the same place beside the page
            target = dest.parent / image.relative_to(src.parent.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, target)
        written.append(dest)
    return written


IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def local_images(nb_path: Path) -> list[Path]:
    "The image files that the markdown cells of a notebook show by a relative path (a missing one is an error)."
    import nbformat
    found = []
    for cell in nbformat.read(nb_path, as_version=4).cells:
        if cell.cell_type != "markdown": continue
        for _, link in IMAGE_LINK.findall(cell.source):
            if re.match(r"^[a-z]+:|^/", link): continue  # a URL or an absolute path: not ours to copy
            image = (nb_path.parent / link).resolve()
            if not image.is_file(): raise DocsBuildError(f"{nb_path.name} shows an image that does not exist: {link}")
            if nb_path.parent.resolve() not in image.parents:
                raise DocsBuildError(f"{nb_path.name} shows an image outside its folder, which the site cannot hold: {link}")
            found.append(image)
    return found


def readme_text(index_nb: Path) -> str:
    "README.md: the markdown cells of `index.ipynb`, in order, under a do-not-edit header."
    import nbformat
    nb = nbformat.read(index_nb, as_version=4)
    parts = [c.source.strip() for c in nb.cells if c.cell_type == "markdown"]
    try: prefix = index_nb.parent.resolve().relative_to(ROOT).as_posix().removesuffix(".") + "/"
    except ValueError: prefix = ""  # a notebook outside the repository: its paths are left as they are
    prefix = "" if prefix == "/" else prefix
    def from_root(m):  # README.md sits at the root, the notebook in nbs/: a relative image path gains the folder
        alt, link = m.groups()
        return m.group(0) if re.match(r"^[a-z]+:|^/", link) else f"![{alt}]({prefix}{link})"
    return README_HEADER + IMAGE_LINK.sub(from_root, "\n\n".join(parts)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nbs", type=Path, default=ROOT / "nbs", help="notebook directory (default: nbs)")
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="site directory (default: _site)")
    parser.add_argument("--execute", action="store_true", help="run every notebook before rendering it")
    parser.add_argument("--readme-only", action="store_true", help="only write README.md from index.ipynb")
    args = parser.parse_args(argv)
    if args.readme_only:
        (ROOT / "README.md").write_text(readme_text(args.nbs / "index.ipynb"), encoding="utf-8")
        print("wrote README.md")
        return 0
    try: pages = build_site(args.nbs.resolve(), args.out.resolve(), execute=args.execute)
    except DocsBuildError as e:
        print(f"docs build FAILED: {e}", file=sys.stderr)
        return 1
    print(f"docs: wrote {len(pages)} pages to {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
