"""The checks of ``umbau test``, in one pass over one database.

For every revision, oldest first: fill the tables with generated rows, upgrade,
downgrade, upgrade again, and compare catalog snapshots and row fingerprints
after each step. All steps run from a single env.py run: the plan below is a
generator that yields one Alembic step at a time and runs its checks while
Alembic asks for the next step (each step's transaction has committed by then).
A failing step is thrown back into the generator, which decides whether to go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import IrreversibleRevision, MigrationFailed, SettingsError, UmbauError
from umbau.events import Event, EventHandler, emit
from umbau.loader import load_object
from umbau.postgres import snapshot as snap
from umbau.postgres.connect import sqlstate
from umbau.settings import Settings
from umbau.testing.data import RowGenerator, row_count, table_fingerprints
from umbau.testing.report import RevisionTiming, TestReport

# Tables umbau owns; they are neither compared nor filled.
UMBAU_TABLES = frozenset({"umbau_history", "umbau_backfills", "umbau_backfill_chunks"})

Setup = str | Path | Callable[[Connection], Any]
LintHook = Callable[[str], list[dict[str, Any]]]
Step = tuple[str, bool]  # (revision, is_upgrade)
_State = tuple[snap.Snapshot, dict[str, str]]  # schema and row fingerprints


@dataclass
class TestOptions:
    """How ``umbau test`` runs.

    ``setup``: an ``.sql`` file, ``module:function`` or a callable taking the connection,
    run before the first revision (histories that start from a squashed schema).
    ``lint``: called with each revision id, returns that revision's lint findings.
    """

    __test__ = False

    rows_per_table: int = 3
    setup: Setup | None = None
    lint: LintHook | None = None
    skip: frozenset[str] = field(default_factory=frozenset)


def run_checks(settings: Settings, url: str, options: TestOptions | None = None, *,
               on_event: EventHandler | None = None) -> TestReport:
    """Run every check on the (throwaway, empty) database at ``url``."""
    from umbau.postgres.connect import connect

    options = options or TestOptions()
    report = TestReport()
    began = time.monotonic()
    project = bridge.Project(settings, url)
    heads = project.heads()
    _check_single_head(report, heads)
    with connect(url) as conn:
        # A throwaway database needs no durable commits; the stairway commits thousands.
        conn.exec_driver_sql("SET synchronous_commit = off")
        conn.commit()
        if options.setup is not None:
            run_setup(settings, conn, options.setup)
        checker = _Checker(settings, project, conn, report, options, on_event)
        finished = checker.stairway([r.revision for r in project.revisions()])
        if finished:
            report.passed("upgrade")
            _after_head(checker, options)
        else:
            for check in ("upgrade", "drift", "idempotent"):
                report.skip(check, "the stairway stopped before head")
        report.notes += [f"table {t}: {n}" for t, n in sorted(checker.rows.notes.items())]
    report.duration_s = time.monotonic() - began
    return report


def _check_single_head(report: TestReport, heads: Sequence[str]) -> None:
    if len(heads) == 1:
        report.passed("single-head")
    elif not heads:
        report.skip("single-head", "no revisions")
    else:
        report.fail("single-head", f"the scripts have {len(heads)} heads: merge them with "
                    f"`umbau merge -m \"merge heads\" {' '.join(heads)}`", None, list(heads))


def _after_head(checker: _Checker, options: TestOptions) -> None:
    report = checker.report
    if "idempotent" in options.skip:
        report.skip("idempotent", "switched off")
    else:
        checker.second_upgrade()
    if "drift" in options.skip:
        report.skip("drift", "switched off")
    elif not checker.settings.metadata:
        report.skip("drift", "no metadata setting (module:attribute of the models' MetaData)")
    else:
        checker.drift()


def run_setup(settings: Settings, conn: Connection, setup: Setup) -> None:
    """Run the setup hook: an .sql file, ``module:function`` or a callable."""
    try:
        _run_setup(settings, conn, setup)
    except UmbauError:
        raise
    except Exception as exc:
        if conn.in_transaction():
            conn.rollback()
        raise SettingsError(f"the setup hook {setup!r} failed: {reason(exc)}; fix it "
                            "(it runs on the empty throwaway database)") from exc


def _run_setup(settings: Settings, conn: Connection, setup: Setup) -> None:
    if callable(setup):
        setup(conn)
    elif str(setup).endswith(".sql"):
        path = Path(setup)
        path = path if path.is_absolute() else settings.root / path
        try:
            sql = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"setup file {path} cannot be read ({exc}): fix --setup") from exc
        conn.exec_driver_sql(sql)
    else:
        if not str(setup).partition(":")[2]:
            raise SettingsError(f"setup {setup!r}: use a .sql file or module:function")
        try:
            func = load_object(str(setup), settings.root)
        except Exception as exc:  # ImportError, AttributeError, or the module's own
            raise SettingsError(f"setup {setup!r} cannot be loaded ({exc}): fix --setup") from exc
        func(conn)
    conn.commit()


def reason(exc: BaseException) -> str:
    """The first line of a database or Python error."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    first = lines[0] if lines else ""
    if orig is None and not isinstance(exc, sa_exc.SQLAlchemyError):
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return first


