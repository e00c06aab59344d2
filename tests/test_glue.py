"""Every number in the prose comes from a cell (issue 20).

Two static rules over each chapter's markdown and figure captions (its jupytext ``.py``
twin, the source of truth) and the takeaways page:

- **no unglued measured figure**: once math, code, roles (``{glue:text}`...```,
  ``{doc}`...```), link targets, section numbers (``§5.1``), percentile names
  (``p99.9``) and kernel shapes (``3×3``) are removed, the prose holds no decimal
  number, percentage, ×-ratio, time in µs/ms/s, "N of M" count or ±-spread, apart from
  the short allow-list of the method's constants below. A measured figure is pasted
  with MyST-NB's ``{glue:text}`name:.3f``` from a ``glue("name", value,
  display=False)`` call in a code cell;
- **every pasted name is glued**: a ``{glue...}`` name used in a chapter's markdown is
  glued by a code cell of the same chapter; a ``path::name`` reference (the takeaways
  page) is glued by the chapter ``path`` names.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
PAGES = [ROOT / "book" / "takeaways.md"]

# Constants of the method, never measurements: the acc10 threshold, the reference
# chapter's market-making split (50 = 20 + 20 + 10 µs), the capstone's CPU p99 budget,
# the 200 µs of chapter 04's spin-loop check and chapter 09's co-located SLA.
ALLOWED = frozenset({"±10%", "95%", "50 µs", "20 µs", "10 µs", "40 µs", "200 µs"})

_STRIP = [
    re.compile(r"```.*?```", re.S),                       # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),                     # display math
    re.compile(r"\$(?:[^$\n]|\n(?!\n))+\$"),                # inline math, within a paragraph
    re.compile(r"\{[a-z:-]+\}`[^`]*`"),                   # roles, glue included
    re.compile(r"`[^`\n]*`"),                             # code spans
    re.compile(r"\]\([^)]*\)"),                           # link targets
    re.compile(r"(?:§|[Ss]ections?\s)\s*\d+(?:\.\d+)*(?:[–-]\d+(?:\.\d+)*)?"),  # section numbers
    re.compile(r"\bp\d+(?:\.\d+)?\b"),                    # percentile names: p50, p99.9
    re.compile(r"\b\d+×\d+\b"),                           # kernel shapes: 3×3
    re.compile(r"\b(?:Python|PyTorch|ONNX Runtime|IPython|Jupyter Book)\s+\d+(?:\.\d+)+"),  # versions
]
FIGURE = re.compile(r"""(?x)
    ±\s*\d[\d,]*(?:\.\d+)?\s*%?                            # a spread: ± 0.005, ±10%
  | \d[\d,]*\.\d+\s*(?:%|×|x\b|µs\b|us\b|ms\b|s\b)?       # a decimal, with its unit if any
  | \d[\d,]*\s*(?:%|×|µs\b|us\b|ms\b)                      # an integer percentage, ratio or time
  | \d+x\b                                                # a ratio written 2x
  | \b\d+\s+of\s+(?:the\s+)?\d+\b                         # a count: 6 of 6
