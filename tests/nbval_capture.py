"""pytest plugin: keep what nbval executes, so the book build does not execute it again.

Loaded by `make test` for the notebook phase (``-p nbval_capture`` with ``tests/`` on
``PYTHONPATH``). After each chapter's cells have run under nbval, the executed notebook
(the committed one with the fresh outputs) is saved under ``_build/executed/`` with its
freshness key (see ``tools/executed.py``); a chapter any of whose cells failed is not
saved. At the end it prints a table of per-chapter execution times.
"""

from __future__ import annotations

import copy
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from executed import execution_key, library_digest, save_executed  # noqa: E402

_outputs: dict[Path, dict[int, list[dict[str, Any]]]] = defaultdict(dict)
_failed: set[Path] = set()
_seconds: dict[Path, float] = defaultdict(float)
_notebooks: dict[Path, Any] = {}


def _to_output(out: Any, count: int) -> dict[str, Any]:
    """An nbformat output from what nbval collected."""
    kind = out["output_type"]
    if kind == "stream":
        return {"output_type": "stream", "name": out["name"], "text": out["text"]}
    if kind == "execute_result":
        return {"output_type": "execute_result", "execution_count": count,
                "data": dict(out["data"]), "metadata": dict(out.get("metadata", {}))}
    if kind == "display_data":
        return {"output_type": "display_data", "data": dict(out["data"]),
                "metadata": dict(out.get("metadata", {}))}
    return {"output_type": "error", "ename": out.get("ename", ""), "evalue": out.get("evalue", ""),
            "traceback": list(out.get("traceback", []))}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not hasattr(item, "cell") or not hasattr(item.parent, "nb"):
        return
    path = Path(str(item.parent.fspath))
    _notebooks[path] = item.parent.nb
    _seconds[path] += report.duration
    if report.failed:
        _failed.add(path)
    if call.when == "call":
        _outputs[path][item.cell_num] = list(getattr(item, "test_outputs", None) or [])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _notebooks:
        return
    library = library_digest()
    rows = []
    for path, source in sorted(_notebooks.items()):
        status = "failed" if path in _failed else "saved"
        if path not in _failed:
            notebook = copy.deepcopy(dict(source))
            count = 0
            code_index = -1
            for cell in notebook["cells"]:
                if cell["cell_type"] != "code":
                    continue
                code_index += 1
                outs = _outputs[path].get(code_index)
                if outs is None:  # skipped by nbval: keep the committed outputs
                    continue
                count += 1
                cell["execution_count"] = count
                cell["outputs"] = [_to_output(out, count) for out in outs]
            save_executed(notebook, path.stem, _seconds[path], "nbval",
                          execution_key(notebook, library))
        rows.append((path.stem, _seconds[path], status))
    print("\nchapter execution times (nbval)")
    for name, seconds, status in rows:
        flag = "  OVER 2 MIN" if seconds > 120 else ""
        print(f"  {name:<28} {seconds:7.1f} s  {status}{flag}")
