"""Where the linted SQL comes from: revisions rendered offline, a throwaway database, files.

Offline: the whole history is rendered in one run of env.py (as ``umbau upgrade
--sql``) into a buffer that notes, for every write, which revision file and line
were executing — so each statement knows its revision and the Python call that
emitted it, and Alembic's own statements (the version table, its BEGIN/COMMIT per
revision) are told apart. When a revision cannot be rendered offline (it reads
data or inspects the schema), the history is rendered revision by revision, and
each such revision runs on a scratch database upgraded to its parent, with the
executed SQL captured, and the scratch database dropped.
"""

from __future__ import annotations

import bisect
import io
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from umbau import alembic_bridge as bridge
from umbau import sql as sqlparse
from umbau.errors import UsageError
from umbau.lint.context import LintStatement, Unit
from umbau.settings import Settings

# env.py needs a URL even offline (only its dialect is used); no connection is made.
OFFLINE_URL = "postgresql+psycopg://umbau-lint@localhost/offline"


class _Where:
    """Which revision file and line are executing, found by walking up the stack."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def __call__(self) -> tuple[str | None, int | None]:
        frame = sys._getframe(2)
        while frame is not None:
            revision = self.files.get(frame.f_code.co_filename)
            if revision is not None:
                return revision, frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None, None


class _TracingBuffer(io.StringIO):
    """The offline output, with (offset, revision, line) noted for each write."""

    def __init__(self, where: _Where) -> None:
        super().__init__()
        self.where = where
        self.marks: list[tuple[int, str | None, int | None]] = []

    def write(self, s: str) -> int:
        self.marks.append((self.tell(), *self.where()))
        return super().write(s)


@dataclass
class Rendered:
    """Statements per revision, and the revisions that could not be rendered (with why)."""

    statements: dict[str, list[LintStatement]] = field(default_factory=dict)
    via: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def revision_files(infos: Sequence[bridge.RevisionInfo]) -> dict[str, str]:
    """Revision id by file path (as Alembic names it, and resolved) of ``infos``
    (``project.revisions()``, asked once per lint: it walks the whole graph)."""
    files: dict[str, str] = {}
    folders: dict[str, str] = {}  # resolved once per folder, not once per file
    for info in infos:
        files[info.path] = info.revision
        if os.path.islink(info.path):
            files[str(Path(info.path).resolve())] = info.revision
            continue
        folder, name = os.path.split(os.path.abspath(info.path))
        if folder not in folders:
            folders[folder] = str(Path(folder).resolve())
        files[os.path.join(folders[folder], name)] = info.revision
    return files


# Alembic's version-table statements: INSERT … VALUES ('r1') / UPDATE … SET version_num='r2'
_STAMP = re.compile(r"(?:SET\s+version_num\s*=\s*|VALUES\s*\(\s*)'([^']+)'", re.IGNORECASE)


def _statements_from(sql: str, marks: list[tuple[int, str | None, int | None]],
                     out: dict[str, list[LintStatement]], stamped: set[str] | None = None,
                     ) -> None:
    """Group the statements of ``sql`` by revision; note in ``stamped`` the revisions
    Alembic's version-table statements mark as done.

    Only the revisions' own text is parsed (Alembic's BEGIN/COMMIT and version-table
    statements, as many as the revisions' own, are read with a pattern instead).
    """
    offsets = [m[0] for m in marks]
    for begin, finish, revision in _runs(marks, len(sql)):
        if revision is None:
            if stamped is not None:
                stamped.update(_STAMP.findall(sql, begin, finish))
            continue
        for stmt in sqlparse.split(sql[begin:finish]):
            line = marks[bisect.bisect_right(offsets, begin + stmt.start) - 1][2]
            out.setdefault(revision, []).append(
                LintStatement(stmt.text, stmt.node, stmt.error, line))


def _runs(marks: list[tuple[int, str | None, int | None]],
          end: int) -> Iterator[tuple[int, int, str | None]]:
    """(start, end, revision) of each stretch of output one revision (or Alembic) wrote."""
    starts = [i for i, mark in enumerate(marks) if i == 0 or marks[i - 1][1] != mark[1]]
    for number, index in enumerate(starts):
        following = marks[starts[number + 1]][0] if number + 1 < len(starts) else end
        yield marks[index][0], following, marks[index][1]


def render_offline(project: bridge.Project, start: Any, target: str,
                   where: _Where) -> dict[str, list[LintStatement]]:
    """Render ``start:target`` offline; statements grouped by the revision that wrote them."""
    buffer = _TracingBuffer(where)
    bridge.run_env(project, bridge.upgrade_fn(project, target), as_sql=True,
                   starting_rev=start, destination_rev=target, output=buffer)
    out: dict[str, list[LintStatement]] = {}
    _statements_from(buffer.getvalue(), buffer.marks, out)
    return out


def render_history(project: bridge.Project, needed: set[str],
                   capture: Callable[[str], list[LintStatement]],
                   infos: Sequence[bridge.RevisionInfo] | None = None) -> Rendered:
    """Every revision's statements; ``capture`` runs the ``needed`` ones offline cannot render.

    One offline pass from base to heads; when a revision fails it, that revision alone is
    rendered on its own (or captured), and the rest again in one pass from it — so a
    history with a few revisions that need a connection costs a few passes, not one
    env.py run per revision. What a pass cannot reach (other branches) is rendered
    revision by revision. ``infos``: ``project.revisions()`` when the caller has it.
    """
    infos = project.revisions() if infos is None else infos
    where = _Where(revision_files(infos))
    result = Rendered()
    start: Any = None
    for _ in range(len(infos) + 1):
        failing = _one_pass(project, where, start, result)
        if failing is None or failing == "?" or failing in result.via:
            break  # "?": nothing to blame (env.py itself failed): one by one below
        _render_alone(project, where, failing, needed, capture, result)
        start = failing
    for info in infos:
        if info.revision not in result.via and info.revision not in result.failed:
            _render_alone(project, where, info.revision, needed, capture, result)
    return result


def _one_pass(project: bridge.Project, where: _Where, start: Any,
              result: Rendered) -> str | None:
    """Render ``start:heads`` into ``result``; the revision that failed the pass, if any."""
    buffer = _TracingBuffer(where)
    failing = None
    try:
        bridge.run_env(project, bridge.upgrade_fn(project, "heads"), as_sql=True,
                       starting_rev=start, destination_rev="heads", output=buffer)
    except Exception as exc:  # a revision needing a connection, or a printer gap
        location = bridge.revision_location(exc, project.script)
        failing = where.files.get(location[0]) if location else None
        failing = failing or "?"  # "?": no revision to blame; the rest one by one
    out: dict[str, list[LintStatement]] = {}
    stamped: set[str] = set()
    _statements_from(buffer.getvalue(), buffer.marks, out, stamped)
    for revision in stamped - {failing}:
        result.statements[revision] = out.get(revision, [])
        result.via[revision] = "offline"
    return failing


def _render_alone(project: bridge.Project, where: _Where, revision: str, needed: set[str],
                  capture: Callable[[str], list[LintStatement]], result: Rendered) -> None:
    info = project.get(revision)
    start: Any = None
    if info.down_revisions:
        start = info.down_revisions if len(info.down_revisions) > 1 else info.down_revisions[0]
    try:
        rendered = render_offline(project, start, revision, where)
        result.statements[revision] = rendered.get(revision, [])
        result.via[revision] = "offline"
        return
    except Exception as exc:  # reported as a finding, never a crash
        reason = f"{type(exc).__name__}: {exc}"[:300]
    if revision not in needed:
        result.failed[revision] = reason
        return
    try:
        result.statements[revision] = capture(revision)
        result.via[revision] = "database"
    except Exception as exc:  # reported as a finding, never a crash
        result.failed[revision] = (
            f"offline: {reason}; on a throwaway database: {type(exc).__name__}: {exc}"[:600])


# -- the throwaway database ------------------------------------------------------------

_NAMED = re.compile(r"%\((\w+)\)s")


def _placeholders(statement: str) -> str:
    """psycopg's %(name)s / %s placeholders as $n, which PostgreSQL's parser accepts."""
    count = 0

    def number(_: Any) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    statement = _NAMED.sub(number, statement)
    statement = re.sub(r"(?<!%)%s", number, statement)
    return statement.replace("%%", "%")


class Capture:
    """Runs revisions that need a connection on a throwaway database, and captures their SQL.

    The server: ``server_url`` (``--server``, or the configured database's server) when
    given, else an embedded PostgreSQL in a temporary folder, started only when a
    revision needs it. ``setup`` runs on each throwaway database before the history.
    Use as a context manager: the embedded server stops at the end.
    """

    def __init__(self, settings: Settings, server_url: str | None,
                 setup: Callable[[Any], None] | None = None) -> None:
        self.settings, self.server_url, self.setup = settings, server_url, setup
        self._stack = ExitStack()
        self._server: str | None = None

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def server(self) -> str:
        if self._server is None:
            if self.server_url:
                from umbau.postgres.scratch import database_url

                self._server = database_url(self.server_url, "postgres")
            else:
                from umbau.postgres import embedded

                self._server = self._stack.enter_context(embedded.temporary("umbau-lint-"))
        return self._server

    def __call__(self, revision: str) -> list[LintStatement]:
        return capture_on_database(self.settings, self.server(), revision, self.setup)


def capture_on_database(settings: Settings, server_url: str, revision: str,
                        setup: Callable[[Any], None] | None = None) -> list[LintStatement]:
    """Run ``revision`` on a scratch database upgraded to its parent; return what it executed."""
    from umbau.postgres.connect import connect
    from umbau.postgres.scratch import scratch_database
    from umbau.runner import migrate

    with scratch_database(server_url, "umbau_lint") as url:
        if setup is not None:
            with connect(url) as conn:
                setup(conn)
                conn.commit()
        scratch = settings.with_overrides(database_url=url)
        project = bridge.Project(scratch, url)
        for parent in project.get(revision).down_revisions:
            migrate(scratch, project, "upgrade", parent)
        return _run_capturing(project, url, revision)


def _run_capturing(project: bridge.Project, url: str, revision: str) -> list[LintStatement]:
    from umbau.postgres.connect import connect

    where = _Where(revision_files(project.revisions()))
    seen: list[LintStatement] = []

    def note(sql: str) -> None:
        found, line = where()
        if found == revision:
            stmts = sqlparse.split(sql)
            seen.extend(LintStatement(s.text, s.node, s.error, line) for s in stmts)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        note(_placeholders(statement))

    def boundary(sql: str) -> Callable[[Any], None]:
        def noted(conn: Any) -> None:
            # in autocommit_block() SQLAlchemy still "begins" and "commits", but nothing
            # reaches the server: each statement commits on its own
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                note(sql)
        return noted

    with connect(url) as conn:
        event.listen(conn, "before_cursor_execute", before)
        event.listen(conn, "commit", boundary("COMMIT"))
        event.listen(conn, "begin", boundary("BEGIN"))
        try:
            bridge.run_env(project, bridge.upgrade_fn(project, revision), connection=conn)
        finally:
            if conn.in_transaction():
                conn.rollback()
    return seen


# -- the downgrade path -----------------------------------------------------------------


def downgrade_units(project: bridge.Project, wanted: set[str],
                    sources: dict[str, str | None],
                    infos: Sequence[bridge.RevisionInfo] | None = None) -> list[Unit]:
    """The downgrade of the whole history, heads to base, rendered offline in one pass:
    one unit per revision (reported for ``wanted``), in the order they would run.
    ``infos``: ``project.revisions()`` when the caller has it."""
    infos = project.revisions() if infos is None else infos
    where = _Where(revision_files(infos))
    buffer = _TracingBuffer(where)
    failure = None
    try:
        bridge.run_env(project, bridge.downgrade_fn(project, "base"), as_sql=True,
                       starting_rev="heads", destination_rev="base", output=buffer)
    except Exception as exc:  # reported per revision as unrendered, never a crash
        failure = f"downgrade offline: {type(exc).__name__}: {exc}"[:300]
    out: dict[str, list[LintStatement]] = {}
    _statements_from(buffer.getvalue(), buffer.marks, out)
    units = []
    for info in reversed(infos):
        units.append(Unit(
            id=info.revision, path=info.path, statements=out.get(info.revision, []),
            source=sources.get(info.revision), report=info.revision in wanted,
            failure=failure, direction="downgrade"))
    return units


# -- plain SQL files ---------------------------------------------------------------------


def sql_file_unit(path: Path, *, assume_in_transaction: bool = False) -> Unit:
    """A .sql file as one unit; statement lines are the file's lines."""
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                         "save it as UTF-8") from exc
    newlines = [i for i, ch in enumerate(source) if ch == "\n"]
    statements = [
        LintStatement(s.text, s.node, s.error, bisect.bisect_right(newlines, s.start - 1) + 1)
        for s in sqlparse.split(source)
    ]
    return Unit(id=path.name, path=str(path), statements=statements, kind="file",
                source=source, via="file", starts_in_transaction=assume_in_transaction)
