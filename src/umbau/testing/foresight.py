"""Constraints that later revisions add, read ahead, so that generated rows meet them.

A foreign key added to an existing column (``op.create_foreign_key``, or ``ALTER TABLE
… ADD [CONSTRAINT …] FOREIGN KEY (…) REFERENCES …`` in SQL, including the NOT VALID +
VALIDATE CONSTRAINT rewrite umbau's lint recommends) fails on generated keys that point
nowhere. Read from the revision files before the run, the generator draws such a
column's values from the referenced table instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from umbau import alembic_bridge as bridge

Link = tuple[str, str]  # (table display name, column)

_NAME = r'(?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?'
_SQL_FK = re.compile(
    rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({_NAME})\s+ADD\s+"
    rf"(?:CONSTRAINT\s+(?:\"[^\"]+\"|\w+)\s+)?FOREIGN\s+KEY\s*\(\s*(\"[^\"]+\"|\w+)\s*\)\s*"
    rf"REFERENCES\s+({_NAME})\s*\(\s*(\"[^\"]+\"|\w+)\s*\)", re.IGNORECASE)


def later_foreign_keys(project: bridge.Project) -> dict[Link, Link]:
    """(table, column) -> (referenced table, column) of single-column foreign keys the
    revision files add; display names (``public`` left out)."""
    found: dict[Link, Link] = {}
    for info in project.revisions():
        try:
            source = Path(info.path).read_text(encoding="utf-8")
        except OSError:
            continue
        for table, column, ref, ref_column in _SQL_FK.findall(source):
            found[(_display(table), _unquote(column))] = (_display(ref), _unquote(ref_column))
        found.update(_from_ops(source))
    return found


def _from_ops(source: str) -> dict[Link, Link]:
    """``op.create_foreign_key(name, source, referent, [col], [ref_col])`` with literals."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[Link, Link] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "create_foreign_key" and len(node.args) >= 5:
            source_table, referent, local, remote = (_literal(a) for a in node.args[1:5])
            if isinstance(source_table, str) and isinstance(referent, str) \
                    and isinstance(local, list | tuple) and len(local) == 1 \
                    and isinstance(remote, list | tuple) and len(remote) == 1:
                found[(source_table, str(local[0]))] = (referent, str(remote[0]))
    return found


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _display(name: str) -> str:
    parts = [_unquote(p) for p in re.findall(r'"[^"]+"|\w+', name)]
    return parts[-1] if len(parts) == 1 or parts[0] == "public" else ".".join(parts)
