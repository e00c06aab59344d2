"""Executed chapters, shared by the notebook tests and the book build.

Each chapter is executed once per `make test`: nbval runs it (phase 2) and the
plugin in ``tests/nbval_capture.py`` saves the executed copy here; the book build
(phase 3, ``tools/build_book.py``) reuses that copy instead of running the chapter
again. A copy is reused only while it is *fresh*: its key is a hash of the
chapter's code cells, of every file of the ``hwnas`` library and of the data
settings (``HWNAS_BYBIT_DIR``, ``HWNAS_OFFLINE``), so a change to any of them
re-executes the chapter.

Every executed copy, and every committed chapter executed by ``tools/stamp.py``, also
carries *freshness stamps* in its metadata (``hwnas_sources``): the sha256 of the
chapter's ``.py`` source and of the library's ``hwnas/**/*.py`` files, so a test can
tell that committed outputs were produced by the current sources
(tests/test_outputs.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXECUTED_DIR = ROOT / "_build" / "executed"
KEY_FIELD = "hwnas_execution"
STAMP_FIELD = "hwnas_sources"


def library_digest(root: Path = ROOT) -> str:
    """sha256 over the hwnas package's source files (path and content)."""
    digest = hashlib.sha256()
    for path in sorted((root / "hwnas").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json", ".typed"} and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def library_sources_digest(root: Path = ROOT) -> str:
    """sha256 over the content of ``hwnas/**/*.py``, in sorted path order (the library stamp)."""
    digest = hashlib.sha256()
    for path in sorted((root / "hwnas").rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root).as_posix()).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def source_stamps(name: str, root: Path = ROOT, library: str | None = None) -> dict[str, str]:
    """The freshness stamps of chapter ``name``: hashes of its ``.py`` source and of the library."""
    source = root / "notebooks" / f"{name}.py"
    if not source.is_file():
        raise ValueError(f"name: no chapter source {source} (allowed: a notebooks/NN_topic stem)")
    return {"chapter": f"notebooks/{name}.py",
            "chapter_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "library_sha256": library or library_sources_digest(root)}


def stamp(notebook: dict[str, Any], name: str, root: Path = ROOT, library: str | None = None) -> None:
    """Record in ``notebook``'s metadata the stamps of the sources it was executed from."""
    notebook.setdefault("metadata", {})[STAMP_FIELD] = source_stamps(name, root, library)


def stale_stamps(notebook: dict[str, Any], name: str, root: Path = ROOT,
                 library: str | None = None) -> list[str]:
    """Why ``notebook``'s outputs are not those of the current sources; empty when fresh."""
    recorded = notebook.get("metadata", {}).get(STAMP_FIELD)
    if not isinstance(recorded, dict):
        return [f"no {STAMP_FIELD} stamps in the metadata (never executed by tools/stamp.py)"]
    current = source_stamps(name, root, library)
    return [f"{field} {str(recorded.get(field))[:12]} != current {current[field][:12]}"
            for field in ("chapter_sha256", "library_sha256") if recorded.get(field) != current[field]]


def execution_key(notebook: dict[str, Any], library: str | None = None) -> str:
    """The freshness key of an execution of ``notebook`` (code cells, library, data settings)."""
    digest = hashlib.sha256()
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            digest.update(("".join(source) if isinstance(source, list) else source).encode())
            digest.update(b"\0")
    digest.update((library or library_digest()).encode())
    for name in ("HWNAS_BYBIT_DIR", "HWNAS_OFFLINE"):
        digest.update(f"{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()


def save_executed(notebook: dict[str, Any], name: str, seconds: float, executed_by: str,
                  key: str, folder: Path = EXECUTED_DIR) -> Path:
    """Write an executed chapter with its key and time (temporary file, then rename)."""
    notebook.setdefault("metadata", {})[KEY_FIELD] = {
        "key": key, "seconds": round(seconds, 1), "executed_by": executed_by}
    if (ROOT / "notebooks" / f"{name}.py").is_file():
        stamp(notebook, name)
    target = folder / "notebooks" / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(notebook, handle, indent=1, ensure_ascii=False)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


def load_fresh(name: str, key: str, folder: Path = EXECUTED_DIR) -> dict[str, Any] | None:
    """The saved execution of chapter ``name`` if its key is ``key``, else None."""
    path = folder / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        return None
    try:
        notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    meta = notebook.get("metadata", {}).get(KEY_FIELD, {})
    return notebook if meta.get("key") == key else None
