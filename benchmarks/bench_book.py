"""The book built from scratch, quiet and with one CPU-bound competing process per core.

For each condition (``quiet``, then ``loaded``: one ``while True: pass`` process per
core running beside the build), runs what ``make book`` runs,
``tools/build_book.py --fresh`` (every chapter executed once with nbclient, then
``jupyter-book build -W -n --keep-going``), into a scratch folder, and reports:

* per-chapter execution seconds (the tool's ``_build/chapter_times.txt``): every chapter
  under 2 minutes quiet, the whole build under 15 minutes;
* the course's claim as the chapters measured it (their glued figures, read back from
  the executed notebooks in ``_build/executed/``): acc10 and Spearman of the lookup
  table and of the cross-fitted FLOPs fit, on the same models in the same passes, in
  eager PyTorch (chapter 04) and ONNX Runtime (chapter 11), and the noise floor.

Writes ``benchmarks/results/book.txt`` and ``book.json`` (atomically). The full run
takes 20-40 minutes on 2 cores:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py

A quick check of the harness, which executes only the named chapters from their
``.py`` sources (no book build) and writes nothing unless ``--out`` is given:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --chapters 04 11 --conditions loaded
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402

OUT_DIR = ROOT / "benchmarks" / "results"
CHAPTER_LIMIT_S = 120.0
BOOK_LIMIT_S = 15 * 60.0
CONDITIONS = ("quiet", "loaded")
# The chapters that measure the course's claim, and the glue names of their figures.
CLAIM_GLUE = {
    "04_latency_lut": {"lut_acc10": "lut_acc10", "flops_acc10": "flops_acc10", "lut_rho": "lut_rho",
                       "flops_rho": "flops_rho", "repeat_acc10": "repeat_acc10"},
    "11_deployment": {"lut_acc10": "ort_lut_acc10", "flops_acc10": "ort_flops_acc10", "lut_rho": "ort_lut_rho",
                      "flops_rho": "ort_flops_rho", "repeat_acc10": "ort_repeat_acc10"},
}


def kernel_env() -> dict[str, str]:
    """The environment ``make book`` gives the kernels: no MPLBACKEND, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def busy(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` CPU-bound processes running for the duration of the block (ended by their own id)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def glued(notebook: dict[str, Any]) -> dict[str, Any]:
    """Every ``glue(name, value)`` of an executed notebook: name -> value (a literal when it parses)."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if not name:
                continue
            text = next((v for k, v in output.get("data", {}).items() if k.endswith("text/plain")), None)
            if isinstance(text, list):
                text = "".join(text)
            try:
                found[name] = ast.literal_eval(text) if text is not None else None
            except (ValueError, SyntaxError):
                found[name] = text
    return found


def claim_figures(notebooks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The course's claim per measuring chapter, from its glued figures (None when missing)."""
    out: dict[str, dict[str, Any]] = {}
    for chapter, names in CLAIM_GLUE.items():
        if chapter not in notebooks:
            continue
        values = glued(notebooks[chapter])
        row = {key: values.get(name) for key, name in names.items()}
        numbers = [row[k] for k in ("lut_acc10", "flops_acc10", "lut_rho", "flops_rho")]
        row["table_wins"] = (all(isinstance(v, (int, float)) for v in numbers)
                             and row["lut_acc10"] > row["flops_acc10"] and row["lut_rho"] > row["flops_rho"])
        out[chapter] = row
    return out


def parse_chapter_times(text: str) -> dict[str, float]:
    """Chapter -> seconds from ``tools/build_book.py``'s table (``chapter_times.txt``)."""
    times: dict[str, float] = {}
    for line in text.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0] != "total":
            try:
                times[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return times


def build_book(scratch: Path) -> dict[str, Any]:
    """``tools/build_book.py --fresh --out scratch``: exit code, wall seconds, chapter times, claim."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--fresh", "--out", str(scratch)],
                          cwd=ROOT, env=kernel_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    times_file = scratch / "_build" / "chapter_times.txt"
    times = parse_chapter_times(times_file.read_text(encoding="utf-8")) if times_file.exists() else {}
    executed = ROOT / "_build" / "executed" / "notebooks"  # where tools/executed.py saves each run
    notebooks = {c: json.loads((executed / f"{c}.ipynb").read_text(encoding="utf-8"))
                 for c in CLAIM_GLUE if (executed / f"{c}.ipynb").exists()}
    if len(notebooks) != len(CLAIM_GLUE):
        raise FileNotFoundError(f"{executed}: the executed chapters {sorted(CLAIM_GLUE)} are not all there")
    return {"rc": proc.returncode, "wall_s": round(wall, 1), "chapters_s": times,
            "claim": claim_figures(notebooks), "log_tail": (proc.stdout + proc.stderr)[-4000:]}


def chapter_source(prefix: str) -> Path:
    """The ``notebooks/<prefix>*.py`` source of a chapter (``04`` or ``04_latency_lut``)."""
    matches = sorted((ROOT / "notebooks").glob(f"{prefix}*.py"))
    if len(matches) != 1:
        raise ValueError(f"--chapters {prefix!r} must name exactly one notebooks/NN_*.py, found {len(matches)}")
    return matches[0]


def execute_chapters(prefixes: Sequence[str]) -> dict[str, Any]:
    """Execute the named chapters from their ``.py`` sources (the quick mode): seconds and claim."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    times: dict[str, float] = {}
    notebooks: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    saved = {k: os.environ.get(k) for k in ("MPLBACKEND", "PYTHONPATH")}
    os.environ.pop("MPLBACKEND", None)
    os.environ["PYTHONPATH"] = str(ROOT)
    try:
        for prefix in prefixes:
            source = chapter_source(prefix)
            notebook = jupytext.read(source)
            start = time.perf_counter()
            try:
                NotebookClient(notebook, timeout=600, kernel_name="python3",
                               resources={"metadata": {"path": str(source.parent)}}).execute()
            except Exception as error:  # a failing cell is a result of the run, reported
                errors[source.stem] = f"{type(error).__name__}: {str(error)[-600:]}"
            times[source.stem] = round(time.perf_counter() - start, 1)
            notebooks[source.stem] = json.loads(nbformat.writes(notebook))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"rc": 1 if errors else 0, "wall_s": round(sum(times.values()), 1), "chapters_s": times,
            "claim": claim_figures(notebooks), "errors": errors}


def report_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """The text report: chapter seconds per condition, the limits, the claim per chapter."""
    conditions = list(results)
    chapters = sorted({c for r in results.values() for c in r["chapters_s"]})
    lines = [f"{'chapter':<28}" + "".join(f"{c + ' s':>12}" for c in conditions)]
    for chapter in chapters:
        cells = []
        for cond in conditions:
            s = results[cond]["chapters_s"].get(chapter)
            cells.append("-" if s is None else f"{s:.1f}{'!' if s > CHAPTER_LIMIT_S else ''}")
        lines.append(f"{chapter:<28}" + "".join(f"{c:>12}" for c in cells))
    lines.append(f"{'total (executing)':<28}" + "".join(
        f"{sum(results[c]['chapters_s'].values()):>12.1f}" for c in conditions))
    lines.append(f"{'wall (whole run)':<28}" + "".join(f"{results[c]['wall_s']:>12.1f}" for c in conditions))
    lines.append(f"{'exit code':<28}" + "".join(f"{results[c]['rc']:>12}" for c in conditions))
    lines.append("('!': over the 2-minute chapter limit)")
    for cond in conditions:
        r = results[cond]
        over = [c for c, s in r["chapters_s"].items() if s > CHAPTER_LIMIT_S]
        verdict = "PASS" if not over else "FAIL " + ", ".join(over)
        lines.append(f"{cond}: every chapter under {CHAPTER_LIMIT_S:.0f} s: {verdict}"
                     f"; whole under {BOOK_LIMIT_S:.0f} s: {'PASS' if r['wall_s'] < BOOK_LIMIT_S else 'FAIL'}"
                     f"; build exit {r['rc']}; load {r['load_avg_1min'][0]:.2f} -> {r['load_avg_1min'][1]:.2f}")
    lines.append("")
    lines.append("the course's claim, as the chapters measured it (same models, same passes):")
    lines.append(f"{'chapter / condition':<32}{'LUT acc10':>10}{'FLOPs acc10':>12}{'LUT rho':>9}{'FLOPs rho':>10}"
                 f"{'noise acc10':>12}  table wins")
    for cond in conditions:
        for chapter, row in results[cond]["claim"].items():
            def fmt(v: Any, spec: str) -> str:
                return format(v, spec) if isinstance(v, (int, float)) else "-"
            lines.append(f"{chapter + ' / ' + cond:<32}{fmt(row['lut_acc10'], '.1%'):>10}"
                         f"{fmt(row['flops_acc10'], '.1%'):>12}{fmt(row['lut_rho'], '.3f'):>9}"
                         f"{fmt(row['flops_rho'], '.3f'):>10}{fmt(row['repeat_acc10'], '.1%'):>12}"
                         f"  {'yes' if row['table_wins'] else 'NO'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS,
                        help="quiet, loaded (one busy process per core), or both (default)")
    parser.add_argument("--chapters", nargs="+", default=None, metavar="NN",
                        help="quick mode: execute only these chapters (by number) from their .py, no book build")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1,
                        help="competing CPU-bound processes in the loaded condition (default: one per core)")
    parser.add_argument("--out", type=Path, default=None,
                        help="text report (JSON beside it); default benchmarks/results/book.txt for the full "
                             "run, nothing for --chapters")
    parser.add_argument("--dry-run", action="store_true", help="print what would run and exit")
    args = parser.parse_args(argv)
    if args.busy < 1:
        parser.error("--busy must be >= 1")
    out = args.out if args.out is not None else (None if args.chapters else OUT_DIR / "book.txt")
    if out is not None:
        check_writable(out, "--out")
    if args.chapters:
        try:
            sources = [chapter_source(p) for p in args.chapters]
        except ValueError as error:
            parser.error(str(error))
        what = f"execute {', '.join(s.name for s in sources)}"
    else:
        what = "tools/build_book.py --fresh --out <scratch>"
    if args.dry_run:
        for cond in args.conditions:
            extra = f" beside {args.busy} busy processes" if cond == "loaded" else ""
            print(f"{cond}: {what}{extra}")
        print(f"report: {out if out is not None else 'printed only'}")
        return 0

    results: dict[str, dict[str, Any]] = {}
    for cond in args.conditions:
        load_start = os.getloadavg()[0]
        with busy(args.busy if cond == "loaded" else 0), tempfile.TemporaryDirectory(prefix="bench_book_") as tmp:
            print(f"{cond}: {what}{f' beside {args.busy} busy processes' if cond == 'loaded' else ''}", flush=True)
            result = execute_chapters(args.chapters) if args.chapters else build_book(Path(tmp))
        result["load_avg_1min"] = [load_start, os.getloadavg()[0]]
        results[cond] = result
    header = (f"hwnas book build ({'chapters ' + ' '.join(args.chapters) if args.chapters else 'whole book, fresh'}),"
              f" {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; loaded = {args.busy} busy processes")
    text = "\n".join([header, *report_lines(results)])
    print(text)
    ok = all(r["rc"] == 0 for r in results.values()) and all(
        row["table_wins"] for r in results.values() for row in r["claim"].values())
    quiet = results.get("quiet")
    if quiet is not None and not args.chapters:
        ok = ok and quiet["wall_s"] < BOOK_LIMIT_S and all(s < CHAPTER_LIMIT_S for s in quiet["chapters_s"].values())
    if out is not None:
        write_text_atomic(out, text + "\n")
        write_text_atomic(out.with_suffix(".json"), json.dumps({
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "cpu_count": os.cpu_count(), "busy": args.busy, "chapter_limit_s": CHAPTER_LIMIT_S,
            "book_limit_s": BOOK_LIMIT_S, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "conditions": results, "pass": ok}, indent=1) + "\n")
        print(f"wrote {out} and {out.with_suffix('.json').name}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