class _Checker:
    """Drives the steps and holds what the checks compare."""

    def __init__(self, settings: Settings, project: bridge.Project, conn: Connection,
                 report: TestReport, options: TestOptions, on_event: EventHandler | None) -> None:
        self.settings = settings
        self.project = project
        self.conn = conn
        self.report = report
        self.options = options
        self.on_event = on_event
        self.rows = RowGenerator(rows_per_table=options.rows_per_table)
        self.excluded: set[str] = set(UMBAU_TABLES) | {settings.history_table, "alembic_version"}
        self.filled: dict[str, snap.TableShape] = {}
        self.in_step: Step | None = None  # the step Alembic is running, if any

    # -- driving Alembic ------------------------------------------------------
    def drive(self, plan: Generator[Step, BaseException | None, None]) -> None:
        """Run ``plan``'s steps through env.py; a failed step is thrown into the plan,
        and env.py runs again for the steps after it. An error outside a step (env.py
        itself, or the checks between steps) ends the run."""
        pending: BaseException | None = None
        started = False
        while True:
            def fn(rev: tuple[str, ...], context: Any, failed: BaseException | None = pending,
                   first: bool = not started) -> Iterator[Any]:
                self._exclude_version_table(context)
                return self._steps(plan, failed, first)

            started = True
            self.in_step = None
            try:
                bridge.run_env(self.project, fn, connection=self.conn)
                self._commit()
                return
            except UmbauError:
                self._rollback()
                raise
            except Exception as exc:
                self._rollback()
                if self.in_step is None:
                    # Not a step's failure: retrying would fail the same way, forever.
                    raise MigrationFailed(f"env.py failed outside a revision step: "
                                          f"{reason(exc)}; fix it and rerun umbau test") from exc
                pending = exc  # the plan decides what a failed step means

    def _steps(self, plan: Generator[Step, BaseException | None, None],
               failed: BaseException | None, first: bool) -> Iterator[Any]:
        try:
            if failed is not None:
                step = plan.throw(failed)
            elif first:
                step = next(plan)
            else:
                return
        except StopIteration:
            return
        while True:
            self._commit()  # Alembic opens its own transaction per step
            self.in_step = step
            yield bridge.revision_step(self.project, step[0], upgrade=step[1])
            self.in_step = None
            try:
                step = next(plan)
            except StopIteration:
                return

    def _exclude_version_table(self, context: Any) -> None:
        table = getattr(context, "version_table", None) or "alembic_version"
        schema = getattr(context, "version_table_schema", None)
        self.excluded.add(snap.display_name(schema or "public", table))

    def _commit(self) -> None:
        if self.conn.in_transaction():
            self.conn.commit()

    def _rollback(self) -> None:
        if self.conn.in_transaction():
            self.conn.rollback()

    # -- observing ------------------------------------------------------------
    def snapshot(self) -> snap.Snapshot:
        taken = snap.take(self.conn, self.excluded)
        self._commit()
        return taken

    def fingerprints(self, snapshot: snap.Snapshot,
                     only: list[str] | None = None) -> dict[str, str]:
        tables = snapshot.tables if only is None else {t: snapshot.tables[t] for t in only}
        found = table_fingerprints(self.conn, tables)
        self._commit()
        return found

    def fill(self, current: snap.Snapshot, prints: dict[str, str]) -> dict[str, str]:
        """Generated rows into every table that is new, changed since its last fill, or
        empty, so that each step meets tables that hold rows in all their columns.
        Returns the fingerprints of ``current`` after the fill: of every table, because
        an insert may write elsewhere too (triggers), and a stale fingerprint would make
        such a table look touched by the step and leave its rows unchecked."""
        which = [t for t, shape in current.tables.items()
                 if self.filled.get(t) != shape or row_count(prints.get(t)) == 0]
        if not which:
            return prints
        self.rows.fill(self.conn, current.tables, which)
        self._commit()
        self.filled.update({t: current.tables[t] for t in which})
        return self.fingerprints(current)

    def truncate_all(self, current: snap.Snapshot) -> None:
        if current.tables:
            names = ", ".join(t.qualified for t in current.tables.values())
            self.conn.execute(text(f"TRUNCATE {names} CASCADE"))
            self._commit()

    # -- the stairway -----------------------------------------------------------
    def stairway(self, order: list[str]) -> bool:
        """Run the stairway over ``order``; True when it reached the last revision."""
        finished: list[bool] = []
        emit(self.on_event, Event("plan", total=len(order), direction="test"))
        self.drive(self._plan(order, finished))
        for check in ("stairway", "data"):
            if check in self.options.skip:
                self.report.skip(check, "switched off")
            elif check == "data" and "stairway" in self.options.skip:
                # Rows are compared across downgrades: without them only the
                # "works only on empty tables" part of the check ran.
                self.report.skip(check, "rows are compared across downgrades: the stairway "
                                 "is switched off")
            elif finished:
                self.report.passed(check)
            else:
                self.report.skip(check, "the stairway stopped at a failed upgrade")
        return bool(finished)

    def _plan(self, order: list[str], finished: list[bool]) -> Generator[Step, Any, None]:
        current = self.snapshot()
        prints = self.fingerprints(current)
        for rev in order:
            info = self.project.get(rev)
            timing = RevisionTiming(rev, info.message)
            self.report.revisions.append(timing)
            emit(self.on_event, Event("step_start", revision=rev, message=info.message,
                                      direction="test"))
            after = yield from self._one_revision(rev, current, prints, timing)
            if after is None:
                return
            current, prints = after
            if self.options.lint is not None:
                timing.lint = self.options.lint(rev)
            emit(self.on_event, Event("step_done", revision=rev, message=info.message,
                                      direction="test", duration=timing.upgrade_s))
        finished.append(True)

    def _one_revision(self, rev: str, before: snap.Snapshot, prints: dict[str, str],
                      timing: RevisionTiming) -> Generator[Step, Any, _State | None]:
        """Upgrade, downgrade, upgrade ``rev``; the snapshot and row fingerprints after
        it, None to stop."""
        prints_before = self.fill(before, prints)
        began = time.monotonic()
        try:
            yield rev, True
        except Exception as exc:
            if not any(row_count(p) for p in prints_before.values()):
                self.report.fail("upgrade", f"upgrade failed: {reason(exc)}", rev)
                return None
            self.truncate_all(before)
            prints_before = self.fingerprints(before)
            began = time.monotonic()
            try:
                yield rev, True
            except Exception:
                self.report.fail("upgrade", f"upgrade failed: {reason(exc)}", rev)
                return None
            self.report.fail("data", "the upgrade works only on empty tables: with generated "
                             f"rows it fails with: {reason(exc)}", rev)
        timing.upgrade_s = time.monotonic() - began
        after = self.snapshot()
        if "stairway" in self.options.skip:
            return after, self.fingerprints(after)
        prints_after = self.fingerprints(after)
        untouched = [t for t, shape in before.tables.items()
                     if after.tables.get(t) == shape
                     and prints_before.get(t) == prints_after.get(t)]
        try:
            self.project.check_downgradable(rev)
        except IrreversibleRevision as exc:
            self.report.fail("stairway", str(exc), rev)
            return after, prints_after
        began = time.monotonic()
        try:
            yield rev, False
        except Exception as exc:  # rolled back: still at ``after``
            if not any(row_count(p) for p in prints_after.values()):
                self.report.fail("stairway", f"downgrade failed: {reason(exc)}", rev)
                return after, prints_after
            # Try once more on empty tables, to tell a downgrade that cannot take these
            # rows from one that cannot run at all. Rows are gone: no row comparison.
            self.truncate_all(after)
            untouched = []
            began = time.monotonic()
            try:
                yield rev, False
            except Exception:
                self.report.fail("stairway", f"downgrade failed: {reason(exc)}", rev)
                return after, self.fingerprints(after)
            self._downgrade_refused_rows(rev, exc)
        timing.downgrade_s = time.monotonic() - began
        down = self.snapshot()
        self._compare(rev, "stairway", before.diff(down),
                      "the downgrade does not reverse the upgrade: after it the schema differs "
                      "from before the upgrade (expected -> found)")
        lost = self._compare_rows(rev, untouched, prints_before,
                                  self.fingerprints(down, untouched),
                                  "before the upgrade", "after the downgrade")
        began = time.monotonic()
        try:
            yield rev, True
        except Exception as exc:
            self.report.fail("stairway", "the upgrade fails after the downgrade: "
                             f"{reason(exc)}", rev)
            return None
        timing.reupgrade_s = time.monotonic() - began
        again = self.snapshot()
        self._compare(rev, "stairway", after.diff(again),
                      "upgrading again after the downgrade leaves a different schema than the "
                      "first upgrade (expected -> found)")
        prints_again = self.fingerprints(again)
        self._compare_rows(rev, [t for t in untouched if t not in lost], prints_after,
                           prints_again,
                           "after the upgrade", "after downgrade and upgrade again")
        return again, prints_again

    def _downgrade_refused_rows(self, rev: str, exc: BaseException) -> None:
        """A deliberate refusal (RAISE EXCEPTION, or an exception the revision raises
        itself) guards data the old schema cannot hold: a note. Any other error is a
        downgrade that works only on empty tables: a failure."""
        deliberate = sqlstate(exc) == "P0001" or not isinstance(exc, sa_exc.DBAPIError)
        if deliberate:
            self.report.notes.append(f"{rev}: the downgrade refuses the generated rows "
                                     f"({reason(exc)}); on empty tables it passes")
        else:
            self.report.fail("data", "the downgrade works only on empty tables: with "
                             f"generated rows it fails with: {reason(exc)}", rev)

    def _compare(self, rev: str, check: str, diffs: list[str], message: str) -> None:
        if diffs and check not in self.options.skip:
            self.report.fail(check, message, rev, diffs)

    def _compare_rows(self, rev: str, tables: list[str], expected: dict[str, str],
                      found: dict[str, str], when_expected: str, when_found: str) -> set[str]:
        """Report tables whose rows differ; returns their names."""
        if "data" in self.options.skip:
            return set()
        details, differ = [], set()
        for table in tables:
            if expected.get(table) != found.get(table):
                differ.add(table)
                was, now = row_count(expected.get(table)), row_count(found.get(table))
                change = f"{was} rows {when_expected}, {now} {when_found}" if was != now \
                    else f"the same {was} rows count, but their values changed {when_found}"
                details.append(f"table {table}: {change}")
        if details:
            self.report.fail("data", "rows of tables this revision does not touch did not "
                             "survive", rev, details)
        return differ

    # -- at head ----------------------------------------------------------------
    def second_upgrade(self) -> None:
        before = self.snapshot()
        prints = self.fingerprints(before)
        planned: list[Any] = []

        def fn(rev: tuple[str, ...], context: Any) -> list[Any]:
            planned.extend(bridge.upgrade_fn(self.project, "heads")(rev, context))
            return planned

        try:
            bridge.run_env(self.project, fn, connection=self.conn)
            self._commit()
        except UmbauError:
            self._rollback()
            raise
        except Exception as exc:  # a step it should not have planned failed
            self._rollback()
            self.report.fail("idempotent", "a second `upgrade heads` ran steps, and one "
                             f"failed: {reason(exc)}", None,
                             [f"would run {s}" for s in planned])
            return
        after = self.snapshot()
        details = [f"would run {s}" for s in planned] + before.diff(after)
        if after.tables.keys() == before.tables.keys():
            self._compare_rows_into(details, prints, self.fingerprints(after))
        if details:
            self.report.fail("idempotent", "a second `upgrade heads` changed something", None,
                             details)
        else:
            self.report.passed("idempotent")

    def _compare_rows_into(self, details: list[str], expected: dict[str, str],
                           found: dict[str, str]) -> None:
        for table, value in expected.items():
            if found.get(table) != value:
                details.append(f"table {table}: rows changed")

    def drift(self) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from umbau.commands.doctor import _describe_diff, load_metadata

        metadata = load_metadata(self.settings)
        excluded = {name.rpartition(".")[2] for name in self.excluded}

        def include_name(name: str | None, type_: str, parent: Any) -> bool:
            return not (type_ == "table" and name in excluded)

        context = MigrationContext.configure(self.conn, opts={"include_name": include_name,
                                                              "compare_type": True})
        diffs = compare_metadata(context, metadata)
        self._rollback()
        if diffs:
            self.report.fail("drift", "the models and the database at head differ: write a "
                             "revision (umbau new --autogenerate)", None,
                             [_describe_diff(d) for d in diffs])
        else:
            self.report.passed("drift")
