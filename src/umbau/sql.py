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
    start: int = 0  # character offset of the statement in the SQL it was split from


def split(sql: str) -> list[Statement]:
    """Split and parse; a statement that does not parse keeps its text and the error.

    The common case (everything parses) costs one parser call for the whole text.
    """
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return _split_slowly(sql)
    out = []
    for raw in parsed:  # locations are character offsets
        location = raw.stmt_location or 0
        end = location + raw.stmt_len if raw.stmt_len else len(sql)
        start = _skip_comments(sql, location)
        out.append(Statement(sql[start:end].strip(), raw.stmt, None, start))
    return out


def _split_slowly(sql: str) -> list[Statement]:
    """Split at top-level semicolons with the scanner, then parse piece by piece."""
    try:
        tokens = pglast.parser.scan(sql)
    except pglast.parser.ParseError as exc:
        return [Statement(sql.strip(), None, str(exc), _skip_comments(sql, 0))]
    bounds, begin = [], 0
    for token in tokens:
        if token.name == "ASCII_59":
            bounds.append((begin, token.start))
            begin = token.end + 1
    bounds.append((begin, len(sql)))
    out: list[Statement] = []
    for first, last in bounds:
        offset = _skip_comments(sql, first)
        piece = sql[offset:last].strip()
        if not piece:
            continue
        try:
            parsed = pglast.parse_sql(piece)
        except pglast.parser.ParseError as exc:
            out.append(Statement(piece, None, str(exc), offset))
            continue
        out.extend(Statement(piece, raw.stmt, None, offset) for raw in parsed)
    return out


def _skip_comments(sql: str, pos: int) -> int:
    """The offset of the first character after whitespace and ``--`` comments."""
    while True:
        while pos < len(sql) and sql[pos].isspace():
            pos += 1
        if sql.startswith("--", pos):
            newline = sql.find("\n", pos)
            pos = len(sql) if newline < 0 else newline + 1
            continue
        return pos


def deparse(node: Any) -> str:
    """SQL text of a parse tree node (an expression or a statement)."""
    from pglast.stream import RawStream

    return str(RawStream()(node))


def _name(parts: Any) -> str:
    return ".".join(str(p.sval) for p in parts if isinstance(p, ast.String))


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


def rewritten_objects(sql: str) -> list[str]:
    """What the SQL rewrites in place (a transaction undoes it, a later revision cannot):
    ALTER COLUMN … TYPE, UPDATE, and DELETE with a WHERE clause."""
    rewritten: list[str] = []
    for stmt in split(sql):
        node = stmt.node
        if isinstance(node, ast.AlterTableStmt):
            for cmd in node.cmds or ():
                if cmd.subtype == enums.AlterTableType.AT_AlterColumnType:
                    rewritten.append(f"alter column type {_relname(node.relation)}.{cmd.name}")
        elif isinstance(node, ast.UpdateStmt):
            rewritten.append(f"update {_relname(node.relation)}")
        elif isinstance(node, ast.DeleteStmt) and node.whereClause is not None:
            rewritten.append(f"delete from {_relname(node.relation)}")
    return rewritten


def identifiers(text: str) -> list[str]:
    """The identifiers of a statement as written, before the parser truncates them to
    63 bytes (quoted ones unquoted, unquoted ones folded to lower case)."""
    try:
        tokens = pglast.parser.scan(text)
    except pglast.parser.ParseError:
        return []
    out = []
    for token in tokens:
        if token.name == "IDENT":
            raw = text[token.start:token.end + 1]
            out.append(raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower())
    return out


def version_stamps(node: Any) -> set[str]:
    """The revision ids an Alembic version-table statement writes (``INSERT … VALUES
    ('r1')``, ``UPDATE … SET version_num='r2' WHERE …``): the values, not the WHERE."""
    if isinstance(node, ast.UpdateStmt):
        parts: Any = node.targetList
    elif isinstance(node, ast.InsertStmt):
        parts = node.selectStmt
    else:
        return set()
    return {str(value) for value in _string_constants(parts)}


def _string_constants(node: Any) -> list[str]:
    if isinstance(node, tuple | list):
        return [v for item in node for v in _string_constants(item)]
    if not isinstance(node, ast.Node):
        return []
    if isinstance(node, ast.A_Const) and isinstance(getattr(node, "val", None), ast.String):
        return [str(getattr(node.val, "sval", ""))]
    found: list[str] = []
    for name in type(node).__slots__:  # type: ignore[attr-defined]  # pglast sets them per class
        found.extend(_string_constants(getattr(node, name, None)))
    return found
