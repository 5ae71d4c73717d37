"""How an ``ops`` helper talks to the server: through Alembic's ``op``, under lock_timeout,
retrying lock timeouts statement by statement.

Every statement goes through ``op`` (``op.execute`` or the matching ``op.create_*``), so
``umbau upgrade --sql`` and ``umbau lint`` see what the helper runs. Online, each
statement that takes a lock the application's writes wait for runs under the session's
``lock_timeout``; on a lock timeout or deadlock (SQLSTATE 55P03/40P01) only that
statement is rolled back (a savepoint inside a transaction; nothing to undo in an
autocommit block) and run again after :func:`umbau.retry.backoff_delay`, up to
``retries`` times. Offline (``--sql``) the statements are only written out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from umbau.errors import RetriesExhausted
from umbau.postgres.connect import RETRYABLE_SQLSTATES, sqlstate
from umbau.postgres.errors import describe_error
from umbau.retry import backoff_delay
from umbau.settings import Settings, format_duration

# The key umbau's runner stores its settings under in Alembic's config.attributes.
SETTINGS_ATTRIBUTE = "umbau_settings"
_DEPTH = "_umbau_ops_autocommit"


@dataclass
class Runtime:
    """The ``op`` of the running revision, with umbau's settings and retry policy."""

    op: Any
    sleep: Callable[[float], None] = time.sleep

    @property
    def context(self) -> Any:
        return self.op.get_context()

    @property
    def offline(self) -> bool:
        return bool(self.context.as_sql)

    @property
    def settings(self) -> Settings:
        config = self.context.config
        found = config.attributes.get(SETTINGS_ATTRIBUTE) if config is not None else None
        return found if isinstance(found, Settings) else Settings()

    # -- statements ------------------------------------------------------------
    def execute(self, sql: str) -> None:
        """One statement that takes no lock worth retrying (or a catalog-only one)."""
        self.op.execute(sql)

    def locking(self, sql: str | Callable[[], Any]) -> None:
        """Run a statement (SQL text, or a call of ``op``) with per-statement retries."""
        run: Callable[[], Any] = sql if callable(sql) else (lambda: self.op.execute(sql))
        if self.offline:
            run()
            return
        self.ensure_lock_timeout()
        attempt = 1
        while True:
            try:
                with self._savepoint():
                    run()
                return
            except Exception as exc:
                if sqlstate(exc) not in RETRYABLE_SQLSTATES:
                    raise
                if attempt > self.settings.retries:
                    raise RetriesExhausted(
                        f"{describe_error(exc)} after {attempt} attempts: find the blocking "
                        "session in pg_stat_activity, or raise lock_timeout/retries",
                        "", attempt) from exc
                self.sleep(backoff_delay(attempt, self.settings))
                attempt += 1

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        bind = self.op.get_bind()
        if self.in_autocommit:
            yield
            return
        with bind.begin_nested():
            yield

    def ensure_lock_timeout(self) -> None:
        """Plain `alembic upgrade` sets no lock_timeout: use umbau's (default 2 s)."""
        if self.scalar("SELECT current_setting('lock_timeout')") in ("0", None):
            seconds = self.settings.lock_timeout or 2.0
            self.op.get_bind().exec_driver_sql(
                f"SET lock_timeout = '{format_duration(seconds)}'")

    # -- catalog questions (online only) --------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self.op.get_bind().exec_driver_sql(sql, tuple(params))
        return [tuple(r) for r in result.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def comment(self, text: str) -> None:
        """A ``-- comment`` line in the ``--sql`` output (nothing online)."""
        if self.offline:
            self.context.impl.static_output(f"-- umbau.ops: {text}")

    # -- outside the revision's transaction ------------------------------------------
    @property
    def in_autocommit(self) -> bool:
        return getattr(self.context, _DEPTH, 0) > 0 or (
            not self.offline
            and self.op.get_bind().get_isolation_level() == "AUTOCOMMIT")

    @contextmanager
    def autocommit(self) -> Iterator[None]:
        """Alembic's ``autocommit_block()`` unless one is open already (it does not nest)."""
        if self.in_autocommit:
            yield
            return
        context = self.context
        with context.autocommit_block():
            setattr(context, _DEPTH, 1)
            try:
                yield
            finally:
                setattr(context, _DEPTH, 0)