""")
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]*)?\}`([^`]+)`")
GLUE_DIRECTIVE = re.compile(r"[:`]{3,}\{glue(?::[a-z]+)?\}\s+(\S+)")
GLUE_CALL = re.compile(r"""\bglue\(\s*["']([^"']+)["']""")


def prose_figures(markdown: str) -> list[str]:
    """The measured-looking figures of ``markdown`` that are neither glued nor allowed."""
    text = markdown
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    found = []
    for match in FIGURE.finditer(text):
        figure = re.sub(r"\s+", " ", match.group(0)).strip()
        if figure.replace(" %", "%") not in ALLOWED:
            found.append(figure)
    return found


def pasted_names(markdown: str) -> list[tuple[str, str]]:
    """``(document, name)`` of every glue role or directive in ``markdown`` (document '' = this one)."""
    found = []
    for raw in GLUE_ROLE.findall(markdown) + GLUE_DIRECTIVE.findall(markdown):
        doc, _, key = raw.rpartition("::")
        found.append((doc, key.split(":", 1)[0] if ":" in key else key))
    return found


def glued_names(code: str) -> set[str]:
    """Names glued by ``glue("name", ...)`` calls in ``code``."""
    return set(GLUE_CALL.findall(code))


def _cells(path: Path) -> tuple[list[str], str]:
    if path.suffix == ".md":
        return [path.read_text(encoding="utf-8")], ""
    cells = jupytext.read(path).cells
    markdown = [c.source for c in cells if c.cell_type == "markdown"]
    markdown += [caption for c in cells  # figure captions are prose too (MyST renders their roles)
                 if (caption := c.metadata.get("mystnb", {}).get("figure", {}).get("caption"))]
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    return markdown, code


def _chapter_for(doc: str, page: Path) -> Path:
    target = (page.parent / doc).resolve() if not doc.startswith("/") else ROOT / doc.lstrip("/")
    return target.with_suffix(".py")


# ---------------------------------------------------------------- the rule itself
def test_rule_flags_unglued_figures() -> None:
    bad = ("The table predicts 93% of models within ±10%, Spearman 0.987, a 2.0x speed-up; "
           "the p99 was 102 µs, 1.23× random, 6 of 6 reports, score 0.614 ± 0.005.")
    assert prose_figures(bad) == ["93%", "0.987", "2.0x", "102 µs", "1.23×", "6 of 6", "0.614", "± 0.005"]


def test_rule_passes_glued_prose_and_constants() -> None:
    good = ("The table predicts {glue:text}`acc10:.0%` within ±10% of the measured time, "
            "against a 20 µs slice of the 50 µs budget (§5.1, section 3.3); p99.9 and 3×3 "
            "kernels; $w = -0.07$; `lr=0.05`; PyTorch 2.13.0 on Python 3.11.")
    assert prose_figures(good) == []


def test_pasted_names_reads_roles_and_other_documents() -> None:
    text = ("{glue:text}`acc10:.1%` and {glue:}`verdict` and "
            "{glue:text}`../notebooks/07_pareto.ipynb::hv_ratio:.2f`\n:::{glue:figure} front\n:::")
    assert pasted_names(text) == [("", "acc10"), ("", "verdict"),
                                  ("../notebooks/07_pareto.ipynb", "hv_ratio"), ("", "front")]
    assert glued_names('glue("acc10", x, display=False)\nglue( "verdict", v)') == {"acc10", "verdict"}


# ---------------------------------------------------------------- the chapters
@pytest.mark.parametrize("path", CHAPTERS + PAGES, ids=[p.stem for p in CHAPTERS + PAGES])
def test_prose_has_no_unglued_measured_figure(path: Path) -> None:
    markdown, _ = _cells(path)
    offenders = [(i, f) for i, cell in enumerate(markdown) for f in prose_figures(cell)]
    assert not offenders, (
        f"{path.name}: measured-looking figures in the prose that no cell glues "
        f"(markdown cell, figure): {offenders}; glue them from a cell "
        "(myst_nb.glue + {glue:text}`name:fmt`) or, for a constant of the method, "
        "add it to ALLOWED in tests/test_glue.py")


@pytest.mark.parametrize("path", CHAPTERS + PAGES, ids=[p.stem for p in CHAPTERS + PAGES])
def test_every_pasted_name_is_glued(path: Path) -> None:
    markdown, code = _cells(path)
    missing = []
    for doc, name in pasted_names("\n".join(markdown)):
        source = code if not doc else _cells(_chapter_for(doc, path))[1]
        if name not in glued_names(source):
            missing.append(f"{doc + '::' if doc else ''}{name}")
    assert not missing, f"{path.name}: pasted but never glued by the chapter's cells: {missing}"


def test_cross_document_text_roles_carry_a_format() -> None:
    """MyST-NB splits ``{glue:text}`` at its last ':', so ``doc::key`` alone loses the key."""
    bare = []
    for path in PAGES + CHAPTERS:
        text = "\n".join(_cells(path)[0])
        for raw in re.findall(r"\{glue:text\}`([^`]+)`", text):
            if "::" in raw and ":" not in raw.rpartition("::")[2]:
                bare.append(f"{path.name}: {raw}")
    assert not bare, f"add a format spec (':s', ':d', ':.2f') to these cross-document roles: {bare}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_a_chapter_that_glues_imports_glue(path: Path) -> None:
    _, code = _cells(path)
    if glued_names(code):
        assert re.search(r"^from myst_nb import glue\b", code, re.M), f"{path.name}: glue() is never imported"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_each_name_is_glued_once(path: Path) -> None:
    """MyST-NB warns on a duplicate glue key, and the book builds with -W."""
    _, code = _cells(path)
    names = GLUE_CALL.findall(code)
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"{path.name}: glued twice: {twice}"
