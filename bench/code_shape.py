"""The shape of the package's code: module sizes, function sizes, imports inside functions.

    .venv/bin/python bench/code_shape.py [--top 15] [--heavy]

Prints the modules over 500 lines, the longest functions (lines from ``def``
to the last line of the body, decorators excluded) and the count of
``import`` statements inside functions (outside ``if TYPE_CHECKING:``).
With ``--heavy`` each in-function import of a Sluice module is also sorted
into "heavy" (importing the module loads one of :data:`HEAVY` that
``import sluice`` does not) or "light", by importing each module in a fresh
interpreter: a light one could sit at module level without slowing
``import sluice``, unless it would make an import cycle.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sluice"

#: third-party packages whose import costs tens of milliseconds or more
HEAVY = (
    "alembic",
    "cloudpickle",
    "dask",
    "distributed",
    "fastapi",
    "httpx",
    "jinja2",
    "msgspec",
    "psycopg",
    "pydantic",
    "rich",
    "sqlalchemy",
    "starlette",
    "typer",
    "uvicorn",
    "yaml",
)


def modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every module of the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def function_imports(tree: ast.Module, module: str) -> list[str]:
    """The modules imported by statements inside functions of ``tree`` (absolute names)."""
    targets: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if in_function and isinstance(child, ast.Import):
                targets.extend(alias.name for alias in child.names)
            elif in_function and isinstance(child, ast.ImportFrom):
                targets.append(_absolute(child, module))
            visit(child, inner)

    visit(tree, False)
    return targets


def _absolute(node: ast.ImportFrom, module: str) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")[: -node.level] if node.level else []
    return ".".join([*base, node.module] if node.module else base)


def function_sizes(tree: ast.Module, module: str) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function of ``tree``."""
    sizes: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                end = child.end_lineno or child.lineno
                sizes.append((end - child.lineno + 1, f"{module}:{prefix}{child.name}"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return sizes


def loads_heavy(module: str) -> list[str]:
    """The heavy packages importing ``module`` loads beyond ``import sluice``."""
    script = (
        "import sys, sluice\n"
        f"heavy = {HEAVY!r}\n"
        "before = {m.split('.')[0] for m in sys.modules}\n"
        f"import {module}\n"
        "after = {m.split('.')[0] for m in sys.modules}\n"
        "print(','.join(sorted(h for h in heavy if h in after - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if out.returncode:
        return ["<fails to import>"]
    return [name for name in out.stdout.strip().split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="how many longest functions")
    parser.add_argument("--heavy", action="store_true", help="sort imports into heavy/light")
    args = parser.parse_args()
    sizes: list[tuple[int, str]] = []
    imports: list[tuple[str, str]] = []
    total_lines = 0
    big = []
    found = modules()
    for name, path in found:
        text = path.read_text()
        lines = text.count("\n")
        total_lines += lines
        if lines > 500:
            big.append((lines, name))
        tree = ast.parse(text)
        sizes.extend(function_sizes(tree, name))
        imports.extend((name, target) for target in function_imports(tree, name))
    print(f"{len(found)} modules, {total_lines} lines, {len(sizes)} functions")
    print(f"modules over 500 lines: {len(big)}")
    for lines, name in sorted(big, reverse=True):
        print(f"  {lines:5d}  {name}")
    over = [s for s in sizes if s[0] > 60]
    print(f"functions over 60 lines: {len(over)}; longest {args.top}:")
    for lines, name in sorted(sizes, reverse=True)[: args.top]:
        print(f"  {lines:5d}  {name}")
    print(f"imports inside functions: {len(imports)}")
    internal = [(m, t) for m, t in imports if t.split(".")[0] == "sluice"]
    third = Counter(t.split(".")[0] for m, t in imports if t.split(".")[0] != "sluice")
    print(f"  of Sluice modules: {len(internal)}; of others: {sum(third.values())}")
    print("  others: " + ", ".join(f"{k} {v}" for k, v in third.most_common()))
    if args.heavy:
        verdict = {t: loads_heavy(t) for t in sorted({t for _, t in internal})}
        light = [(m, t) for m, t in internal if not verdict[t]]
        print(f"  Sluice modules that load nothing heavy: {len(light)} imports")
        by_module = Counter(m for m, _ in light)
        for module, count in by_module.most_common():
            print(f"    {count:3d}  {module}")


if __name__ == "__main__":
    main()
