"""One batch: a short transaction that changes the rows of one key range and advances
the chunk's checkpoint past them.

Why every row changes exactly once:

* the chunk row is locked (``FOR UPDATE``) and its owner checked first, so no other
  worker runs a batch of the same chunk at the same time, and a worker whose chunk
  was taken over stops;
* the range is fixed by keyset before anything changes: ``key > checkpoint AND key <=
  upper``, where ``upper`` is the key ``size`` rows further on. Rows inserted, deleted
  or updated meanwhile never shift the range, unlike ``LIMIT … OFFSET`` over a filter
  that the batch itself changes;
* the change and the new checkpoint commit together, or (error, kill -9, lost
  connection) neither does.

Why no concurrent update is lost: the SQL change is one UPDATE, whose row locks
serialize with the application's writes (PostgreSQL re-reads a row that changed
while it waited). A Python transform reads its rows ``FOR UPDATE``, so nobody can
change them between the read and the write-back, which is one ``UPDATE … FROM
unnest(…)`` statement for the whole batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json, Jsonb

from umbau.backfill.api import Backfill, Row
from umbau.backfill.table import TableInfo, user_sql
from umbau.errors import BackfillError, UsageError
from umbau.postgres.driver import Fault, fault, translate
from umbau.postgres.errors import describe_error

_JSON_TYPES = {"json", "jsonb"}


@dataclass(frozen=True)
class Batch:
    """What one batch did. ``outcome``: ``ok``, ``lost`` (the chunk is no longer
    ours), ``stopped`` (the backfill is no longer running)."""

    outcome: str
    rows: int = 0
    scanned: int = 0
    chunk_done: bool = False
    duration: float = 0.0
    key_range: str = ""


class BatchError(Exception):
    """A batch failed and was rolled back; carries the key range and, for a database
    error, what kind of fault it was (None: the transform's own error)."""

    def __init__(self, cause: BaseException, key_range: str, kind: Fault | None = None) -> None:
        super().__init__(describe_error(cause))
        self.cause = cause
        self.key_range = key_range
        self.kind = kind


def describe_range(after: Sequence[str] | None, upto: Sequence[str] | None) -> str:
    low = "-inf" if after is None else ", ".join(after)
    high = "+inf" if upto is None else ", ".join(upto)
    return f"({low} .. {high}]"


class Changer:
    """The SQL of one backfill on one table, and how to apply it to a key range."""

    def __init__(self, backfill: Backfill, table: TableInfo) -> None:
        self.backfill = backfill
        self.table = table
        self.where = user_sql(backfill.where) if backfill.where else sql.SQL("TRUE")
        columns = list(backfill.columns) if backfill.columns else list(table.types)
        unknown = [c for c in [*columns, *(backfill.set or {})] if c not in table.types]
        if unknown:
            raise UsageError(f"{table.name} has no column {', '.join(unknown)}: fix the backfill "
                             f"{backfill.name}")
        self.columns = [c for c in columns if c not in table.key]

    def upper_bound(self, conn: psycopg.Connection, after: Sequence[str] | None,
                    upto: Sequence[str] | None, size: int) -> list[str] | None:
        """The key ``size`` rows after ``after`` (within ``upto``), None if fewer remain.

        Keyset, no OFFSET: the next ``size`` keys from the index, then the last of them.
        """
        cond, params = self.table.range_condition(after, upto)
        desc = sql.SQL(", ").join(sql.SQL("{} DESC").format(sql.Identifier(k))
                                  for k in self.table.key)
        query = sql.SQL(
            "SELECT {}, count(*) OVER () FROM (SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {})"
            " AS page ORDER BY {} LIMIT 1").format(
            self.table.key_text(), self.table.key_cols(), self.table.ident, cond,
            self.table.key_cols(), sql.Literal(size), desc)
        row = conn.execute(query, params).fetchone()
        if row is None or row[-1] < size:
            return None
        return list(row[:-1])

    def check(self, conn: psycopg.Connection) -> None:
        """Plan (EXPLAIN, nothing runs) the change, ``where`` and ``verify`` once, so that
        a typo refuses before any row changes instead of failing the first batch or,
        for ``verify``, the very end."""
        backfill = self.backfill
        if backfill.set is not None:
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(col), user_sql(expr))
                for col, expr in backfill.set.items())
            change = sql.SQL("EXPLAIN UPDATE {} SET {} WHERE {}").format(
                self.table.ident, assignments, self.where)
        else:
            change = sql.SQL("EXPLAIN SELECT {} FROM {} WHERE {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in [*self.table.key, *self.columns]),
                self.table.ident, self.where)
        checks = [("set= or where=" if backfill.set is not None else "where=", change)]
        if backfill.verify:
            checks.append(("verify=", sql.SQL("EXPLAIN SELECT 1 FROM {} WHERE {}").format(
                self.table.ident, user_sql(backfill.verify))))
        for what, query in checks:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(query, [])  # a list: see table.user_sql
            except psycopg.Error as exc:
                kind = fault(exc, conn)
                if kind is Fault.LOST:
                    raise translate(exc, f"backfill {backfill.name}", conn) from exc
                reason = describe_error(exc)
                if kind is Fault.INVALID:
                    raise UsageError(f"backfill {backfill.name}: {what} is not valid SQL on "
                                     f"{self.table.name} ({reason}): fix the definition") from exc
                raise BackfillError(f"backfill {backfill.name}: could not check its SQL on "
                                    f"{self.table.name} ({reason}): rerun") from exc

    def apply(self, conn: psycopg.Connection, after: Sequence[str] | None,
              upto: Sequence[str] | None) -> tuple[int, int]:
        """Change the rows in (after, upto]; returns (rows changed, rows looked at)."""
        if self.backfill.set is not None:
            return self._apply_sql(conn, after, upto)
        return self._apply_python(conn, after, upto)

    def _apply_sql(self, conn: psycopg.Connection, after: Sequence[str] | None,
                   upto: Sequence[str] | None) -> tuple[int, int]:
        assert self.backfill.set is not None
        cond, params = self.table.range_condition(after, upto)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(col), user_sql(expr))
            for col, expr in self.backfill.set.items())
        query = sql.SQL("UPDATE {} SET {} WHERE {} AND {}").format(
            self.table.ident, assignments, cond, self.where)
        rows = conn.execute(query, params).rowcount
        return rows, rows

    def _apply_python(self, conn: psycopg.Connection, after: Sequence[str] | None,
                      upto: Sequence[str] | None) -> tuple[int, int]:
        assert self.backfill.transform is not None
        cond, params = self.table.range_condition(after, upto)
        wanted = [*self.table.key, *self.columns]
        query = sql.SQL("SELECT {} FROM {} WHERE {} AND {} ORDER BY {} FOR UPDATE").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in wanted), self.table.ident, cond,
            self.where, self.table.key_cols())
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows: list[Row] = [dict(zip(wanted, r, strict=True)) for r in cur.fetchall()]
        if not rows:
            return 0, 0
        changed = self.backfill.transform(rows) or []
        return self.write_back(conn, changed, after, upto), len(rows)

    def write_back(self, conn: psycopg.Connection, changed: Sequence[Row],
                   after: Sequence[str] | None, upto: Sequence[str] | None) -> int:
        """One ``UPDATE … FROM unnest(…)`` per distinct set of changed columns (usually one)."""
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in changed:
            missing = [k for k in self.table.key if k not in row]
            if missing:
                raise UsageError(f"transform of {self.backfill.name} returned a row without key "
                                 f"column(s) {', '.join(missing)}: return the key with each row")
            cols = tuple(sorted(c for c in row if c not in self.table.key))
            unknown = [c for c in cols if c not in self.table.types]
            if unknown:
                raise UsageError(f"transform of {self.backfill.name} returned unknown column(s) "
                                 f"{', '.join(unknown)} of {self.table.name}")
            if cols:
                groups.setdefault(cols, []).append(row)
        return sum(self._write_group(conn, cols, rows, after, upto)
                   for cols, rows in groups.items())

    def _write_group(self, conn: psycopg.Connection, cols: tuple[str, ...], rows: list[Row],
                     after: Sequence[str] | None, upto: Sequence[str] | None) -> int:
        names = [*self.table.key, *cols]
        arrays: list[sql.Composable] = []
        params: list[Any] = []
        assigns: list[sql.Composable] = []
        for i, name in enumerate(names):
            type_ = self.table.types[name]
            values = [row[name] for row in rows]
            if type_ in _JSON_TYPES:
                # As read: Python objects, a str being a JSON string (psycopg loads jsonb
                # that way); SQL NULL for None.
                values = [None if v is None else json.dumps(
                    v.obj if isinstance(v, Json | Jsonb) else v) for v in values]
                arrays.append(sql.SQL("%b::text[]"))
            else:
                values = _same_number_type(values)
                arrays.append(sql.SQL("%b::{}[]").format(sql.SQL(type_)))
            params.append(values)
            if i >= len(self.table.key):
                json_cast = sql.SQL("::{}").format(sql.SQL(type_))
                cast = json_cast if type_ in _JSON_TYPES else sql.SQL("")
                assigns.append(sql.SQL("{} = v.{}{}").format(
                    sql.Identifier(name), sql.Identifier(f"_c{i}"), cast))
        aliases = sql.SQL(", ").join(sql.Identifier(f"_c{i}") for i in range(len(names)))
        match = sql.SQL(" AND ").join(
            sql.SQL("t.{} = v.{}").format(sql.Identifier(k), sql.Identifier(f"_c{i}"))
            for i, k in enumerate(self.table.key))
        cond, cond_params = self.table.range_condition(after, upto)
        query = sql.SQL("UPDATE {} AS t SET {} FROM unnest({}) AS v({}) WHERE {} AND {}").format(
            self.table.ident, sql.SQL(", ").join(assigns), sql.SQL(", ").join(arrays), aliases,
            match, cond)
        return conn.execute(query, [*params, *cond_params]).rowcount


