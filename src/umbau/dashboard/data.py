"""What the dashboard shows: the commands' own result objects, as dictionaries.

Each source is the ``as_dict()`` of the command that answers the same question on the
command line (``umbau status``, ``history --runs``, ``lint``, ``backfill status``,
``backups list``, ``fleet status``), so the page and ``--format json`` never disagree.
A source that fails (server down, no backups folder) answers
``{"error": {"type", "message"}}`` instead of failing the page; umbau never puts a
password into any of them (URLs are masked the way ``umbau config`` masks them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from umbau.errors import UmbauError
from umbau.settings import Settings

Answer = dict[str, Any]

#: Rows per history page, and the most a client may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def guarded(fn: Callable[[], Answer]) -> Answer:
    """``fn()``, or the error it raised as ``{"error": {...}}``."""
    try:
        return fn()
    except UmbauError as exc:
        return {"error": {"type": type(exc).__name__, "exit_code": exc.exit_code,
                          "message": exc.message}}
    except Exception as exc:  # a dashboard keeps serving whatever one source does
        return {"error": {"type": type(exc).__name__, "exit_code": 1,
                          "message": " ".join(str(exc).split())[:300]}}


@dataclass
class _Sample:
    at: float
    rows_done: int


@dataclass
class Sources:
    """The data behind the page for one project and database (``settings``).

    ``lint_ttl`` (seconds): lint results are kept this long, since linting pending
    revisions renders them (about a second for a long history) and the page polls.
    """

    settings: Settings
    lint_ttl: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _lint: tuple[float, tuple[str, ...], Answer] | None = None
    _rates: dict[str, _Sample] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Alembic runs env.py through module-level proxies (alembic.context, alembic.op):
    # two runs in two threads at once would see each other's state.
    _env_lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> Answer:
        from umbau.commands.status import status

        with self._env_lock:
            return guarded(lambda: status(self.settings).as_dict())

    def history(self, page: int = 1, per_page: int = PAGE_SIZE) -> Answer:
        """One page of ``umbau_history``, newest first, with the total row count."""
        return guarded(lambda: self._history(max(1, page), max(1, min(per_page, MAX_PAGE_SIZE))))

    def _history(self, page: int, per_page: int) -> Answer:
        from umbau.postgres import history
        from umbau.postgres.connect import connect

        with connect(self.settings.require_database_url()) as conn:
            total = history.count(conn, self.settings.history_table)
            rows = history.read(conn, self.settings.history_table, per_page,
                                (page - 1) * per_page)
        return {"page": page, "per_page": per_page, "total": total,
                "pages": max(1, -(-total // per_page)), "runs": [r.as_dict() for r in rows]}

    def lint(self) -> Answer:
        """Lint findings of the pending revisions (with their safe rewrites), cached."""
        status = self.status()
        pending = tuple(p["revision"] for p in status.get("pending", []))
        with self._lock:
            cached = self._lint
        if cached and cached[1] == pending and self.clock() - cached[0] < self.lint_ttl:
            return cached[2]
        with self._env_lock:
            answer = guarded(lambda: self._lint_pending(pending))
        with self._lock:
            self._lint = (self.clock(), pending, answer)
        return answer

    def _lint_pending(self, pending: tuple[str, ...]) -> Answer:
        if not pending:
            return {"summary": "nothing pending", "units": [], "findings": []}
        from umbau.commands.lint import lint

        return lint(self.settings, list(pending)).as_dict()

    def backfills(self) -> Answer:
        """Every backfill with its progress, live rate (rows/s between two polls) and ETA."""
        from umbau.backfill import backfill_status

        def answer() -> Answer:
            return {"backfills": [self._with_rate(s.as_dict())
                                  for s in backfill_status(self.settings)]}
        return guarded(answer)

    def _with_rate(self, item: Answer) -> Answer:
        now, done = self.clock(), int(item.get("rows_done") or 0)
        with self._lock:
            before = self._rates.get(item["name"])
            self._rates[item["name"]] = _Sample(now, done)
        rate = None
        if before and now > before.at and done >= before.rows_done:
            rate = (done - before.rows_done) / (now - before.at)
        total = item.get("rows_total")
        eta = None
        if rate and total is not None and item.get("status") == "running":
            eta = max(0.0, (int(total) - done) / rate)
        return {**item, "rate_rows_per_s": rate, "eta_s": eta}

    def backups(self) -> Answer:
        from umbau.backup.prune import list_backups

        return guarded(lambda: list_backups(self.settings).as_dict())

    def releases(self) -> Answer:
        """Release runs, once ``umbau release`` exists in this installation."""
        def answer() -> Answer:
            try:
                from umbau.release import release_status
            except ImportError:
                return {"available": False}
            return {"available": True, **release_status(self.settings).as_dict()}
        return guarded(answer)

    def fleet(self) -> Answer:
        """The fleet's targets as ``umbau fleet status`` shows them (when configured)."""
        def answer() -> Answer:
            try:
                from umbau.fleet.config import fleet_options
                from umbau.fleet.status import status
            except ImportError:
                return {"available": False}
            if not self.settings.section("fleet"):
                return {"available": True, "configured": False}
            return {"available": True, "configured": True,
                    **status(self.settings, fleet_options(self.settings)).as_dict()}
        return guarded(answer)
