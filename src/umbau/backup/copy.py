"""``umbau copy``: one database into another (an empty one), with anonymised columns.

All of it runs in one transaction on the target, so a failure leaves the target as
empty as it was:

1. the schema's pre-data part (tables, sequences, types) from ``pg_dump --schema-only
   --section=pre-data``, on a snapshot exported by the source transaction;
2. the data, table by table in foreign-key order, ``COPY (SELECT <expressions> …) TO
   STDOUT`` on the source into ``COPY … FROM STDIN`` on the target: the source computes
   the anonymised values, the clear ones never leave it;
3. the post-data part (indexes, constraints, foreign keys, triggers);
4. the sequences, set to the source's values.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.backup import anonymize as anon
from umbau.backup import pg
from umbau.backup.config import backup_config
from umbau.backup.restore import check_target
from umbau.errors import BackupFailed, UsageError
from umbau.events import Event, EventHandler, emit
from umbau.postgres import clients
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect, describe, normalize_url
from umbau.postgres.quoting import quote_ident
from umbau.settings import Settings

_STOPPED = "copy stopped; the target was left as it was (its transaction rolled back)"
# pg_dump 17.6/16.10/… wrap plain scripts in psql's \restrict … \unrestrict <key>;
# only those lines are dropped (a function body may hold lines starting with "\").
_PSQL_RESTRICT = re.compile(r"^\\(un)?restrict( \S+)?$")


@dataclass
class TableCopy:
    table: str
    rows: int
    duration_s: float
    anonymised: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "duration_s": round(self.duration_s, 3),
                "anonymised": self.anonymised}


@dataclass
class CopyResult:
    source: str
    target: str
    tables: list[TableCopy] = field(default_factory=list)
    sequences: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target,
                "tables": [t.as_dict() for t in self.tables], "sequences": self.sequences,
                "duration_s": round(self.duration_s, 3)}


def foreign_key_order(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Referenced tables before the tables that reference them; cycles keep name order
    (the foreign keys are created after the data, so any order loads)."""
    wanted = set(names)
    deps = {n: {r for c, r in edges if c == n and r in wanted and r != n} for n in names}
    order: list[str] = []
    while deps:
        ready = sorted(n for n, d in deps.items() if not d) or [sorted(deps)[0]]
        for n in ready:
            order.append(n)
            deps.pop(n)
        for d in deps.values():
            d.difference_update(ready)
    return order


def _resolve(infos: Sequence[catalog.TableInfo],
             requested: Sequence[str]) -> list[catalog.TableInfo]:
    """The tables named by ``--table`` (SQL identifier syntax), or all of them."""
    if not requested:
        return list(infos)
    chosen = [catalog.resolve(infos, name, where="the source") for name in requested]
    return list(dict.fromkeys(chosen))


def _check_closed(chosen: Sequence[catalog.TableInfo], edges: Sequence[tuple[str, str]]) -> None:
    keys = {i.key for i in chosen}
    missing = sorted({(c, r) for c, r in edges if c in keys and r not in keys})
    if missing:
        what = ", ".join(f"{c} -> {r}" for c, r in missing[:5])
        needed = " ".join(f"--table {r}" for r in sorted({r for _, r in missing}))
        raise UsageError(f"copied tables reference tables that are not copied ({what}): "
                         f"add {needed}")


@dataclass
class _Plan:
    """What to copy, read from the source's snapshot."""

    snapshot: str
    major: int
    order: list[str]
    by_key: dict[str, catalog.TableInfo]
    columns: dict[str, list[anon.Column]]
    selection: list[str]
    step: str = "reading the source"


def copy(
    settings: Settings,
    source_url: str,
    target_url: str,
    *,
    tables: Sequence[str] = (),
    rules_file: Path | None = None,
    on_event: EventHandler | None = None,
) -> CopyResult:
    """Copy the schema and data of ``source_url`` into the empty ``target_url``.

    Raises UsageError (bad ``--table`` names, with "did you mean"; a copied table that
    references one not copied; bad rules), TargetNotEmpty, BackupFailed (a statement or
    pg_dump failed: one line naming the step). Interrupted (Ctrl-C, SIGTERM) or failed,
    the target's one transaction is rolled back: it is left as it was."""
    config = backup_config(settings)
    rules = anon.load_rules(rules_file) if rules_file else anon.RuleSet("umbau", {})
    if normalize_url(source_url) == normalize_url(target_url):
        raise UsageError("--from and --to name the same database: name two databases")
    result = CopyResult(pg.safe_url(source_url), pg.safe_url(target_url))
    started = time.monotonic()
    plan: _Plan | None = None

    def failed(reason: str) -> BackupFailed:
        # The target's transaction was rolled back with the connection: nothing is left.
        step = plan.step if plan else "reading the source"
        return BackupFailed(f"copy failed while {step}: {reason}; the target was left as it "
                            "was: fix that (or the rules) and run it again")

    with clients.database_errors(failed), clients.sigterm_as_interrupt(_STOPPED), \
            connect(source_url) as src, connect(target_url) as dst:
        check_target(catalog.user_table_names(dst), clean=False, yes=False,
                     where=describe(normalize_url(target_url)))
        dump_tool = pg.tool(config, "pg_dump", max(catalog.server_major(src),
                                                   catalog.server_major(dst)))
        src.rollback()  # the isolation level can change only between transactions
        src = src.execution_options(isolation_level="REPEATABLE READ")
        plan = _read_source(src, tables, rules)
        _load(src, dst, plan, result, rules, on_event,
              lambda section: _schema_sql(dump_tool, source_url, plan, section))
        dst.commit()
        src.rollback()
    result.duration_s = time.monotonic() - started
    return result


