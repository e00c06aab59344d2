"""Each inline script once per page.

Jupyter Book 1 registers sphinx-thebe's and sphinx-togglebutton's inline
configuration scripts twice (their ``env-before-read-docs`` handlers run twice), so
every page declared ``const THEBE_JS_URL`` twice and the browser logged
"Identifier 'THEBE_JS_URL' has already been declared" on every page. This extension
drops exact repeats (same file, same inline body) from each page's scripts.
The browser test in tests/test_book_build.py fails on any console error.
"""

from __future__ import annotations

from typing import Any


def _key(script: Any) -> tuple[str, str]:
    attributes = getattr(script, "attributes", {}) or {}
    return (str(getattr(script, "filename", script) or ""), str(attributes.get("body", "")))


def unique_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                   doctree: Any) -> None:
    """Keep the first of each (file, inline body) pair in the page's script list."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    kept = []
    for script in scripts:
        key = _key(script)
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
