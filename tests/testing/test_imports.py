"""testing/ sits below commands/ (issue 9): it imports neither commands nor the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

TESTING = Path(__file__).resolve().parents[2] / "src" / "umbau" / "testing"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_testing_imports_no_command_and_no_cli() -> None:
    upward = {f"{path.name}: {module}" for path in sorted(TESTING.glob("*.py"))
              for module in imported_modules(path)
              if module.startswith(("umbau.commands", "umbau.cli"))}
    assert not upward
