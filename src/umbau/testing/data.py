"""Generated rows, by reflection: every table gets rows that respect its types,
NOT NULL, unique keys, simple CHECKs and foreign keys.

Values come from one counter, so unique and primary keys do not collide; a
foreign key takes a key that exists in the referenced table, which is filled
first. Rows that still violate a constraint (a CHECK the generator cannot
read) are skipped inside a savepoint and reported as a note, never as a
failure of the migration under test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.postgres.snapshot import ColumnShape, ForeignKey, TableShape, quote_ident

_LENGTH = re.compile(r"\((\d+)(?:,\s*(\d+))?\)")
_LITERAL = re.compile(r"'((?:[^']|'')*)'::")
_EPOCH_DATE = date(2024, 1, 1)
_EPOCH = datetime(2024, 1, 1, 12, 0, 0)


@dataclass
class RowGenerator:
    """Inserts generated rows; ``notes`` says which tables or rows it had to skip."""

    rows_per_table: int = 3
    counter: int = 100_000  # clear of the small keys hand-written test rows use
    notes: dict[str, str] = field(default_factory=dict)
    # Distinctive generated values -> (table, column), to name the value an error quotes.
    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (table, column) -> (table, column) of foreign keys later revisions add.
    later_keys: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def fill(self, conn: Connection, tables: Mapping[str, TableShape],
             which: Iterable[str]) -> dict[str, int]:
        """Insert rows into the tables named in ``which`` (parents first); returns the
        number of rows inserted per table."""
        inserted: dict[str, int] = {}
        later: dict[str, set[str]] = {}
        for (table, _), (ref, _) in self.later_keys.items():
            later.setdefault(table, set()).add(ref)
        for key in _parents_first(tables, set(which), later):
            inserted[key] = self._fill_table(conn, tables, tables[key])
        return inserted

    def _fill_table(self, conn: Connection, tables: Mapping[str, TableShape],
                    table: TableShape) -> int:
        columns = [c for c in table.columns if not c.filled_by_server]
        references = {fk.name: _referenced_keys(conn, tables, fk) for fk in table.foreign_keys}
        references.update(self._later_references(conn, tables, table))
        done = 0
        for _ in range(self.rows_per_table):
            self.counter += 1
            try:
                values = self._row(table, columns, references)
            except _CannotGenerate as reason:
                self.notes[table.key] = str(reason)
                return done
            names = list(values)
            if names:
                cols = ", ".join(quote_ident(n) for n in names)
                params = ", ".join(f"CAST(:p{i} AS {_type_of(table, n)})"
                                   for i, n in enumerate(names))
                sql = f"INSERT INTO {table.qualified} ({cols}) VALUES ({params})"
            else:
                sql = f"INSERT INTO {table.qualified} DEFAULT VALUES"
            args = {f"p{i}": values[n] for i, n in enumerate(names)}
            try:
                with conn.begin_nested():
                    conn.execute(text(sql), args)
                done += 1
                self._remember(table.key, values)
            except sa_exc.DBAPIError as exc:
                orig = getattr(exc, "orig", exc)
                self.notes[table.key] = f"a generated row was refused: {str(orig).splitlines()[0]}"
        return done

    def _later_references(self, conn: Connection, tables: Mapping[str, TableShape],
                          table: TableShape) -> dict[str, list[tuple[Any, ...]]]:
        """Keys for columns a later revision turns into a foreign key, keyed by
        ``later:<column>``, from referenced tables that exist and have the column."""
        found: dict[str, list[tuple[Any, ...]]] = {}
        constrained = {c for fk in table.foreign_keys for c in fk.columns}
        for column in table.columns:
            ref = self.later_keys.get((table.key, column.name))
            if ref is None or column.name in constrained or ref[0] not in tables \
                    or all(c.name != ref[1] for c in tables[ref[0]].columns):
                continue
            fk = ForeignKey(f"later:{column.name}", (column.name,), ref[0], (ref[1],))
            found[fk.name] = _referenced_keys(conn, tables, fk)
        return found

    def _remember(self, table: str, values: Mapping[str, str | None]) -> None:
        for column, value in values.items():
            if value is not None and len(value) >= 5 and value not in {"true", "false"}:
                self.values[value] = (table, column)

    def culprit(self, message: str) -> tuple[str, str, str] | None:
        """(table, column, value) of the longest generated value that ``message`` quotes
        as a whole word, or None: which generated value an error is about."""
        found = [v for v in self.values if v in message
                 and re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", message)]
        if not found:
            return None
        value = max(found, key=len)
        return (*self.values[value], value)

    def _row(self, table: TableShape, columns: list[ColumnShape],
             references: Mapping[str, list[tuple[Any, ...]]]) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for fk in table.foreign_keys:
            keys = references[fk.name]
            nullable = all(_column(table, c).nullable for c in fk.columns)
            if not keys:
                if nullable:
                    values.update(dict.fromkeys(fk.columns))
                    continue
                raise _CannotGenerate(f"the referenced table {fk.ref_table} has no rows")
            chosen = keys[self.counter % len(keys)]
            values.update({c: None if v is None else str(v) for c, v in zip(fk.columns, chosen,
                                                                          strict=False)})
        for column in columns:
            later = references.get(f"later:{column.name}")
            if column.name not in values and later:
                values[column.name] = str(later[self.counter % len(later)][0])
            elif column.name not in values:
                values[column.name] = self._value(table, column)
        return values

    def _value(self, table: TableShape, column: ColumnShape) -> str | None:
        allowed = _check_literals(table, column.name)
        if allowed:
            return allowed[self.counter % len(allowed)]
        value = generate_value(column, self.counter)
        if value is None and not column.nullable:
            raise _CannotGenerate(f"no generator for column {column.name} of type {column.type}")
        return value


class _CannotGenerate(Exception):
    pass


def generate_value(column: ColumnShape, n: int) -> str | None:
    """A text literal for ``column`` that casts to its type, distinct for each ``n``."""
    type_ = column.type
    base = type_.removesuffix("[]")
    if type_.endswith("[]"):
        return "{}"
    if column.category == "E" and column.enum_labels:
        return column.enum_labels[n % len(column.enum_labels)]
    if column.category == "N":
        return _number(base, n)
    if column.category == "S":
        match = _LENGTH.search(base)
        word = f"{column.name[:8]}-{n}"
        return word[-int(match.group(1)):] if match else word
    if column.category == "B":
        return "true" if n % 2 else "false"
    if column.category == "D":
        return _datetime(base, n)
    if column.category == "T":
        return f"{n} seconds"
    if column.category == "I":
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return _other(base, n)


def _number(type_: str, n: int) -> str:
    if type_ == "smallint":
        return str(n % 32000)
    if type_.startswith("numeric"):
        match = _LENGTH.search(type_)
        if match:
            precision, scale = int(match.group(1)), int(match.group(2) or 0)
            whole = 10 ** max(precision - scale, 0)
            return str(n % whole if whole > 1 else 0)
        return str(n)
    if type_ in {"real", "double precision"}:
        return f"0.{n % 100:02d}"  # floats are mostly ratios and scores: stay in [0, 1)
    if type_ == "money":
        return f"{n}.00"
    return str(n)  # integer, bigint, oid and friends


def _datetime(type_: str, n: int) -> str:
    if type_ == "date":
        return (_EPOCH_DATE + timedelta(days=n)).isoformat()
    moment = _EPOCH + timedelta(seconds=n)
    if type_.startswith("time with") or type_.startswith("time without") or type_ == "time":
        return moment.time().isoformat()
    suffix = "+00" if "with time zone" in type_ else ""
    return moment.isoformat(sep=" ") + suffix


def _other(type_: str, n: int) -> str | None:
    if type_ == "uuid":
        return str(uuid.UUID(int=n))
    if type_ in {"json", "jsonb"}:
        return f'{{"n": {n}}}'
    if type_ == "bytea":
        return "\\x" + format(n % 256, "02x")
    if type_ == "tsvector":
        return f"w{n}"
    if type_.startswith("bit"):
        return "1"
    return None


def _column(table: TableShape, name: str) -> ColumnShape:
    return next(c for c in table.columns if c.name == name)


def _type_of(table: TableShape, name: str) -> str:
    return _column(table, name).type


def _check_literals(table: TableShape, column: str) -> list[str]:
    """String literals of a CHECK on this one column (``status IN ('a', 'b')``)."""
    for cols, definition in table.checks:
        if cols == (column,):
            found = [m.replace("''", "'") for m in _LITERAL.findall(definition)]
            if found:
                return found
    return []


def _referenced_keys(conn: Connection, tables: Mapping[str, TableShape],
                     fk: Any) -> list[tuple[Any, ...]]:
    ref = tables.get(fk.ref_table)
    if ref is None or not fk.ref_columns:
        return []
    cols = ", ".join(quote_ident(c) for c in fk.ref_columns)
    rows = conn.execute(text(f"SELECT {cols} FROM {ref.qualified} ORDER BY 1 LIMIT 50"))
    return [tuple(r) for r in rows]


def _parents_first(tables: Mapping[str, TableShape], which: set[str],
                   later: Mapping[str, set[str]]) -> list[str]:
    """Tables in ``which``, each after the tables its foreign keys reference (now, or
    ``later``: table -> tables a later revision makes it reference)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(key: str, path: set[str]) -> None:
        if key in seen or key in path or key not in tables:
            return
        path.add(key)
        parents = {fk.ref_table for fk in tables[key].foreign_keys} | later.get(key, set())
        for parent in sorted(parents & which):
            visit(parent, path)
        path.discard(key)
        seen.add(key)
        if key in which:
            order.append(key)

    for key in sorted(which):
        visit(key, set())
    return order


def table_fingerprints(conn: Connection, tables: Mapping[str, TableShape]) -> dict[str, str]:
    """``"<rows>:<md5 of the sorted rows>"`` per table, in one query."""
    keys = sorted(tables)
    if not keys:
        return {}
    parts = [
        f"SELECT {i} AS i, (SELECT count(*)::text || ':' || "
        f"md5(coalesce(string_agg(umbau_row_::text, E'\\n' ORDER BY umbau_row_::text), '')) "
        f"FROM {tables[k].qualified} umbau_row_) AS f"
        for i, k in enumerate(keys)
    ]
    rows = conn.execute(text(" UNION ALL ".join(parts)))
    return {keys[i]: fingerprint for i, fingerprint in rows}


def row_count(fingerprint: str | None) -> int:
    return int(fingerprint.split(":", 1)[0]) if fingerprint else 0
