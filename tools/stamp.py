"""Execute chapters in place and stamp them with the sources they were executed from.

    python tools/stamp.py                 # every chapter: sync .py -> .ipynb, execute, stamp
    python tools/stamp.py 04_latency_lut  # only the chapters named
    python tools/stamp.py --check         # list chapters whose committed outputs are stale

Each chapter's ``.ipynb`` is rebuilt from its jupytext ``.py`` twin (the source of
truth), executed top to bottom in ``notebooks/`` with nbclient (as ``make book`` does),
and written back with its outputs and the freshness stamps of ``tools/executed.py``
(sha256 of the ``.py`` and of ``hwnas/**/*.py``) in its metadata; tests/test_outputs.py
checks that the committed stamps match the current sources. The executed copy is also
saved under ``_build/executed/`` so the next book build reuses it. Run it with
MPLBACKEND unset (the kernel's inline backend draws the figures) and the data settings
exported, e.g. ``env -u MPLBACKEND HWNAS_BYBIT_DIR=... python tools/stamp.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_book import execute  # noqa: E402
from executed import ROOT, execution_key, library_sources_digest, save_executed, stale_stamps, stamp  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"


def chapters(names: list[str]) -> list[str]:
    """The chapter stems to work on: ``names``, or every ``notebooks/NN_*.py``."""
    known = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"names: unknown chapters {unknown} (allowed: {known})")
    return names or known


def pairing_metadata() -> dict[str, str]:
    """The ``jupytext`` metadata of a paired chapter, from ``jupytext.toml`` (one definition)."""
    config = tomllib.loads((ROOT / "jupytext.toml").read_text(encoding="utf-8"))
    return {key: config[key] for key in ("cell_metadata_filter", "formats", "notebook_metadata_filter")}


def sync(name: str) -> Path:
    """Rebuild ``notebooks/name.ipynb`` from its ``.py`` twin, keeping the cell ids and
    metadata of the cells that did not change (as ``jupytext --sync`` does); its path."""
    import jupytext
    from jupytext.combine import combine_inputs_with_outputs

    target = NOTEBOOKS / f"{name}.ipynb"
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    if target.is_file():
        notebook = combine_inputs_with_outputs(notebook, jupytext.read(target), fmt="py:percent")
    # the pairing's filters (jupytext.toml), as `jupytext --sync` records them: without them
    # JupyterLab's jupytext sees extra metadata in the .ipynb and refuses to open the twin
    notebook.metadata["jupytext"] = pairing_metadata()
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def execute_and_stamp(name: str) -> float:
    """Sync, execute and stamp one chapter in place; the seconds it ran."""
    path = sync(name)
    notebook, seconds = execute(path)
    stamp(notebook, name)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    save_executed(json.loads(json.dumps(notebook)), name, seconds, "tools/stamp.py",
                  execution_key(notebook))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="chapter stems, e.g. 04_latency_lut (default: all)")
    parser.add_argument("--check", action="store_true", help="only report stale chapters (exit 1 if any)")
    args = parser.parse_args(argv)
    names = chapters(args.names)
    if args.check:
        library = library_sources_digest()
        stale = {name: stale_stamps(json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")),
                                    name, library=library) for name in names}
        for name, reasons in stale.items():
            print(f"{name:<28} {'stale: ' + '; '.join(reasons) if reasons else 'fresh'}")
        return 1 if any(stale.values()) else 0
    for name in names:
        seconds = execute_and_stamp(name)
        print(f"{name:<28} executed and stamped in {seconds:6.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
