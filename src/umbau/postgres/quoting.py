"""SQL identifiers: quoting, and parsing the ``schema.table`` names users type.

One convention for every command that takes a table name (backfill, copy, backup): SQL
identifier syntax, as psql and PostgreSQL itself read it. Unquoted parts fold to lower
case; double-quoted parts keep their case and may hold dots, spaces or ``""`` for a quote
(PostgreSQL docs, "4.1.1. Identifiers and Key Words").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from umbau.errors import UsageError

_UNQUOTED = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (always quoted, ``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"'


def quote_dotted(name: str) -> str:
    """A dotted name from a setting (``app.umbau_history``) as quoted parts, each kept as
    written: ``"app"."umbau_history"``. Unlike :func:`parse_qualified` nothing is folded
    to lower case, so the name means what it meant when the table was created."""
    return ".".join(quote_ident(part) for part in name.split("."))


@dataclass(frozen=True)
class QualifiedName:
    """A table name as PostgreSQL resolves it: ``schema`` is None when not given."""

    schema: str | None
    name: str

    @property
    def sql(self) -> str:
        """The quoted form to put into SQL: ``"schema"."name"`` or ``"name"``."""
        if self.schema is None:
            return quote_ident(self.name)
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    def __str__(self) -> str:
        parts = [self.name] if self.schema is None else [self.schema, self.name]
        return ".".join(p if _UNQUOTED.fullmatch(p) and p == p.lower() else quote_ident(p)
                        for p in parts)


def parse_qualified(text: str, *, what: str = "table") -> QualifiedName:
    """Parse ``table``, ``schema.table`` or their quoted forms (``app."Orders"``).

    Raises :class:`~umbau.errors.UsageError` (one line, with the accepted forms) for
    anything else: more than two parts, an empty part, a stray or unclosed quote.
    """
    parts = _split(text.strip(), what)
    if len(parts) > 2:
        raise UsageError(f"{what} name {text!r} has {len(parts)} parts: use table or "
                         'schema.table (quote a part that holds a dot: "my.table")')
    return QualifiedName(parts[0], parts[1]) if len(parts) == 2 else QualifiedName(None, parts[0])


def _split(text: str, what: str) -> list[str]:
    parts: list[str] = []
    pos = 0
    bad = UsageError(f"{what} name {text!r} is not a valid SQL name: use table, "
                     'schema.table or quoted parts such as app."Orders"')
    while True:
        if text.startswith('"', pos):
            end = pos + 1
            chars: list[str] = []
            while True:
                close = text.find('"', end)
                if close < 0:
                    raise bad
                chars.append(text[end:close])
                if text.startswith('"', close + 1):
                    chars.append('"')
                    end = close + 2
                    continue
                pos = close + 1
                break
            part = "".join(chars)
            if not part:
                raise bad
        else:
            match = _UNQUOTED.match(text, pos)
            if not match:
                raise bad
            part = match.group(0).lower()
            pos = match.end()
        parts.append(part)
        if pos == len(text):
            return parts
        if text[pos] != ".":
            raise bad
        pos += 1
