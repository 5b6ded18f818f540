"""How big the package's modules and functions are, in lines of code.

Size comes from code, not from docstrings: a line counts when it holds a token of code, so
blank lines, comments and docstrings (of modules, classes and functions) do not. Run it to
see the biggest: ``python tests/shape.py``.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "concursus_lab"

#: The limits the layer contract holds the package to.
MODULE_LINES = 400
FUNCTION_LINES = 80

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


@dataclass(frozen=True)
class Size:
    path: str  # relative to the repository
    name: str  # "" for the module itself, else the function's qualified name
    lines: int


def code_lines(source: str) -> set[int]:
    """Line numbers that hold code (docstrings and comments excluded)."""
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _NOT_CODE:
            continue
        for line in range(token.start[0], token.end[0] + 1):
            if line not in docstrings:
                lines.add(line)
    return lines


def sizes(package: Path = PACKAGE) -> list[Size]:
    """Every module's size, and every function's (methods and nested functions too)."""
    out: list[Size] = []
    root = package.parent
    for path in sorted(package.rglob("*.py")):
        source = path.read_text()
        lines = code_lines(source)
        relative = str(path.relative_to(root))
        out.append(Size(relative, "", len(lines)))
        tree = ast.parse(source)
        for name, node in _functions(tree, ""):
            span = range(node.lineno, node.end_lineno + 1)
            out.append(Size(relative, name, sum(1 for line in span if line in lines)))
    return out


def _functions(node: ast.AST, prefix: str):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{child.name}"
            yield name, child
            yield from _functions(child, f"{name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")


def main() -> int:
    found = sizes()
    modules = sorted((s for s in found if not s.name), key=lambda s: -s.lines)
    functions = sorted((s for s in found if s.name), key=lambda s: -s.lines)
    print(f"{len(modules)} modules; the largest (limit {MODULE_LINES} lines of code):")
    for s in modules[:15]:
        print(f"  {s.lines:5d}  {s.path}")
    print(f"the longest functions (limit {FUNCTION_LINES}):")
    for s in functions[:15]:
        print(f"  {s.lines:5d}  {s.path}::{s.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
