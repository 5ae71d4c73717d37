"""The one module that imports PostgreSQL's own parser (pglast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast, enums


@dataclass(frozen=True)
class Statement:
    """One SQL statement: its text and its parse tree (None when it does not parse)."""

    text: str
    node: Any | None
    error: str | None = None


def split(sql: str) -> list[Statement]:
    """Split and parse; a statement that does not parse keeps its text and the error."""
    try:
        pieces = pglast.split(sql, with_parser=False)
    except pglast.parser.ParseError as exc:
        return [Statement(sql, None, str(exc))]
    out: list[Statement] = []
    for piece in pieces:
        try:
            parsed = pglast.parse_sql(piece)
        except pglast.parser.ParseError as exc:
            out.append(Statement(piece, None, str(exc)))
            continue
        out.extend(Statement(piece, raw.stmt) for raw in parsed)
    return out


def _name(parts: Any) -> str:
    return ".".join(p.sval for p in parts if isinstance(p, ast.String))


def _relname(rel: Any) -> str:
    return f"{rel.schemaname}.{rel.relname}" if rel.schemaname else rel.relname


def destructive_objects(sql: str) -> tuple[list[str], list[str]]:
    """(what the SQL drops or empties, statements that could not be parsed).

    Counted: DROP TABLE, ALTER TABLE … DROP COLUMN, TRUNCATE, DROP SCHEMA, and
    DELETE without WHERE.
    """
    dropped: list[str] = []
    unparsed: list[str] = []
    for stmt in split(sql):
        node = stmt.node
        if node is None:
            unparsed.append(stmt.text.strip()[:200])
        elif isinstance(node, ast.DropStmt) and node.removeType in (
            enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_SCHEMA,
            enums.ObjectType.OBJECT_MATVIEW,
        ):
            kind = {enums.ObjectType.OBJECT_TABLE: "table",
                    enums.ObjectType.OBJECT_SCHEMA: "schema"}.get(node.removeType, "view")
            for obj in node.objects or ():
                name = _name(obj) if isinstance(obj, tuple | list) else getattr(obj, "sval", "?")
                dropped.append(f"drop {kind} {name}")
        elif isinstance(node, ast.AlterTableStmt):
            for cmd in node.cmds or ():
                if cmd.subtype == enums.AlterTableType.AT_DropColumn:
                    dropped.append(f"drop column {_relname(node.relation)}.{cmd.name}")
        elif isinstance(node, ast.TruncateStmt):
            dropped.extend(f"truncate {_relname(r)}" for r in node.relations or ())
        elif isinstance(node, ast.DeleteStmt) and node.whereClause is None:
            dropped.append(f"delete all rows of {_relname(node.relation)}")
    return dropped, unparsed
