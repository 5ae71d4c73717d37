"""Inline ignores: ``# umbau: ignore[rule-id] reason`` (``-- umbau: …`` in SQL files).

An ignore on a line of its own covers the next statement (for Python the whole
statement starting on the next code line, so a comment above a ``with`` block
covers the block); at the end of a line it covers that line's statement.
``ignore-file[rule-id] reason`` covers the whole file. The reason is required:
an ignore without one suppresses nothing and is reported, and so is an ignore
that suppressed nothing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

_IGNORE = re.compile(
    r"(?:#|--)\s*umbau:\s*ignore(?P<file>-file)?\[(?P<ids>[^\]]*)\]\s*(?P<reason>.*)$"
)


@dataclass
class Ignore:
    rules: tuple[str, ...]
    reason: str
    line: int  # where the comment is
    first: int  # the lines it covers
    last: int
    used: bool = False

    def covers(self, rule: str, line: int | None) -> bool:
        if rule not in self.rules:
            return False
        if self.first == 0:  # ignore-file
            return True
        return line is not None and self.first <= line <= self.last


def parse(source: str, kind: str, statement_lines: Sequence[tuple[int, int]] = (),
          tree: ast.Module | None = None) -> list[Ignore]:
    """The ignores in a revision file (``kind="revision"``) or a SQL file (``"file"``)."""
    if "umbau:" not in source:
        return []
    lines = source.splitlines()
    spans = _python_spans(source, tree) if kind == "revision" else {}
    out: list[Ignore] = []
    for number, text in enumerate(lines, start=1):
        found = _IGNORE.search(text)
        if not found or not _is_comment(text, found.start()):
            continue
        rules = tuple(r.strip() for r in found["ids"].split(",") if r.strip())
        reason = found["reason"].strip()
        if found["file"]:
            out.append(Ignore(rules, reason, number, 0, 0))
            continue
        own_line = not text[: found.start()].strip()
        target = _next_code_line(lines, number, kind) if own_line else number
        if kind == "revision" and own_line:
            first, last = target, spans.get(target, target)
        else:  # the innermost statement around the line (a call over several lines)
            around = [(start, end) for start, end in (
                spans.items() if kind == "revision" else statement_lines)
                if start <= target <= end]
            first, last = min(around, key=lambda s: s[1] - s[0], default=(target, target))
        out.append(Ignore(rules, reason, number, first, last))
    return out


def _is_comment(text: str, start: int) -> bool:
    # a crude guard against the pattern inside a string literal on the same line
    before = text[:start]
    return before.count('"') % 2 == 0 and before.count("'") % 2 == 0


def _next_code_line(lines: list[str], number: int, kind: str) -> int:
    marker = "#" if kind == "revision" else "--"
    for later in range(number, len(lines)):
        stripped = lines[later].strip()
        if stripped and not stripped.startswith(marker):
            return later + 1
    return number


def _python_spans(source: str, tree: ast.Module | None) -> dict[int, int]:
    """First line -> last line of every Python statement."""
    if tree is None:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return {}
    spans: dict[int, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            end = node.end_lineno or node.lineno
            spans[node.lineno] = max(spans.get(node.lineno, end), end)
    return spans
