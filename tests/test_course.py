"""The course's apparatus: every chapter has its parts, every citation its entry.

- each chapter (notebooks/NN_topic.py, the source of truth) opens with a header cell
  "# NN · Title" that says what the reader will learn and what it needs first, and
  has a "## Summary" and a "## Exercises" section whose solutions are folded
  (a ``{dropdown}`` after the Exercises heading);
- every ``{cite}`` key used anywhere in the book exists in book/references.bib, and
  every entry there is cited somewhere (no dead entries);
- the intro's roadmap links every chapter of the table of contents.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
BIB = ROOT / "book" / "references.bib"
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def _markdown(path: Path) -> list[str]:
    return [cell.source for cell in jupytext.read(path).cells if cell.cell_type == "markdown"]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_has_header_summary_and_folded_exercises(path: Path) -> None:
    cells = _markdown(path)
    assert cells, f"{path.name} has no markdown cells"
    header = cells[0]
    number = path.stem[:2]
    assert re.match(rf"# {number} · \S", header), f"{path.name}: first cell must be '# {number} · Title'"
    assert re.search(r"learn", header, re.I), f"{path.name}: the header says what you will learn"
    assert re.search(r"Prerequisites", header), f"{path.name}: the header names the prerequisites"
    text = "\n\n".join(cells)
    assert re.search(r"^## Summary", text, re.M), f"{path.name}: no '## Summary' section"
    exercises = re.search(r"^## Exercises", text, re.M)
    assert exercises, f"{path.name}: no '## Exercises' section"
    assert re.search(r"\{dropdown\}", text[exercises.end():]), (
        f"{path.name}: the exercises' solutions must be folded in a {{dropdown}}")


def _bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", BIB.read_text(encoding="utf-8"), re.M))


def _cited() -> dict[str, set[str]]:
    sources = list((ROOT / "book").glob("*.md")) + list((ROOT / "notebooks").glob("*.py"))
    cited: dict[str, set[str]] = {}
    for source in sources:
        for group in CITE.findall(source.read_text(encoding="utf-8")):
            for key in group.split(","):
                cited.setdefault(key.strip(), set()).add(source.name)
    return cited


def test_every_citation_has_a_bibliography_entry() -> None:
    missing = {key: sorted(where) for key, where in _cited().items() if key not in _bib_keys()}
    assert not missing, f"cited but not in references.bib: {missing}"


def test_every_bibliography_entry_is_cited() -> None:
    unused = sorted(_bib_keys() - set(_cited()))
    assert not unused, f"entries of references.bib that no page cites: {unused}"


def test_intro_links_every_chapter() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    chapters = [c["file"] for part in toc["parts"] for c in part["chapters"]
                if c["file"].startswith("notebooks/")]
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    unlinked = [c for c in chapters if not re.search(rf"\{{doc\}}`[^`]*{re.escape(Path(c).name)}`", intro)]
    assert not unlinked, f"the intro's roadmap does not link {unlinked}"
    assert not re.search(r"\bplanned\b", intro, re.I), "the intro calls something 'planned'"


DOC = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")


def test_every_doc_link_names_a_page_of_the_book() -> None:
    """``{doc}`` targets resolve (relative to the page, or absolute from the book root)."""
    broken = []
    sources = list((ROOT / "book").glob("*.md")) + list((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for source in sources:
        for target in DOC.findall(source.read_text(encoding="utf-8")):
            base = ROOT if target.startswith("/") else source.parent
            path = (base / target.lstrip("/")).resolve()
            if not any(path.with_suffix(s).is_file() for s in (".md", ".ipynb")):
                broken.append(f"{source.name} -> {target}")
    assert not broken, f"{{doc}} links to pages that do not exist: {broken}"


DRAWS = re.compile(r"(?<![\w.])(plots\.\w+\(|plt\.subplots\()")


def _figure_cells(path: Path) -> list[tuple[int, str, dict]]:
    """(cell index, source, metadata) of every code cell that draws a figure."""
    return [(i, cell.source, cell.metadata) for i, cell in enumerate(jupytext.read(path).cells)
            if cell.cell_type == "code" and DRAWS.search(cell.source)]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_figure_has_a_caption_and_alt_text(path: Path) -> None:
    """A figure cell carries ``mystnb: {figure: {caption}, image: {alt}}`` in its header line
    (``# %% mystnb={...}``): the caption says what to read off the figure, the alt text
    describes it for a reader who cannot see it."""
    cells = _figure_cells(path)
    assert cells, f"{path.name} draws no figure"
    for index, source, metadata in cells:
        where = f"{path.name} cell {index} ({source.splitlines()[0][:60]!r})"
        options = metadata.get("mystnb", {})
        caption = options.get("figure", {}).get("caption", "")
        alt = options.get("image", {}).get("alt", "")
        assert len(caption) >= 30 and caption.rstrip().endswith("."), f"{where}: no caption sentence"
        assert len(alt) >= 30, f"{where}: no alt text"
        assert alt != caption, f"{where}: the alt text describes the image; the caption interprets it"
        assert "name" not in options.get("figure", {}) or re.fullmatch(r"fig-\d\d-[a-z0-9-]+",
                                                                     options["figure"]["name"]), where


def test_takeaways_page_covers_the_ten_takeaways_with_glued_figures_and_links() -> None:
    """book/takeaways.md: one section per takeaway of the reference chapter, in order,
    each with a figure pasted from a chapter (cross-document glue) and a link to the
    chapter or section that shows it; 7 and 9 say where the evidence contradicts."""
    text = (ROOT / "book" / "takeaways.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert [s.split(".", 1)[0] for s in sections] == [str(n) for n in range(1, 11)]
    for section in sections:
        title = section.splitlines()[0]
        assert re.search(r"\{glue:text\}`/notebooks/\d\d_\w+\.ipynb::", section), f"no glued figure: {title}"
        assert re.search(r"\{(?:ref|doc)\}`", section), f"no link to the chapter that shows it: {title}"
    for number in (7, 9):
        assert re.search(r"contradict", sections[number - 1], re.I), f"takeaway {number} must say it is contradicted"
