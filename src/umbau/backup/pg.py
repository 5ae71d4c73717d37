"""What backups need from a server: libpq connection strings, sizes, tables, row counts,
the revision, and running pg_dump/pg_restore."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from umbau.backup.binaries import PgTool, find_tool
from umbau.backup.config import BackupConfig
from umbau.errors import BackupFailed
from umbau.postgres.connect import normalize_url

TABLES_SQL = """
    SELECT n.nspname, c.relname,
           CASE WHEN c.relkind = 'p'
                THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
                      FROM pg_partition_tree(c.oid) t)::bigint
                ELSE pg_total_relation_size(c.oid) END,
           CASE WHEN c.relkind = 'p'
                THEN (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)
                      FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid)::bigint
                ELSE c.reltuples::bigint END,
           c.relkind = 'p'
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
      AND NOT c.relispartition
    ORDER BY 1, 2
"""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, extra environment with PGPASSWORD).

    The password goes through the environment so that it never shows in ``ps``.
    """
    parsed = normalize_url(url)
    parts: dict[str, str] = {}
    for key, value in parsed.query.items():
        parts[key] = value if isinstance(value, str) else value[0]
    # ?password=… is a libpq parameter too: it must not reach argv either.
    in_query = parts.pop("password", None)
    password = parsed.password or in_query
    if parsed.host:
        parts["host"] = parsed.host
    if parsed.port:
        parts["port"] = str(parsed.port)
    if parsed.username:
        parts["user"] = parsed.username
    if parsed.database:
        parts["dbname"] = parsed.database
    conninfo = " ".join(f"{k}={_conninfo_value(v)}" for k, v in parts.items())
    env = {"PGPASSWORD": str(password)} if password else {}
    return conninfo, env


def safe_url(url: str) -> str:
    """The URL for results and manifests: no password, neither in the user part nor as
    a ``?password=`` parameter."""
    normalize_url(url)  # a bad URL is a SettingsError here too
    parsed = make_url(url).difference_update_query(["password"])
    return parsed.render_as_string(hide_password=True)


def with_database(url: str, name: str) -> str:
    return normalize_url(url).set(database=name).render_as_string(hide_password=False)


def database_name(url: str) -> str:
    return normalize_url(url).database or "postgres"


@dataclass(frozen=True)
class TableInfo:
    """A table as backups see it: partitions are folded into their (top) parent, whose
    size, estimate and rows are those of the whole partition tree."""

    schema: str
    name: str
    bytes: int
    estimate: int
    partitioned: bool = False

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def rows_from(self) -> str:
        """What ``FROM`` reads this table's rows from: ``ONLY`` for a plain table (its
        inheritance children are listed themselves), the whole tree for a partitioned
        one (its partitions are not listed)."""
        return self.qualified if self.partitioned else f"ONLY {self.qualified}"

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"


def tables(conn: Connection) -> list[TableInfo]:
    """User tables (and partitioned parents), with size and the planner's row estimate."""
    return [TableInfo(*row) for row in conn.execute(text(TABLES_SQL))]


def database_size(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def server_major(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000


def server_version(conn: Connection) -> str:
    return str(conn.exec_driver_sql("SHOW server_version").scalar_one()).split()[0]


def row_counts(conn: Connection, infos: Sequence[TableInfo],
               exact_below: int) -> dict[str, dict[str, Any]]:
    """Per table: exact ``count(*)`` below ``exact_below`` bytes, the estimate above."""
    counts: dict[str, dict[str, Any]] = {}
    for info in infos:
        if info.bytes < exact_below:
            rows = conn.execute(text(f"SELECT count(*) FROM {info.rows_from}")).scalar_one()
            counts[info.key] = {"rows": int(rows), "exact": True, "bytes": info.bytes}
        else:
            counts[info.key] = {"rows": max(0, info.estimate), "exact": False,
                                "bytes": info.bytes}
    return counts


def exact_counts(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    """``count(*)`` of each ``schema.table`` in ``keys`` that exists."""
    out: dict[str, int] = {}
    present = {t.key: t for t in tables(conn)}
    for key in keys:
        if key in present:
            out[key] = int(conn.execute(
                text(f"SELECT count(*) FROM {present[key].rows_from}")).scalar_one())
    return out


def version_table_revisions(conn: Connection, table: str = "alembic_version") -> tuple[str, ...]:
    """The revisions in Alembic's version table read directly; () when it is missing."""
    exists = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"),
                          {"t": quote_ident(table)}).scalar()
    if not exists:
        return ()
    rows = conn.execute(text(f"SELECT version_num FROM {quote_ident(table)} ORDER BY 1"))
    return tuple(r[0] for r in rows)


def user_table_names(conn: Connection) -> list[str]:
    return [t.key for t in tables(conn)]


def tool(config: BackupConfig, name: str, server_major_version: int | None) -> PgTool:
    return find_tool(name, server_major_version, pg_bin=config.pg_bin,
                     path_env=config.search_path)


def run(tool_: PgTool, args: Sequence[str], *, env: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None, stdin: Any = None,
        stdout: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start a client; stderr is read line by line (``on_line``) so it never blocks.

    umask 077: whatever pg_dump creates (files of a directory-format dump) is private
    from the first byte, not only once the dump is complete."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen([str(tool_.path), *args], stdin=stdin, stdout=stdout,
                            stderr=subprocess.PIPE, env=full_env, umask=0o077)
    lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            lines.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    proc.umbau_stderr = lines  # type: ignore[attr-defined]
    proc.umbau_reader = reader  # type: ignore[attr-defined]
    return proc


def wait(proc: subprocess.Popen[bytes], what: str) -> list[str]:
    """Wait for a client started by :func:`run`; a non-zero exit becomes BackupFailed.
    Interrupted (Ctrl-C, an error in another thread of work), the client is stopped."""
    try:
        code = proc.wait()
    except BaseException:
        stop(proc)
        raise
    proc.umbau_reader.join()  # type: ignore[attr-defined]
    lines: list[str] = proc.umbau_stderr  # type: ignore[attr-defined]
    if code != 0:
        raise BackupFailed(f"{what} failed (exit {code}): {first_error(lines)}: fix that "
                           "and run it again")
    return lines


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a client that is still running, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def archive_major(manifest: Mapping[str, Any]) -> int | None:
    """The major version of the pg_dump that wrote a backup (from its manifest): an
    older pg_restore cannot read the archive."""
    major = (manifest.get("pg_dump") or {}).get("major")
    return major if isinstance(major, int) else None


def at_least(*majors: int | None) -> int | None:
    """The highest of the given major versions; None when none is known."""
    known = [m for m in majors if m is not None]
    return max(known) if known else None


def first_error(lines: Sequence[str]) -> str:
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line.strip()[:300]
    return (lines[-1].strip()[:300] if lines else "no message")


def run_checked(tool_: PgTool, args: Sequence[str], what: str, *,
                env: Mapping[str, str] | None = None,
                on_line: Callable[[str], None] | None = None) -> list[str]:
    """Run a client to the end; BackupFailed on a non-zero exit."""
    return wait(run(tool_, args, env=env, on_line=on_line), what)


def capture(tool_: PgTool, args: Sequence[str], *,
            env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run a client with small output; (exit code, stdout, stderr)."""
    done = subprocess.run([str(tool_.path), *args], capture_output=True,
                          env={**os.environ, **(env or {})}, check=False)
    return (done.returncode, done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"))
