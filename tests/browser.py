"""Headless Chromium over a static server on 127.0.0.1: what a reader's browser shows.

Used by tests/test_book_build.py. Debian's ``chromium`` and ``chromium-driver``
packages are driven with Selenium (Playwright's own browser download cannot be
reached from these machines); when either is missing the tests skip with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest

SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def start_chrome():  # -> selenium WebDriver
    """Headless Chromium with the browser console log enabled; skips when not installed."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("Debian's chromium and chromium-driver are not installed (make browser installs them "
                    "as root with apt-get)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1600", "--disable-extensions", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def pages(html: Path) -> list[str]:
    """Every content page of the built site, relative to it (index and search pages left out)."""
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if p.name not in SKIP_PAGES and "_static" not in p.parts and p.name != "index.html")


_WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const ready = () => document.readyState === 'complete';
const finish = () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { mj.startup.promise.then(() => done(true), () => done(false)); }
  else { done(null); }
};
if (ready()) { finish(); } else { window.addEventListener('load', finish); }
"""

_INSPECT = """
const text = (() => {
  const root = document.querySelector('main') || document.body;
  const clone = root.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(n => n.remove());
  return clone.innerText;
})();
const math = Array.from(document.querySelectorAll('.math'));
return {
  raw_math: (text.match(/\\$\\$|\\\\\\[|\\\\\\(/g) || []).length,
  math_total: math.length,
  math_untypeset: math.filter(m => !m.querySelector('mjx-container') && !m.closest('mjx-container')).length,
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0,
    (i.getAttribute('alt') || '').trim().length > 0,
    !!(i.closest('figure') && i.closest('figure').querySelector('figcaption'))]),
};
"""


def check_page(driver, base: str, page: str, shots: Path) -> list[str]:
    """Open ``page``; the problems found (console errors, untypeset math, broken images)."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(f"{base}/{page}")
    typeset = driver.execute_async_script(_WAIT_FOR_MATHJAX)
    found = driver.execute_script(_INSPECT)
    problems = []
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    problems += [f"console error: {message[:200]}" for message in errors]
    if found["math_total"] and typeset is not True:
        problems.append("MathJax did not finish typesetting")
    if found["math_untypeset"]:
        problems.append(f"{found['math_untypeset']} of {found['math_total']} formulas not typeset")
    if found["raw_math"]:
        problems.append(f"{found['raw_math']} raw TeX delimiters ($$, \\[ or \\() left in the text")
    problems += [f"image not loaded: {src}" for src, loaded, _, _ in found["images"] if not loaded]
    problems += [f"image without alt text: {src}" for src, _, alt, _ in found["images"] if not alt]
    problems += [f"figure without a caption: {src}" for src, _, _, captioned in found["images"]
                 if "_images/" in (src or "") and not captioned]
    shots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shots / (page.replace("/", "__").removesuffix(".html") + ".png")))
    return problems


def sidebar_links(driver, base: str, page: str) -> list[str]:
    """The hrefs of the left sidebar's navigation on ``page``, absolute."""
    driver.get(f"{base}/{page}")
    anchors = driver.find_elements("css selector", "nav.bd-docs-nav a, .bd-sidenav a")
    return [a.get_attribute("href") or "" for a in anchors]


def landing_url(driver, url: str) -> str:
    """Where the browser ends up after opening ``url`` (redirects followed)."""
    driver.get(url)
    driver.execute_async_script(_WAIT_FOR_MATHJAX)
    return str(driver.current_url)


_HREF = re.compile(r'<a\s[^>]*href="([^"]+)"')
_ID = re.compile(r'\sid="([^"]+)"')


def internal_links_broken(html: Path) -> list[str]:
    """Every ``<a href>`` inside the site whose file or ``#anchor`` does not exist."""
    ids: dict[Path, set[str]] = {}
    broken = []
    for page in sorted(html.rglob("*.html")):
        if "_static" in page.parts:
            continue
        for href in _HREF.findall(page.read_text(encoding="utf-8", errors="replace")):
            if urlparse(href).scheme or href.startswith(("mailto:", "javascript:", "//")):
                continue
            target, fragment = urldefrag(urljoin(page.as_uri(), href))
            path = Path(unquote(urlparse(target).path))
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(html)} -> {href}")
                continue
            if fragment and path.suffix == ".html":
                if path not in ids:
                    ids[path] = set(_ID.findall(path.read_text(encoding="utf-8", errors="replace")))
                if unquote(fragment) not in ids[path]:
                    broken.append(f"{page.relative_to(html)} -> {href} (no such anchor)")
    return broken
