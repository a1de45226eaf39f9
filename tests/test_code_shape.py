"""The shape the house keeps (docs/ARCHITECTURE.md): no product file over 300 lines, no function
over 60, and heartmula_core never imports ComfyUI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["__init__.py", "heartmula_core", "nodes", "benchmarks"]
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60
HOST_MODULES = ("comfy", "comfy_api", "folder_paths")


def product_files() -> list[Path]:
    files = []
    for entry in PRODUCT:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def function_lengths(path: Path):
    """(name, first line, lines) of every function, decorators and docstring included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            yield node.name, first, node.end_lineno - first + 1


def test_product_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in product_files()}
    assert {"__init__.py", "heartmula_core/__main__.py", "nodes/types.py"} <= names


def test_no_product_file_is_over_300_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in product_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert long == {}, f"split these files (over {MAX_FILE_LINES} lines): {long}"


def test_no_function_is_over_60_lines():
    long = [f"{p.relative_to(ROOT).as_posix()}:{line} {name} ({n} lines)"
            for p in product_files() for name, line, n in function_lengths(p) if n > MAX_FUNCTION_LINES]
    assert long == [], f"split these functions (over {MAX_FUNCTION_LINES} lines): {long}"


@pytest.mark.parametrize("path", sorted((ROOT / "heartmula_core").rglob("*.py")), ids=lambda p: p.name)
def test_the_core_never_imports_the_host(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        assert not [n for n in names if n.split(".")[0] in HOST_MODULES], f"{path} imports {names}"
