"""Build the whole Jupyter Book, as `make book` does, into a temporary folder.

The gate is `jupyter-book build -W -n --keep-going`: any Sphinx warning (a broken
reference, a missing citation, a notebook that raises) fails it. The build goes
through `tools/build_book.py`, which executes every chapter once: under `make test`
it reuses the executions nbval has just made (saved by tests/nbval_capture.py, fresh
only for the current code, library and data settings), otherwise it executes the
chapter itself. The built site must be self-contained: MathJax is served from its own
`_static/`, and no page loads a script or stylesheet from the network. The browser
tests (tests/browser.py) then open every page in headless Chromium.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_book import toc_entries  # noqa: E402

BOOK_TIMEOUT_S = 60 * 60

pytestmark = pytest.mark.book


def _book_requested(config: pytest.Config) -> bool:
    if os.environ.get("HWNAS_RUN_BOOK", "").strip().lower() in {"1", "true", "yes"}:
        return True
    markexpr = (config.getoption("markexpr", default="") or "").replace(" ", "")
    return "book" in markexpr and "notbook" not in markexpr


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
            [sys.executable, str(ROOT / "tools" / "build_book.py"), "--out", str(out), "--reuse"],
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
    missing = [entry for entry in toc_entries() if not (html / f"{entry}.html").is_file()]
    assert not missing, f"pages missing from the built book: {missing}"


def test_every_chapter_was_executed_once_and_timed(built_book):
    """The build prints (and keeps) a table of per-chapter execution times."""
    notebooks = [Path(e).name for e in toc_entries() if e.startswith("notebooks/")]
    table = (built_book / "chapter_times.txt").read_text(encoding="utf-8")
    print(table)
    rows = {line.split()[0]: float(line.split()[1]) for line in table.splitlines()[2:]
            if line.strip() and not line.strip().startswith("total")}
    assert sorted(rows) == sorted(notebooks), f"timed chapters {sorted(rows)} != toc {sorted(notebooks)}"
    for name in notebooks:
        page = (built_book / "html" / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert "cell_output" in page, f"{name}: the built page shows no executed output"


def test_chapters_show_figures(built_book):
    """Figures must come from the fresh execution (an Agg backend would drop them)."""
    pages = [_html(built_book) / f"{e}.html" for e in toc_entries() if e.startswith("notebooks/")]
    if not pages:
        pytest.skip("no notebook chapters in the toc")
    images = sum(len(re.findall(r"<img[^>]+src=\"[^\"]*_images/", p.read_text(encoding="utf-8"))) for p in pages)
    assert images > 0, "no chapter page contains a figure from its executed code"


def test_every_captioned_figure_cell_shows_its_figure(built_book):
    """A chapter shows at least one image per cell that carries a figure caption (a library call
    that switched the kernel to Agg once left chapter 12 with captions and no figures)."""
    root = Path(__file__).resolve().parents[1]
    short = {}
    for entry in (e for e in toc_entries() if e.startswith("notebooks/")):
        source = (root / f"{entry}.py").read_text(encoding="utf-8")
        expected = source.count('mystnb={"figure"')
        page = (_html(built_book) / f"{entry}.html").read_text(encoding="utf-8")
        shown = len(re.findall(r"<img[^>]+src=\"[^\"]*_images/", page))
        if shown < expected:
            short[entry] = (shown, expected)
    assert not short, f"chapters showing fewer figures than their captioned cells (shown, expected): {short}"


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


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def site(built_book):
    from browser import serve, start_chrome

    with serve(_html(built_book)) as base:
        driver = start_chrome()  # skips with the reason when Chromium is not there
        try:
            yield base, driver
        finally:
            driver.quit()


def test_every_page_renders_in_chromium(site, built_book):
    """No console errors, every formula typeset by MathJax, every image loaded, screenshots kept."""
    from browser import check_page, pages

    base, driver = site
    shots = ROOT / "_build" / "screenshots"
    problems = {}
    for page in pages(_html(built_book)):
        found = check_page(driver, base, page, shots)
        if found:
            problems[page] = found
    assert not problems, f"pages with problems: {problems}"


def test_sidebar_lists_every_chapter_and_internal_links_resolve(site, built_book):
    from browser import internal_links_broken, sidebar_links

    base, driver = site
    listed = sidebar_links(driver, base, "book/intro.html")
    wanted = [e for e in toc_entries() if e != "book/intro"]
    missing = [e for e in wanted if not any(link.endswith(f"{e}.html") for link in listed)]
    assert not missing, f"the sidebar does not list {missing}"
    broken = internal_links_broken(_html(built_book))
    assert not broken, f"internal links that do not resolve: {broken[:20]}"


def test_root_index_redirects_to_the_intro(site):
    from browser import landing_url

    base, driver = site
    assert landing_url(driver, base + "/index.html").endswith("book/intro.html")
