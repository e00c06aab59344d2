"""Build the whole Jupyter Book, as `make book` does, into a temporary folder.

The gate is `jupyter-book build -W -n --keep-going`: any Sphinx warning (a broken
reference, a missing citation, a notebook that raises) fails it. Every chapter is
executed afresh during the build. The built site must be self-contained: MathJax is
served from its own `_static/`, and no page loads a script or stylesheet from the
network.

This takes minutes, so a plain `pytest tests/` skips it. Run it with
`HWNAS_RUN_BOOK=1 pytest tests/test_book_build.py` or `pytest -m book tests/`;
`make test` runs it once, last.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK_TIMEOUT_S = 60 * 60

pytestmark = pytest.mark.book


def _book_requested(config: pytest.Config) -> bool:
    if os.environ.get("HWNAS_RUN_BOOK", "").strip().lower() in {"1", "true", "yes"}:
        return True
    markexpr = (config.getoption("markexpr", default="") or "").replace(" ", "")
    return "book" in markexpr and "notbook" not in markexpr


def _toc_entries() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    entries: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    entries.append(node[key])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)

    walk(toc)
    return entries


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


@pytest.fixture(scope="module")
def built_book(request, tmp_path_factory) -> Path:
    if not _book_requested(request.config):
        pytest.skip("book build takes minutes: set HWNAS_RUN_BOOK=1 or select -m book (make test does)")
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ)
    # Kernels must use matplotlib's inline backend, or the chapters render no figures.
    env.pop("MPLBACKEND", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log = out / "build.log"
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(
            [*_jupyter_book(), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=BOOK_TIMEOUT_S,
        )
    text = log.read_text(encoding="utf-8", errors="replace")
    warnings = [
        line for line in text.splitlines() if re.search(r"WARNING|ERROR", line) and "IPKernelApp" not in line
    ]
    assert proc.returncode == 0, (
        f"jupyter-book build failed (rc={proc.returncode}).\n"
        + ("Warnings/errors:\n" + "\n".join(warnings[:60]) + "\n" if warnings else "")
        + "Last lines of the log:\n"
        + "\n".join(text.splitlines()[-60:])
    )
    return out / "_build"


def _html(build: Path) -> Path:
    return build / "html"


def test_every_toc_page_is_built(built_book):
    html = _html(built_book)
    assert (html / "index.html").is_file(), "no index.html"
    missing = [entry for entry in _toc_entries() if not (html / f"{entry}.html").is_file()]
    assert not missing, f"pages missing from the built book: {missing}"


def test_notebooks_were_executed_during_the_build(built_book):
    notebooks = [e for e in _toc_entries() if e.startswith("notebooks/")]
    executed = built_book / "jupyter_execute"
    not_run = [nb for nb in notebooks if not (executed / f"{nb}.ipynb").is_file()]
    assert not not_run, f"chapters not executed by the build: {not_run}"


def test_chapters_show_figures(built_book):
    """Figures must come from the fresh execution (an Agg backend would drop them)."""
    pages = [_html(built_book) / f"{e}.html" for e in _toc_entries() if e.startswith("notebooks/")]
    if not pages:
        pytest.skip("no notebook chapters in the toc")
    images = sum(len(re.findall(r"<img[^>]+src=\"[^\"]*_images/", p.read_text(encoding="utf-8"))) for p in pages)
    assert images > 0, "no chapter page contains a figure from its executed code"


# A MathJax CDN URL anywhere in a page (sphinx-thebe's inert THEBE_JS_URL constant on
# unpkg is not matched: thebe is off, so nothing ever loads it).
CDN = re.compile(r"(?:https?:)?//[^\s\"'<>]*(?:mathjax|jsdelivr|cdnjs)[^\s\"'<>]*", re.I)
REMOTE_ASSET = re.compile(
    r"<script[^>]+src=\"(?:https?:)?//[^\"]+\"|<link[^>]+href=\"(?:https?:)?//[^\"]+\.css[^\"]*\"", re.I
)


def test_mathjax_is_served_locally(built_book):
    html = _html(built_book)
    local = html / "_static" / "mathjax" / "tex-chtml.js"
    assert local.is_file(), "sphinx-mathjax-offline did not copy MathJax into _static/mathjax"
    offenders: dict[str, list[str]] = {}
    with_mathjax = 0
    for page in html.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        hits = CDN.findall(text) + REMOTE_ASSET.findall(text)
        if hits:
            offenders[str(page.relative_to(html))] = sorted(set(hits))[:5]
        if re.search(r"<script[^>]+src=\"[^\"]*_static/mathjax/tex-chtml\.js", text):
            with_mathjax += 1
    assert not offenders, f"pages loading assets from the network: {offenders}"
    assert with_mathjax > 0, "no page loads the local MathJax"
    # Pages with math must load it: the intro and the notation page both have equations.
    for page in ("book/intro.html", "book/notation.html"):
        text = (html / page).read_text(encoding="utf-8")
        assert re.search(r"_static/mathjax/tex-chtml\.js", text), f"{page} does not load the local MathJax"


def test_bibliography_resolves(built_book):
    text = (_html(built_book) / "book" / "references.html").read_text(encoding="utf-8")
    for needle in ("MnasNet", "EfficientNet", "FBNet", "DARTS", "nn-Meter", "ProxylessNAS", "Gumbel", "Bybit"):
        assert needle in text, f"{needle} missing from the bibliography"
