"""Notebook hygiene: every chapter is an .ipynb paired with a py:percent twin of the
same content, opens with a header cell, and seeds its randomness up front; every
entry of _toc.yml exists.

Pairing is checked by content, never by timestamps (after `git clone` those mean
nothing). Fix a failure with `jupytext --sync notebooks/NN_topic.py` (or `make sync`).
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_book import toc_files  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
TOC = ROOT / "_toc.yml"

BOOK_SUFFIXES = (".md", ".ipynb")


def _stems() -> list[str]:
    if not NOTEBOOKS.is_dir():
        return []
    return sorted({p.stem for p in NOTEBOOKS.glob("*.ipynb")} | {p.stem for p in NOTEBOOKS.glob("*.py")})


STEMS = _stems()


def _cells(path: Path) -> list[tuple[str, str]]:
    nb = jupytext.read(path)
    return [(cell.cell_type, _normalise(cell.source)) for cell in nb.cells]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _normalise(source: str) -> str:
    lines = [line.rstrip() for line in source.strip("\n").splitlines()]
    return "\n".join(lines).strip()


_toc_files = toc_files  # every `file:` / `root:` entry, in reading order (tools/build_book.py)


def _resolve(entry: str) -> Path | None:
    base = ROOT / entry
    if base.suffix in BOOK_SUFFIXES and base.is_file():
        return base
    for suffix in BOOK_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------- the table of contents


def test_toc_is_a_jupyter_book_1_toc():
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    assert toc["format"] == "jb-book"
    assert toc["root"] == "book/intro"
    captions = [part["caption"] for part in toc["parts"]]
    assert captions == ["Foundations", "Hardware", "Market data", "Search", "Deployment", "Beyond", "Reference"]


def test_every_toc_entry_exists_exactly_once():
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    entries = _toc_files(toc)
    assert entries, "_toc.yml lists no files"
    assert len(entries) == len(set(entries)), f"duplicate toc entries: {entries}"
    missing = [entry for entry in entries if _resolve(entry) is None]
    assert not missing, f"_toc.yml entries with no .md or .ipynb file: {missing}"
    ambiguous = [e for e in entries if sum((ROOT / (e + s)).is_file() for s in BOOK_SUFFIXES) > 1]
    assert not ambiguous, f"toc entries matching both an .md and an .ipynb: {ambiguous}"


def test_every_notebook_is_in_the_toc():
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    entries = set(_toc_files(toc))
    orphans = [f"notebooks/{p.stem}" for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    orphans = [o for o in orphans if o not in entries]
    assert not orphans, f"notebooks missing from _toc.yml (only_build_toc_files would drop them): {orphans}"


def test_notebook_names_follow_nn_topic():
    bad = [s for s in STEMS if not re.fullmatch(r"\d{2}_[a-z0-9_]+", s)]
    assert not bad, f"notebook names must be NN_topic (two digits, lower-case words): {bad}"


# ---------------------------------------------------------------- pairing


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_has_a_py_twin_and_vice_versa(stem):
    ipynb, py = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.py"
    assert ipynb.is_file(), f"{py.name} has no {ipynb.name}: run `jupytext --to ipynb {_rel(py)}` and execute it"
    assert py.is_file(), f"{ipynb.name} has no {py.name}: run `jupytext --sync {_rel(ipynb)}`"


@pytest.mark.parametrize("stem", STEMS)
def test_twins_have_the_same_cells(stem):
    ipynb, py = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.py"
    if not (ipynb.is_file() and py.is_file()):
        pytest.skip("one twin is missing (reported by test_notebook_has_a_py_twin_and_vice_versa)")
    from_ipynb, from_py = _cells(ipynb), _cells(py)
    assert [t for t, _ in from_ipynb] == [t for t, _ in from_py], (
        f"{stem}: cell types differ between .ipynb and .py; run `jupytext --sync {_rel(py)}`"
    )
    for index, (a, b) in enumerate(zip(from_ipynb, from_py)):
        if a != b:
            diff = "\n".join(
                difflib.unified_diff(a[1].splitlines(), b[1].splitlines(), ipynb.name, py.name, lineterm="")
            )
            pytest.fail(f"{stem}: cell {index} differs; run `jupytext --sync {_rel(py)}`\n{diff}")


@pytest.mark.parametrize("stem", STEMS)
def test_py_twin_is_percent_format(stem):
    py = NOTEBOOKS / f"{stem}.py"
    if not py.is_file():
        pytest.skip("no .py twin")
    text = py.read_text(encoding="utf-8")
    assert re.search(r"^# %%", text, flags=re.M), f"{py.name} is not in py:percent format"


# ---------------------------------------------------------------- chapter conventions


def read_chapter(stem: str):
    """The chapter's .ipynb read with jupytext (the test skips when it is missing)."""
    path = NOTEBOOKS / f"{stem}.ipynb"
    if not path.is_file():
        pytest.skip("no .ipynb")
    return jupytext.read(path)


@pytest.mark.parametrize("stem", STEMS)
def test_first_cell_is_a_markdown_header(stem):
    nb = read_chapter(stem)
    assert nb.cells, f"{stem} is empty"
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{stem}: first cell must be a markdown header cell"
    assert re.match(r"#\s+\S", first.source.lstrip()), f"{stem}: first cell must open with a '# Title' heading"


SEEDS = {
    "random": re.compile(r"\brandom\.seed\s*\("),
    "numpy": re.compile(r"\b(np|numpy)\.random\.(seed|default_rng)\s*\("),
    "torch": re.compile(r"\btorch\.manual_seed\s*\("),
}


@pytest.mark.parametrize("stem", STEMS)
def test_first_code_cell_imports_hwnas_and_seeds(stem):
    nb = read_chapter(stem)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{stem} has no code cell"
    source = code[0].source
    assert re.search(r"^\s*(from\s+hwnas(\.\w+)*\s+import|import\s+hwnas\b)", source, flags=re.M), (
        f"{stem}: the first code cell must import from hwnas"
    )
    missing = [name for name, pattern in SEEDS.items() if not pattern.search(source)]
    assert not missing, f"{stem}: the first code cell must seed random, numpy and torch; not seeded: {missing}"


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_declares_a_python_kernel(stem):
    nb = read_chapter(stem)
    kernelspec = nb.metadata.get("kernelspec", {})
    assert kernelspec.get("language", "python") == "python" and kernelspec.get("name"), (
        f"{stem}: the notebook needs a python kernelspec (name: python3) so the book can execute it"
    )
