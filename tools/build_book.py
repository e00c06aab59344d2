"""Build the Jupyter Book with every chapter executed exactly once.

    python tools/build_book.py [--out DIR] [--reuse | --fresh] [--jobs 1]

The book is built from a staging copy of the sources (``_config.yml``,
``_toc.yml``, ``book/``, ``notebooks/``) in which each chapter is an *executed*
notebook and Sphinx's own execution is off. A chapter's executed copy comes
from ``_build/executed/`` when it is fresh (``--reuse``, the default: `make test`
executes every chapter under nbval first and saves it there; freshness covers
the chapter's code, the whole ``hwnas`` library and the data settings, see
``tools/executed.py``), else the chapter is executed here, with nbclient, in its
own folder as nbval and Jupyter would run it. ``--fresh`` executes every
chapter. A table of per-chapter execution times is printed and written to
``OUT/chapter_times.txt``. Each executed chapter carries the freshness stamps of
``tools/executed.py`` (hashes of its ``.py`` and of the library) into the staged
notebook's metadata. The build gate is ``jupyter-book build -W -n
--keep-going`` as before, so a warning fails the build.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from executed import KEY_FIELD, ROOT, STAMP_FIELD, execution_key, library_digest, load_fresh, save_executed  # noqa: E402

CHAPTER_LIMIT_S = 120.0
EXECUTE_TIMEOUT_S = 600


def toc_files(node: Any) -> list[str]:
    """Every ``file:`` / ``root:`` entry of a parsed jb-book toc, in reading order."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found.extend(toc_files(child))
    return found


def toc_entries(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every file of the table of contents in ``toc``, in reading order."""
    return toc_files(yaml.safe_load(toc.read_text(encoding="utf-8")))


def execute(path: Path) -> tuple[dict[str, Any], float]:
    """Run a notebook top to bottom in its own folder; the executed notebook and seconds."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    env_backup = os.environ.pop("MPLBACKEND", None)  # kernels need the inline backend
    start = time.perf_counter()
    try:
        NotebookClient(notebook, timeout=EXECUTE_TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_backup is not None:
            os.environ["MPLBACKEND"] = env_backup
    return json.loads(nbformat.writes(notebook)), time.perf_counter() - start


def stage_sources(stage: Path) -> None:
    """Copy the book's sources into ``stage`` with Sphinx's execution switched off."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    shutil.copy2(ROOT / "_toc.yml", stage / "_toc.yml")
    shutil.copytree(ROOT / "book", stage / "book")
    (stage / "notebooks").mkdir()
    for source in sorted((ROOT / "notebooks").glob("*.py")):
        shutil.copy2(source, stage / "notebooks" / source.name)


def executed_chapters(stage: Path, reuse: bool) -> list[tuple[str, float, str]]:
    """Put an executed copy of every chapter of the toc into ``stage``; rows of the time table."""
    library = library_digest()
    rows = []
    for entry in toc_entries():
        if not entry.startswith("notebooks/"):
            continue
        source = ROOT / f"{entry}.ipynb"
        name = source.stem
        committed = json.loads(source.read_text(encoding="utf-8"))
        key = execution_key(committed, library)
        executed = load_fresh(name, key) if reuse else None
        if executed is not None:
            notebook = with_outputs(committed, executed)
            meta = executed["metadata"]["hwnas_execution"]
            rows.append((name, float(meta["seconds"]), f"reused ({meta['executed_by']})"))
        else:
            notebook, seconds = execute(source)
            save_executed(notebook, name, seconds, "book build", key)
            rows.append((name, seconds, "executed"))
        (stage / "notebooks" / f"{name}.ipynb").write_text(
            json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")
    return rows


def with_outputs(committed: dict[str, Any], executed: dict[str, Any]) -> dict[str, Any]:
    """The committed chapter (its current prose) with the outputs of a fresh execution.

    A fresh execution has the same code cells in the same order (its key says so), so
    outputs are carried over cell by cell; edited markdown needs no re-execution.
    """
    code_outputs = [(c.get("outputs", []), c.get("execution_count"))
                    for c in executed["cells"] if c.get("cell_type") == "code"]
    merged = json.loads(json.dumps(committed))
    code_cells = [c for c in merged["cells"] if c.get("cell_type") == "code"]
    if len(code_cells) != len(code_outputs):
        raise ValueError("executed notebook does not match the chapter's code cells")
    for cell, (outputs, count) in zip(code_cells, code_outputs):
        cell["outputs"], cell["execution_count"] = outputs, count
    for field in (KEY_FIELD, STAMP_FIELD):  # the execution's key and its freshness stamps
        if field in executed["metadata"]:
            merged["metadata"][field] = executed["metadata"][field]
    return merged


def time_table(rows: list[tuple[str, float, str]]) -> str:
    """The per-chapter execution times, flagging any over the course's 2-minute limit."""
    lines = ["chapter execution times", f"  {'chapter':<28} {'seconds':>8}  how"]
    for name, seconds, how in rows:
        flag = "  OVER 2 MIN" if seconds > CHAPTER_LIMIT_S else ""
        lines.append(f"  {name:<28} {seconds:8.1f}  {how}{flag}")
    lines.append(f"  {'total':<28} {sum(r[1] for r in rows):8.1f}")
    return "\n".join(lines)


def jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT,
                        help="folder that receives _build/html (default: the repository)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--reuse", dest="reuse", action="store_true", default=True,
                       help="reuse fresh executions from _build/executed (default)")
    group.add_argument("--fresh", dest="reuse", action="store_false",
                       help="execute every chapter now")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    stage = ROOT / "_build" / "stage"
    stage_sources(stage)
    rows = executed_chapters(stage, args.reuse)
    table = time_table(rows)
    print(table, flush=True)
    (out / "_build").mkdir(parents=True, exist_ok=True)
    (out / "_build" / "chapter_times.txt").write_text(table + "\n", encoding="utf-8")
    command = [*jupyter_book(), "build", str(stage), "--path-output", str(out), "-W", "-n", "--keep-going"]
    return subprocess.call(command, cwd=stage)


if __name__ == "__main__":
    sys.exit(main())