def _read_source(src: Connection, tables: Sequence[str], rules: anon.RuleSet) -> _Plan:
    """The tables to copy (checked: names, references, rules) in foreign-key order, on
    a read-only snapshot that pg_dump will share."""
    src.exec_driver_sql("SET TRANSACTION READ ONLY")
    snapshot = catalog.export_snapshot(src)
    edges = catalog.foreign_keys(src)
    everything = catalog.tables(src)
    chosen = _resolve(everything, tables)
    _check_closed(chosen, edges)
    columns = {i.key: _columns(src, i) for i in chosen}
    anon.check_rules(rules, columns, [i.key for i in everything])
    order = foreign_key_order([i.key for i in chosen], edges)
    return _Plan(snapshot, catalog.server_major(src), order, {i.key: i for i in chosen},
                 columns, _selection(src, chosen) if tables else [])


def _load(src: Connection, dst: Connection, plan: _Plan, result: CopyResult,
          rules: anon.RuleSet, on_event: EventHandler | None,
          schema: Callable[[str], str]) -> None:
    """Schema (pre-data), the data table by table, post-data, sequences; ``plan.step``
    says where it is, for the error message."""
    emit(on_event, Event(kind="copy_step", message="schema", total=len(plan.order)))
    plan.step = "creating the schema (pre-data)"
    _create_schemas(dst, list(plan.by_key.values()) if plan.selection else [])
    _run_script(dst, schema("pre-data"))
    for key in plan.order:
        info = plan.by_key[key]
        plan.step = f"copying {key}"
        emit(on_event, Event(kind="copy_table", message=key))
        result.tables.append(_copy_table(src, dst, info, plan.columns[key],
                                         rules.for_table(info.schema, info.name),
                                         rules.salt))
    emit(on_event, Event(kind="copy_step", message="indexes and constraints"))
    plan.step = "creating indexes and constraints (post-data)"
    _run_script(dst, schema("post-data"))
    plan.step = "setting the sequences"
    result.sequences = _set_sequences(src, dst)


def _selection(conn: Connection, chosen: Sequence[catalog.TableInfo]) -> list[str]:
    """pg_dump ``--table`` options for ``chosen`` and every partition of a partitioned
    one (``--table`` alone leaves partitions out before pg_dump 16)."""
    args: list[str] = []
    for info in chosen:
        for name in catalog.partitions(conn, info) if info.partitioned else [info.qualified]:
            args += ["--table", name]
    return args


def _create_schemas(conn: Connection, chosen: Sequence[catalog.TableInfo]) -> None:
    """The schemas of the chosen tables: pg_dump ``--table`` leaves out the ``CREATE
    SCHEMA`` of the schemas they live in (pg_dump docs, ``-t``)."""
    for schema in sorted({i.schema for i in chosen} - {"public"}):
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"))


def _columns(conn: Connection, info: catalog.TableInfo) -> list[anon.Column]:
    return [anon.Column(name, type_, not_null)
            for name, type_, not_null in catalog.columns(conn, info)]


def _schema_sql(tool: Any, url: str, plan: _Plan, section: str) -> str:
    conninfo, env = clients.conninfo(url, plan.major)
    args = ["--schema-only", f"--section={section}", "--no-owner", "--no-privileges",
            "--snapshot", plan.snapshot, *plan.selection, "--dbname", conninfo]
    code, out, err = pg.capture(tool, args, env=env)
    if code != 0:
        raise BackupFailed(f"pg_dump --schema-only failed (exit {code}): "
                           f"{pg.first_error(err.splitlines())}: fix that and run it again")
    return "\n".join(line for line in out.splitlines() if not _PSQL_RESTRICT.match(line))


def _run_script(conn: Connection, sql: str) -> None:
    """Run a plain-format dump script on the target's open transaction."""
    if sql.strip():
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(sql.encode("utf-8"))  # several statements, no parameters
        # The script empties search_path for the session; later statements are qualified,
        # but the session should not keep the script's settings.
        conn.exec_driver_sql("RESET ALL")


def _copy_table(src: Connection, dst: Connection, info: catalog.TableInfo,
                columns: Sequence[anon.Column], rules: Any, salt: str) -> TableCopy:
    started = time.monotonic()
    anonymised = {name: rule.kind for name, rule in rules.items() if rule.kind != "keep"}
    if not columns:  # nothing to write (COPY t () is not valid SQL)
        return TableCopy(info.key, 0, time.monotonic() - started, anonymised)
    names = ", ".join(quote_ident(c.name) for c in columns)
    select = anon.select_sql(info.rows_from, columns, rules, salt)
    raw_src = src.connection.driver_connection
    raw_dst = dst.connection.driver_connection
    rows = 0
    with raw_src.cursor() as out_cur, raw_dst.cursor() as in_cur:  # type: ignore[union-attr]
        with out_cur.copy(f"COPY ({select}) TO STDOUT") as out_copy, \
                in_cur.copy(f"COPY {info.qualified} ({names}) FROM STDIN") as in_copy:
            for block in out_copy:
                in_copy.write(block)
        rows = max(in_cur.rowcount, 0)
    return TableCopy(info.key, rows, time.monotonic() - started, anonymised)


def _set_sequences(src: Connection, dst: Connection) -> int:
    """Each sequence the target has, set as on the source: read from the sequence itself
    (``pg_sequences.last_value`` is NULL after ``setval(…, false)`` and hides is_called)."""
    present = catalog.sequences(dst) & catalog.sequences(src)
    count = 0
    for schema, name in sorted(present):
        catalog.set_sequence(dst, schema, name, *catalog.sequence_state(src, schema, name))
        count += 1
    return count
