"""Fresh, honest outputs (issue 20).

- **no stray text beside a figure**: no executed chapter (the committed ``.ipynb`` and,
  when present, the copies under ``_build/executed/``) has an output whose only
  representation is the text of a matplotlib object (``Text(...)``, ``<Axes ...>``,
  ``[<matplotlib.lines.Line2D ...>]``): such a line is the value of a figure cell's
  last expression, and the book numbers it as a figure of its own. End figure cells
  with ``;`` (or ``None``).
- **outputs come from the current sources**: each committed chapter carries the
  freshness stamps written by ``tools/stamp.py`` (``tools/executed.py``: sha256 of the
  chapter's ``.py`` and of ``hwnas/**/*.py``), and they match the sources now. Restamp
  with ``env -u MPLBACKEND HWNAS_BYBIT_DIR=... python tools/stamp.py``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from executed import STAMP_FIELD, library_sources_digest, stale_stamps, stamp  # noqa: E402

CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
EXECUTED = sorted((ROOT / "_build" / "executed" / "notebooks").glob("*.ipynb"))
STRAY = re.compile(r"^\s*\[?\s*(?:Text\(|<Axes|<matplotlib\.|<Figure|\(<Figure|<mpl_toolkits\.|Text\s*\()")


def stray_outputs(notebook: dict[str, Any]) -> list[tuple[int, str]]:
    """``(cell index, first line)`` of every output that is only a matplotlib object's repr."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if output.get("output_type") not in {"execute_result", "display_data"}:
                continue
            if any(mime.startswith("image/") for mime in data):
                continue
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if STRAY.match(text):
                found.append((index, text.splitlines()[0][:60]))
    return found


def _figure_cell(extra: list[dict[str, Any]]) -> dict[str, Any]:
    image = {"output_type": "display_data", "metadata": {},
             "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "source": "ax.plot(x)", "metadata": {}, "execution_count": 1,
         "outputs": [*extra, image]}]}


def test_rule_flags_a_stray_repr_beside_a_figure() -> None:
    stray = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
             "data": {"text/plain": "Text(0.5, 1.0, 'latency against FLOPs')"}}
    lines = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
             "data": {"text/plain": ["[<matplotlib.lines.Line2D at 0x7f>]"]}}
    assert stray_outputs(_figure_cell([stray])) == [(0, "Text(0.5, 1.0, 'latency against FLOPs')")]
    assert stray_outputs(_figure_cell([lines])) == [(0, "[<matplotlib.lines.Line2D at 0x7f>]")]


def test_rule_passes_a_figure_cell_ended_with_a_semicolon() -> None:
    printed = {"output_type": "stream", "name": "stdout", "text": "Text( is fine in a print\n"}
    assert stray_outputs(_figure_cell([printed])) == []


@pytest.mark.parametrize("path", [ROOT / "notebooks" / f"{c}.ipynb" for c in CHAPTERS] + EXECUTED,
                         ids=[f"committed:{c}" for c in CHAPTERS] + [f"executed:{p.stem}" for p in EXECUTED])
def test_no_stray_text_output_beside_figures(path: Path) -> None:
    stray = stray_outputs(json.loads(path.read_text(encoding="utf-8")))
    assert not stray, (f"{path.relative_to(ROOT)}: text outputs of matplotlib objects "
                       f"(cell index, text): {stray}; end those figure cells with ';'")


# ---------------------------------------------------------------- freshness stamps
def test_stamps_detect_a_changed_source(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "hwnas").mkdir()
    chapter = tmp_path / "notebooks" / "01_demo.py"
    chapter.write_text("# %%\nprint(1)\n", encoding="utf-8")
    (tmp_path / "hwnas" / "core.py").write_text("X = 1\n", encoding="utf-8")
    notebook: dict[str, Any] = {"metadata": {}, "cells": []}
    assert stale_stamps(notebook, "01_demo", tmp_path) == [
        f"no {STAMP_FIELD} stamps in the metadata (never executed by tools/stamp.py)"]
    stamp(notebook, "01_demo", tmp_path)
    assert stale_stamps(notebook, "01_demo", tmp_path) == []
    chapter.write_text("# %%\nprint(2)\n", encoding="utf-8")
    assert [r.split()[0] for r in stale_stamps(notebook, "01_demo", tmp_path)] == ["chapter_sha256"]
    stamp(notebook, "01_demo", tmp_path)
    (tmp_path / "hwnas" / "core.py").write_text("X = 2\n", encoding="utf-8")
    assert [r.split()[0] for r in stale_stamps(notebook, "01_demo", tmp_path)] == ["library_sha256"]


def test_stamps_reject_an_unknown_chapter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name"):
        stamp({}, "99_missing", tmp_path)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_committed_outputs_are_stamped_with_the_current_sources(chapter: str) -> None:
    notebook = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    stale = stale_stamps(notebook, chapter, library=library_sources_digest())
    assert not stale, (f"notebooks/{chapter}.ipynb was not executed from the current sources: "
                       f"{stale}; re-execute and restamp it with "
                       f"`env -u MPLBACKEND python tools/stamp.py {chapter}`")


def test_stamp_tool_names_its_chapters() -> None:
    import stamp as stamp_tool  # tools/stamp.py

    assert stamp_tool.chapters([]) == CHAPTERS
    assert stamp_tool.chapters(["04_latency_lut"]) == ["04_latency_lut"]
    with pytest.raises(ValueError, match="names: unknown chapters"):
        stamp_tool.chapters(["04_latency"])