def _same_number_type(values: list[Any]) -> list[Any]:
    """psycopg dumps a list of one Python type only; a transform that returns 1 for some
    rows and 1.5 (or Decimal("1.5")) for others of the same column is still fine."""
    kinds = {type(v) for v in values if v is not None}
    if int in kinds and len(kinds) == 2:
        other = next(iter(kinds - {int}))
        if other in (float, Decimal):
            return [other(v) if type(v) is int else v for v in values]
    return values


def run_batch(conn: psycopg.Connection, changer: Changer, name: str, chunk: int, owner: str,
              size: int, lease: float) -> Batch:
    """One batch of one chunk in one transaction (see the module docstring)."""
    started = time.perf_counter()
    key_range = ""
    try:
        with conn.transaction():
            row = conn.execute(
                """SELECT c.checkpoint, c.upper_key, b.status
                   FROM umbau_backfill_chunks c JOIN umbau_backfills b ON b.name = c.backfill
                   WHERE c.backfill = %s AND c.chunk = %s AND c.owner = %s
                     AND c.status <> 'done'
                   FOR UPDATE OF c""", (name, chunk, owner)).fetchone()
            if row is None:
                return Batch("lost")
            after, hi, status = row
            if status != "running":
                return Batch("stopped")
            upper = changer.upper_bound(conn, after, hi, size)
            last = upper is None
            upto = hi if last else upper
            key_range = describe_range(after, upto)
            rows, scanned = changer.apply(conn, after, upto)
            conn.execute(
                """UPDATE umbau_backfill_chunks SET
                       checkpoint = coalesce(%s, checkpoint), rows_done = rows_done + %s,
                       batches = batches + 1, status = CASE WHEN %s THEN 'done' ELSE status END,
                       owner = CASE WHEN %s THEN NULL ELSE owner END,
                       lease_expires = now() + make_interval(secs => %s), updated_at = now()
                   WHERE backfill = %s AND chunk = %s""",
                (upto, rows, last, last, lease, name, chunk))
    except psycopg.Error as exc:
        # The worker decides by the kind: retry, split, reconnect or fail.
        raise BatchError(exc, key_range, fault(exc, conn)) from exc
    except Exception as exc:
        raise BatchError(exc, key_range) from exc
    return Batch("ok", rows, scanned, last, time.perf_counter() - started, key_range)


def sample_batch(conn: psycopg.Connection, changer: Changer, size: int) -> tuple[int, float]:
    """Apply the change to the first ``size`` keys and roll it back: (rows, seconds)."""
    started = time.perf_counter()
    upper: list[str] | None = None
    try:
        with conn.transaction(force_rollback=True):
            upper = changer.upper_bound(conn, None, None, size)
            rows, _ = changer.apply(conn, None, upper)
    except psycopg.Error as exc:
        if fault(exc, conn) is Fault.LOST:
            raise translate(exc, f"backfill {changer.backfill.name}", conn) from exc
        _sample_failed(changer, exc, upper)
    except Exception as exc:  # the transform's own error
        _sample_failed(changer, exc, upper)
    return rows, time.perf_counter() - started


def _sample_failed(changer: Changer, exc: BaseException, upper: list[str] | None) -> None:
    raise BackfillError(
        f"backfill {changer.backfill.name}: the sample batch in key range "
        f"{describe_range(None, upper)} failed ({describe_error(exc)}) and was rolled "
        "back: fix the change before running it") from exc
