"""The dependency rule of design.md §2: edxml is pure — no gateway, Twisted, SQLite or network."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

EDXML = Path(__file__).parents[1] / "edxml"
FORBIDDEN_IMPORTS = {
    "gateway",
    "twisted",
    "treq",
    "sqlite3",
    "sqlite_utils",
    "socket",
    "http",
    "urllib",
    "requests",
    "subprocess",
    "asyncio",
}
# Reading our own XSD files is the library's one file access (edxml/schema.py).
FILE_ACCESS_ALLOWED = {"schema.py"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _calls_open(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                return True
            # zipfile.ZipFile.open on bytes in memory is not file access; Path methods are.
            if isinstance(func, ast.Attribute) and func.attr in {
                "read_bytes",
                "read_text",
                "write_bytes",
                "write_text",
            }:
                return True
    return False


class LayeringTests(SynchronousTestCase):
    def test_edxml_imports_nothing_impure(self) -> None:
        modules = sorted(EDXML.glob("*.py"))
        self.assertGreater(len(modules), 10)
        for path in modules:
            bad = _imports(ast.parse(path.read_text())) & FORBIDDEN_IMPORTS
            self.assertEqual(bad, set(), f"{path.name} imports {bad}")

    def test_edxml_opens_no_files_but_its_schemas(self) -> None:
        for path in sorted(EDXML.glob("*.py")):
            if path.name not in FILE_ACCESS_ALLOWED:
                self.assertFalse(_calls_open(ast.parse(path.read_text())), path.name)
