"""Runs the stairway's steps through env.py, one Alembic step at a time, on one connection.

The plan is a generator of :class:`Step`; a step's exception is thrown back into it at
the ``yield``, so that the plan reads like straight code (``yield step`` raises what the
step raised). Steps run from as few env.py runs as possible: a run ends when a step fails
(the next one starts with whatever the plan yields after the failure) or when the next
step needs the other transaction mode.

Two modes, because PostgreSQL DDL is transactional except where it is not:

- transactional steps run in the driver's own transaction (Alembic sees an external
  transaction and leaves it alone), so the plan decides what is committed and what is
  rolled back;
- steps of revisions that leave the transaction (``autocommit_block``) run as Alembic
  runs them, each committed; going back after one of them needs a copy of the database
  (:meth:`Driver.checkpoint` / :meth:`Driver.back`, ``CREATE DATABASE … TEMPLATE``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import MigrationFailed, UmbauError
from umbau.postgres.connect import connect, normalize_url
from umbau.postgres.errors import describe_error
from umbau.postgres.scratch import create_database, database_url, drop_database


@dataclass(frozen=True)
class Step:
    """One Alembic step of one revision; ``transactional`` False for revisions that leave
    the transaction (the step commits by itself)."""

    revision: str
    upgrade: bool
    transactional: bool = True


Plan = Generator[Step, None, None]


class Driver:
    """Owns the connection to the test database and runs a plan's steps on it."""

    def __init__(self, project: bridge.Project, url: str,
                 on_context: Callable[[Any], None] = lambda context: None) -> None:
        self.project = project
        self.url = url
        self.on_context = on_context
        self.statements = 0  # SQL statements the running step has sent so far
        self.in_step: Step | None = None
        self._handoff: Step | None = None
        self._copy: str | None = None
        self._stack = ExitStack()
        self.conn = self._open()

    # -- the connection -------------------------------------------------------
    def _open(self) -> Connection:
        conn = self._stack.enter_context(connect(self.url))
        # A throwaway database needs no durable commits; the stairway commits thousands.
        conn.exec_driver_sql("SET synchronous_commit = off")
        conn.commit()
        event.listen(conn, "before_cursor_execute", self._count)
        return conn

    def _count(self, *args: Any) -> None:
        self.statements += 1

    def close(self) -> None:
        """Close the connection and drop the copy of the database, if one is left."""
        self._stack.close()
        if self._copy is not None:
            drop_database(self._server, self._copy)
            self._copy = None

    def commit(self) -> None:
        if self.conn.in_transaction():
            self.conn.commit()

    def rollback(self) -> None:
        if self.conn.in_transaction():
            self.conn.rollback()

    # -- going back --------------------------------------------------------------
    @property
    def _server(self) -> str:
        return database_url(self.url, "postgres")

    @property
    def _name(self) -> str:
        return str(normalize_url(self.url).database)

    def checkpoint(self) -> None:
        """Copy the database as it is now (committed), for :meth:`back`."""
        self.commit()
        self._reopen(lambda: create_database(self._server, self._copy_name(), template=self._name))

    def back(self) -> None:
        """Put the database back: roll back the open transaction, and, when a checkpoint
        was taken, replace the database with a copy of the checkpoint."""
        self.rollback()
        if self._copy is not None:
            copy = self._copy
            self._reopen(lambda: self._replace_with(copy))

    def discard(self) -> None:
        """Forget the checkpoint (drop the copy)."""
        if self._copy is not None:
            drop_database(self._server, self._copy)
            self._copy = None

    def _copy_name(self) -> str:
        self._copy = f"{self._name[:50]}_back"
        return self._copy

    def _replace_with(self, copy: str) -> None:
        drop_database(self._server, self._name)
        create_database(self._server, self._name, template=copy)

    def _reopen(self, between: Callable[[], None]) -> None:
        """CREATE DATABASE … TEMPLATE needs the template without sessions: ours too."""
        self._stack.close()
        self._stack = ExitStack()
        between()
        self.conn = self._open()

    # -- running a plan --------------------------------------------------------------
    def run(self, plan: Plan) -> None:
        """Run ``plan``'s steps until it is done. An error outside a step (env.py itself)
        ends the run: retrying would fail the same way."""
        step = _advance(plan, None)
        while step is not None:
            step = self._env_run(plan, step)

    def _env_run(self, plan: Plan, first: Step) -> Step | None:
        """Steps from ``first`` on, in one env.py run; returns the step to start the next
        run with (None: the plan is done)."""
        self._handoff = None
        self.in_step = None
        if first.transactional:
            self._begin()
        else:
            self.commit()
        try:
            bridge.run_env(self.project, lambda rev, context: self._steps(plan, first, context),
                           connection=self.conn)
        except UmbauError:
            self.rollback()
            raise
        except Exception as exc:
            self.rollback()
            if self.in_step is None:
                raise MigrationFailed(f"env.py failed outside a revision step: "
                                      f"{describe_error(exc)}; fix it and rerun umbau test"
                                      ) from exc
            self.in_step = None
            return _advance(plan, exc)
        return self._handoff or (None if first.transactional else _advance(plan, None))

    def _begin(self) -> None:
        """Alembic leaves a transaction that is open when env.py configures it alone."""
        if not self.conn.in_transaction():
            self.conn.begin()

    def _steps(self, plan: Plan, step: Step, context: Any) -> Iterator[Any]:
        self.on_context(context)
        while True:
            self.in_step, self.statements = step, 0
            yield bridge.revision_step(self.project, step.revision, upgrade=step.upgrade)
            self.in_step = None
            if not step.transactional:
                return  # the plan goes on outside env.py: it may need to copy the database
            following = _advance(plan, None)
            if following is None or not following.transactional:
                self._handoff = following
                return
            step = following


def _advance(plan: Plan, failure: BaseException | None) -> Step | None:
    """The plan's next step (``failure`` thrown into it first); None when it is done."""
    try:
        return plan.throw(failure) if failure is not None else next(plan)
    except StopIteration:
        return None


def truncate(conn: Connection, tables: list[str]) -> None:
    """Empty ``tables`` (quoted names) and what references them."""
    if tables:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))

