"""Repoint ``from X import name`` to the module that defines ``name`` (a one-off tool for the lead).

Usage (from the repository root)::

    python tools/repoint_imports.py FILE...           # list: file:line: old -> new
    python tools/repoint_imports.py --write FILE...   # rewrite those imports in place

A name imported from a plain module that does not define it (``from hwnas.space import
Architecture``) moves to its defining module (``hwnas.architecture``). Inside ``hwnas/``, a
name imported from a package ``__init__`` (``from ..proxy import ProxyTask``) moves too;
tests, notebooks and benchmarks keep importing from packages, which gather on purpose.
Relative imports stay relative; a trailing ``# noqa`` comment is kept. The definitions are
found statically (def, class, assignment at top level), so nothing is imported.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE_LENGTH = 120


def module_path(module: str) -> tuple[Path | None, bool]:
    """The source file of ``module`` and whether it is a package."""
    base = ROOT.joinpath(*module.split("."))
    if (base / "__init__.py").exists():
        return base / "__init__.py", True
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py"), False
    return None, False


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(importer: str | None, is_package: bool, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    if importer is None:
        return None
    parts = importer.split(".")
    parts = parts[: len(parts) - (node.level - (1 if is_package else 0))]
    return ".".join(parts + ([node.module] if node.module else []))


_scanned: dict[str, tuple[set[str], dict[str, tuple[str | None, str]]]] = {}


def scan(module: str) -> tuple[set[str], dict[str, tuple[str | None, str]]] | None:
    """(names the module defines, {name: (source module, source name)} it imports)."""
    if module in _scanned:
        return _scanned[module]
    path, is_package = module_path(module)
    if path is None:
        return None
    defined: set[str] = set()
    imported: dict[str, tuple[str | None, str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(sub.name)
            elif isinstance(sub, ast.Assign):
                defined.update(t.id for target in sub.targets for t in ast.walk(target) if isinstance(t, ast.Name))
            elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                defined.add(sub.target.id)
            elif isinstance(sub, ast.ImportFrom):
                source = absolute(module, is_package, sub)
                for alias in sub.names:
                    imported[alias.asname or alias.name] = (source, alias.name)
    _scanned[module] = (defined - set(imported), imported)
    return _scanned[module]


def origin(module: str, name: str, depth: int = 0) -> str | None:
    """The module that defines ``name`` as seen from ``module`` (None when unknown)."""
    found = scan(module)
    if found is None or depth > 20:
        return None
    defined, imported = found
    if name in defined:
        return module
    if name in imported:
        source, source_name = imported[name]
        return origin(source, source_name, depth + 1) if source and source.startswith("hwnas") else source
    return None


def _kind(name: str) -> tuple[int, str]:
    """isort's order by type: CONSTANTS, Classes, functions."""
    base = name.split(" as ")[0]
    return (0 if base.isupper() else 1 if base[:1].isupper() else 2, base)


def render(indent: str, module: str, names: list[str], comment: str) -> list[str]:
    names = sorted(set(names), key=_kind)
    one = f"{indent}from {module} import {', '.join(names)}{comment}"
    if len(one) <= LINE_LENGTH:
        return [one]
    return [f"{indent}from {module} import ({comment}", *[f"{indent}    {n}," for n in names], f"{indent})"]


def relative(importer: str, is_package: bool, target: str) -> str:
    mine = importer.split(".")[: None if is_package else -1]
    theirs = target.split(".")
    common = 0
    while common < min(len(mine), len(theirs)) and mine[common] == theirs[common]:
        common += 1
    return "." * (len(mine) - common + 1) + ".".join(theirs[common:])


def edits(path: Path) -> list[tuple[int, int, list[str]]]:
    """(first line, last line, replacement lines) for each import to repoint in ``path``."""
    rel = path.relative_to(ROOT)
    in_package = rel.parts[0] == "hwnas"
    is_package = path.name == "__init__.py"
    importer = module_name(path) if in_package else None
    lines = path.read_text(encoding="utf-8").split("\n")
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = absolute(importer, is_package, node)
        if not source or not source.startswith("hwnas") or module_path(source)[0] is None:
            continue
        source_is_package = module_path(source)[1]
        moves = not source_is_package or (in_package and not (is_package and source.startswith(f"{importer}.")))
        groups: dict[str, list[str]] = {}
        moved = False
        for alias in node.names:
            target = source
            if alias.name != "*" and module_path(f"{source}.{alias.name}")[0] is None and moves:
                defining = origin(source, alias.name)
                if defining and defining != source and defining.startswith("hwnas"):
                    target, moved = defining, True
            groups.setdefault(target, []).append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
        if not moved:
            continue
        first = lines[node.lineno - 1]
        indent = re.match(r"\s*", first).group(0)
        noqa = re.search(r"\s*#\s*noqa.*$", first)
        comment = f"  {noqa.group(0).strip()}" if noqa else ""
        new: list[str] = []
        for target in sorted(groups):
            text = relative(importer, is_package, target) if (importer and node.level) else target
            new += render(indent, text, groups[target], comment)
        found.append((node.lineno, node.end_lineno or node.lineno, new))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite the files (default: list the edits)")
    args = parser.parse_args(argv)
    for file in args.files:
        path = file.resolve()
        lines = path.read_text(encoding="utf-8").split("\n")
        changes = edits(path)
        for start, end, new in changes:
            old = " ".join(line.strip() for line in lines[start - 1:end])
            print(f"{path.relative_to(ROOT)}:{start}: {old}  ->  {' | '.join(n.strip() for n in new)}")
        if args.write and changes:
            for start, end, new in sorted(changes, reverse=True):
                lines[start - 1:end] = new
            path.write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
