"""A chapter's jupytext ``.py`` twin among the page's download buttons.

The theme's download menu offers the executed ``.ipynb`` (with outputs) and a
PDF print; readers who work in an editor want the ``py:percent`` twin, the
chapter's source of truth. This extension copies every ``notebooks/*.py`` into
the site's ``_sources/notebooks/`` and adds a ".py" entry to the menu of each
chapter page, so both downloads work from the built site with no network.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def add_py_button(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                  doctree: Any) -> None:
    """Append the .py twin to the download group of a chapter page that has one."""
    twin = Path(app.srcdir) / f"{pagename}.py"
    if not pagename.startswith("notebooks/") or not twin.is_file():
        return
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            button["buttons"].insert(1, {
                "type": "link",
                "url": f"{context['pathto']('_sources', 1)}/{pagename}.py",
                "text": ".py",
                "icon": "fas fa-code",
                "tooltip": "Download the chapter's jupytext .py twin",
                "label": "download-py-button",
            })


def copy_twins(app: Any, exception: Exception | None) -> None:
    """Put the .py twins under the site's _sources/notebooks/."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_sources" / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    for twin in sorted((Path(app.srcdir) / "notebooks").glob("*.py")):
        shutil.copy2(twin, target / twin.name)


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", add_py_button, priority=950)
    app.connect("build-finished", copy_twins)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
