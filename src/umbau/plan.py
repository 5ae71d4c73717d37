"""An upgrade plan, made once and handed to the lint gate, the backup guard and the runner.

Before this module, ``umbau upgrade`` walked the same project several times: each of
the lint gate, the backup guard and the runner built its own :class:`Project`, opened
its own session and ran env.py to read the current revision (3 Projects, 6 sessions,
5 runs of env.py per default upgrade). The plan is read in one session and carries what
they need: the project, the current heads, the pending steps, the server version, and,
once the lint gate has rendered it, the SQL of each step.

It sits beside the runner (``commands → {lint, backup} → plan/runner → alembic_bridge →
postgres``), so the gates below ``commands/`` can take it without importing upward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import UnknownRevision
from umbau.postgres import catalog

# Words in env.py that can change where the version table is (or how it is found). When
# none appears, env.py keeps Alembic's default (``alembic_version`` on the search_path)
# and the heads can be read with one query instead of a run of env.py.
_VERSION_TABLE_MARKERS = ("version_table", "search_path", "schema_translate_map", "**")


@dataclass
class UpgradePlan:
    """What one upgrade will do, read once.

    ``connection`` is the plan's session, open while the gates judge (the lint gate
    reads table sizes through it) and None afterwards. ``sql`` maps a revision to its
    rendered SQL (statements separated by ``;``), for the revisions that were rendered
    offline; empty until someone rendered them.
    """

    project: bridge.Project
    target: str
    current: tuple[str, ...]
    steps: list[bridge.Step]
    server_version: int
    connection: Connection | None = None
    sql: dict[str, str] = field(default_factory=dict)

    @property
    def revisions(self) -> list[str]:
        """The pending revision ids in order (a merge step counts each of its ids)."""
        return [r for step in self.steps for r in step.revision.split(",")]

    def pending_sql(self) -> str | None:
        """The SQL of every pending step, or None when one of them was not rendered."""
        parts = [self.sql.get(revision) for revision in self.revisions]
        if any(part is None for part in parts):
            return None
        return "\n".join(part for part in parts if part)


def read_plan(project: bridge.Project, target: str, conn: Connection) -> UpgradePlan:
    """The plan of an upgrade to ``target``, read on ``conn`` (kept as the plan's session).

    Raises what :meth:`Project.upgrade_steps` raises for a target the graph cannot reach.
    """
    current = read_heads(project, conn)
    steps = project.upgrade_steps(current, target)
    return UpgradePlan(project, target, current, steps, catalog.server_version(conn), conn)


def read_heads(project: bridge.Project, conn: Connection) -> tuple[str, ...]:
    """The revisions in the version table, without creating anything.

    One query when env.py provably keeps Alembic's default version table (see
    ``_VERSION_TABLE_MARKERS``); otherwise through env.py, which knows where it is.
    """
    if not default_version_table(project):
        return bridge.current_heads(project, conn)
    heads = catalog.version_table_heads(conn)
    conn.rollback()  # leave the session idle: no snapshot held while the gates judge
    return heads


def default_version_table(project: bridge.Project) -> bool:
    """Does env.py leave the version table where Alembic puts it by default?"""
    source = Path(project.script.env_py_location).read_text(encoding="utf-8")
    return not any(marker in source for marker in _VERSION_TABLE_MARKERS)


def pending_steps(project: bridge.Project, current: tuple[str, ...],
                  target: str = "heads") -> list[bridge.Step]:
    """The steps from ``current`` to ``target``; none when ``current`` is unknown to the
    scripts (status reports that case as ``unknown-revision``)."""
    try:
        return project.upgrade_steps(current, target)
    except UnknownRevision:
        return []
