"""The stairway of ``umbau test``: every revision, oldest first, upgraded with generated
rows in its tables, downgraded and upgraded again, with catalog snapshots and row
fingerprints compared after each step.

One run names every defect: each revision's first upgrade is committed, and its
downgrade and second upgrade are undone after their snapshots are taken (a rolled-back
transaction; a copy of the database for revisions that leave the transaction, see
:mod:`umbau.testing.driver`). So a downgrade that leaves something behind, or a second
upgrade that fails, is reported and the next revision starts from the state after the
first upgrade. Only an upgrade that fails on empty tables ends the stairway: the
revisions after it cannot be reached.

Verdicts: defects are failures of a check; downgrades that are irreversible by design
(:mod:`umbau.testing.verdicts`) are listed apart and do not fail the run; a failure
caused by a generated value is a note naming table, column and value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import IrreversibleRevision, UmbauError
from umbau.events import Event, EventHandler, emit
from umbau.postgres import snapshot as snap
from umbau.postgres import tracking
from umbau.postgres.connect import sqlstate
from umbau.postgres.errors import describe_error
from umbau.settings import Settings
from umbau.testing.data import RowGenerator, row_count, table_fingerprints
from umbau.testing.driver import Driver, Step, truncate
from umbau.testing.foresight import later_foreign_keys
from umbau.testing.report import RevisionTiming, TestReport
from umbau.testing.setup_hook import Setup, run_setup
from umbau.testing.verdicts import Irreversible, Judge, refused_before_sql

# Tables umbau owns; they are neither compared nor filled.
UMBAU_TABLES = frozenset({"umbau_history", "umbau_backfills", "umbau_backfill_chunks",
                          "umbau_releases"})

LintHook = Callable[[str], list[dict[str, Any]]]
Steps = Generator[Step, None, Any]
Groups = set[str] | None  # snapshot groups a step may have changed; None: any


@dataclass
class TestOptions:
    """How ``umbau test`` runs.

    ``setup``: an ``.sql`` file, ``module:function`` or a callable taking the connection,
    run before the first revision (histories that start from a squashed schema).
    ``lint``: called with each revision id, returns that revision's lint findings.
    ``skip``: checks switched off (``stairway``, ``data``, ``drift``, ``idempotent``).
    """

    __test__ = False

    rows_per_table: int = 3
    setup: Setup | None = None
    lint: LintHook | None = None
    skip: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class _State:
    """The schema and the row fingerprints of the database at one moment."""

    schema: snap.Snapshot
    prints: dict[str, str]

    @property
    def has_rows(self) -> bool:
        return any(row_count(p) for p in self.prints.values())


def run_checks(settings: Settings, url: str, options: TestOptions | None = None, *,
               on_event: EventHandler | None = None) -> TestReport:
    """Run every check on the (throwaway, empty) database at ``url``.

    Returns the report; raises SettingsError for a bad ``[tool.umbau.test]`` or setup
    hook, MigrationFailed when env.py fails outside a revision step.
    """
    options = options or TestOptions()
    report = TestReport()
    began = time.monotonic()
    project = bridge.Project(settings, url)
    _check_single_head(report, project.heads())
    stairway = Stairway(settings, project, url, report, options, on_event)
    try:
        if options.setup is not None:
            run_setup(settings, stairway.driver.conn, options.setup)
        stairway.run([r.revision for r in project.revisions()])
        if stairway.reached_head:
            _after_head(stairway, options)
        else:
            for check in ("drift", "idempotent"):
                report.skip(check, "the stairway stopped at a failed upgrade")
    finally:
        stairway.driver.close()
    report.notes += [f"table {t}: {n}" for t, n in sorted(stairway.rows.notes.items())]
    report.duration_s = time.monotonic() - began
    return report


def _check_single_head(report: TestReport, heads: tuple[str, ...]) -> None:
    if len(heads) == 1:
        report.passed("single-head")
    elif not heads:
        report.skip("single-head", "no revisions")
    else:
        report.fail("single-head", f"the scripts have {len(heads)} heads: merge them with "
                    f"`umbau merge -m \"merge heads\" {' '.join(heads)}`", None, list(heads))


def _after_head(stairway: Stairway, options: TestOptions) -> None:
    report = stairway.report
    if "idempotent" in options.skip:
        report.skip("idempotent", "switched off")
    else:
        stairway.second_upgrade()
    if "drift" in options.skip:
        report.skip("drift", "switched off")
    elif not stairway.settings.metadata:
        report.skip("drift", "no metadata setting (module:attribute of the models' MetaData)")
    else:
        stairway.drift()


class Stairway:
    """Plans the steps of every revision and judges what they did."""

    def __init__(self, settings: Settings, project: bridge.Project, url: str,
                 report: TestReport, options: TestOptions,
                 on_event: EventHandler | None) -> None:
        self.settings = settings
        self.project = project
        self.url = url
        self.report = report
        self.options = options
        self.on_event = on_event
        self.judge = Judge(settings, project)
        self.rows = RowGenerator(rows_per_table=options.rows_per_table,
                                 later_keys=later_foreign_keys(project))
        self.excluded: set[str] = set(UMBAU_TABLES) | {settings.history_table, "alembic_version"}
        self.filled: dict[str, snap.TableShape] = {}
        self.driver = Driver(project, url, on_context=self._exclude_version_table)
        self.tracker: tracking.Tracker | None = None
        self.reached_head = False

    @property
    def conn(self) -> Connection:
        return self.driver.conn

    def _exclude_version_table(self, context: Any) -> None:
        table = getattr(context, "version_table", None) or "alembic_version"
        schema = getattr(context, "version_table_schema", None)
        self.excluded.add(snap.display_name(schema or "public", table))

    # -- observing ------------------------------------------------------------------
    def snapshot(self) -> snap.Snapshot:
        return snap.take(self.conn, self.excluded)

    def state(self, only: list[str] | None = None) -> _State:
        schema = self.snapshot()
        return _State(schema, self.fingerprints(schema, only))

    def fingerprints(self, schema: snap.Snapshot, only: Iterable[str] | None = None
                     ) -> dict[str, str]:
        tables = schema.tables if only is None else {t: schema.tables[t] for t in only
                                                     if t in schema.tables}
        return table_fingerprints(self.conn, tables)

    def observe(self, previous: _State, all_rows: bool = False) -> tuple[_State, Groups]:
        """The state now, read where the step can have changed it (linear time): the
        tables the event triggers name, and the rows of tables the transaction wrote
        (``all_rows``: of every table). Returns the state and the snapshot groups that
        may differ from ``previous`` (None: any)."""
        if self.tracker is None:
            return self.state(), None
        schema, groups = self.tracker.observe(self.conn, previous.schema)
        if groups is None or all_rows:
            return _State(schema, self.fingerprints(schema)), groups
        return _State(schema, self._patched_prints(previous, schema, groups)), groups

    def _patched_prints(self, previous: _State, schema: snap.Snapshot,
                        changed: Iterable[str]) -> dict[str, str]:
        changed = (set(changed) | tracking.written_tables(self.conn, schema)) \
            & set(schema.tables)
        prints = {t: p for t, p in previous.prints.items()
                  if t in schema.tables and t not in changed}
        prints.update(self.fingerprints(schema, changed))
        return prints

    def why(self, exc: BaseException) -> str:
        """The error with PostgreSQL's DETAIL and HINT, and the revision file and line."""
        where = bridge.revision_location(exc, self.project.script)
        if where is None:
            return describe_error(exc)
        path = Path(where[0])
        shown = path.relative_to(self.settings.root) if path.is_relative_to(
            self.settings.root) else path
        return f"{describe_error(exc)} (at {shown}:{where[1]})"

    # -- rows -----------------------------------------------------------------------
    def fill(self, now: _State) -> _State:
        """Generated rows into every table that is new, changed since its last fill, or
        empty, so that each step meets tables that hold rows in all their columns; the
        fill is committed. Fingerprints of every table are taken again, because an
        insert may write elsewhere too (triggers)."""
        which = [t for t, shape in now.schema.tables.items()
                 if self.filled.get(t) != shape or row_count(now.prints.get(t)) == 0]
        if not which:
            return now
        self.rows.fill(self.conn, now.schema.tables, which)
        prints = self._patched_prints(now, now.schema, which) if self.tracker else \
            self.fingerprints(now.schema)
        self.driver.commit()
        self.filled.update({t: now.schema.tables[t] for t in which})
        return _State(now.schema, prints)

    def empty(self, now: _State) -> _State:
        truncate(self.conn, [t.qualified for t in now.schema.tables.values()])
        return _State(now.schema, self.fingerprints(now.schema))

    def rows_refused(self, rev: str, step: str, exc: BaseException) -> None:
        """A step that passes on empty tables but failed with generated rows: a note when
        a generated value is to blame (named), else a failure of ``with-rows``."""
        why = self.why(exc)
        culprit = self.rows.culprit(why)
        if culprit is not None:
            self.report.notes.append(f"{rev}: the {step} refuses a generated value (table "
                                     f"{culprit[0]}, column {culprit[1]}, value "
                                     f"{culprit[2]!r}): {why}; on empty tables it passes")
        elif _deliberate(exc):  # the revision's own guard (RAISE EXCEPTION, raise ...)
            self.report.notes.append(f"{rev}: the {step} refuses the generated rows "
                                     f"({why}); on empty tables it passes")
        elif "with-rows" not in self.options.skip:
            self.report.fail("with-rows", f"the {step} works only on empty tables: with "
                             f"generated rows it fails with: {why}", rev)

    # -- the stairway -----------------------------------------------------------------
    def run(self, order: list[str]) -> None:
        """Every revision of ``order``; sets the stairway's checks."""
        emit(self.on_event, Event("plan", total=len(order), direction="test"))
        if tracking.install(self.conn):
            self.excluded |= tracking.EXCLUDED
            self.tracker = tracking.Tracker(self.excluded)
        self.driver.run(self._plan(order))
        if self.reached_head:
            self.report.passed("upgrade")
        for check in ("stairway", "with-rows", "data"):
            if check in self.options.skip:
                self.report.skip(check, "switched off")
            elif check == "data" and "stairway" in self.options.skip:
                # Rows are compared across downgrades: without them only the
                # "works only on empty tables" part of the check ran.
                self.report.skip(check, "rows are compared across downgrades: the stairway "
                                 "is switched off")
            elif self.reached_head:
                self.report.passed(check)
            else:
                self.report.skip(check, "the stairway stopped at a failed upgrade")

    def _plan(self, order: list[str]) -> Steps:
        now = self.state()
        for rev in order:
            info = self.project.get(rev)
            timing = RevisionTiming(rev, info.message)
            self.report.revisions.append(timing)
            emit(self.on_event, Event("step_start", revision=rev, message=info.message,
                                      direction="test"))
            first = yield from self._first_upgrade(rev, now, timing)
            if first is None:
                return
            before, now, groups = first
            if "stairway" not in self.options.skip:
                yield from self._round_trip(rev, before, now, groups, timing)
            if self.options.lint is not None:
                timing.lint = self.options.lint(rev)
            emit(self.on_event, Event("step_done", revision=rev, message=info.message,
                                      direction="test", duration=timing.upgrade_s))
        self.reached_head = True

    def _all_rows(self, rev: str, step: Step) -> bool:
        """Rows of every table are read again after steps that commit by themselves (the
        transaction's counters are gone) and of revisions that TRUNCATE (not counted)."""
        return not step.transactional or _source_has(self.project, rev, "truncate")

    def _step(self, rev: str, upgrade: bool) -> Step:
        return Step(rev, upgrade, transactional=not _leaves_transaction(self.project, rev))

    def _first_upgrade(self, rev: str, now: _State, timing: RevisionTiming
                       ) -> Generator[Step, None, tuple[_State, _State, Groups] | None]:
        """Upgrade with rows; on failure once more on empty tables. Returns the states
        before and after (committed) and the groups the upgrade changed, or None when
        the upgrade fails on empty tables."""
        before = self.fill(now)
        step = self._step(rev, True)
        began = time.monotonic()
        try:
            yield step
        except Exception as exc:
            self.driver.back()
            if not before.has_rows:
                self.report.fail("upgrade", f"upgrade failed: {self.why(exc)}", rev)
                return None
            before = self.empty(before)
            self.driver.commit()
            began = time.monotonic()
            try:
                yield step
            except Exception:
                self.driver.back()
                self.report.fail("upgrade", f"upgrade failed: {self.why(exc)}", rev)
                return None
            self.rows_refused(rev, "upgrade", exc)
        timing.upgrade_s = time.monotonic() - began
        after, groups = self.observe(before, all_rows=self._all_rows(rev, step))
        self.driver.commit()
        return before, after, groups

    def _round_trip(self, rev: str, before: _State, after: _State, groups: Groups,
                    timing: RevisionTiming) -> Steps:
        """Downgrade and upgrade again, compare, and go back to ``after``."""
        if self._skips_downgrade(rev, before, after, groups):
            return
        step = self._step(rev, False)
        if not step.transactional:
            self.driver.checkpoint()
        down = yield from self._downgrade(rev, before, after, groups, timing)
        if down is not None:
            yield from self._upgrade_again(rev, after, *down, timing)
        self.driver.back()
        self.driver.discard()

    def _skips_downgrade(self, rev: str, before: _State, after: _State,
                         groups: Groups) -> bool:
        """True (and reported) when the downgrade is not to be run: irreversible by
        design, or a missing / empty downgrade of a schema change (a defect)."""
        changed = bool(before.schema.diff(after.schema, groups))
        reason = self.judge.before_downgrade(rev, changed)
        if reason is not None:
            self.report.irreversible.append(Irreversible(rev, reason))
            return True
        try:
            self.project.check_downgradable(rev)
        except IrreversibleRevision as exc:
            self.report.fail("stairway", str(exc), rev)
            return True
        return False

    def _downgrade(self, rev: str, before: _State, after: _State, groups: Groups,
                   timing: RevisionTiming
                   ) -> Generator[Step, None, tuple[_State, Groups, list[str]] | None]:
        """Downgrade; once more on empty tables if it fails with rows. Returns the state
        after it, the groups it changed and the tables whose rows are still to be
        compared; None when the downgrade failed."""
        untouched = [t for t, shape in before.schema.tables.items()
                     if after.schema.tables.get(t) == shape
                     and before.prints.get(t) == after.prints.get(t)]
        step, base = self._step(rev, False), after
        began = time.monotonic()
        try:
            yield step
        except Exception as exc:
            refusal = refused_before_sql(exc, self.driver.statements)
            self.driver.back()
            if refusal is not None:
                self.report.irreversible.append(Irreversible(rev, refusal))
                return None
            if not after.has_rows:
                self.report.fail("stairway", f"downgrade failed: {self.why(exc)}", rev)
                return None
            # Once more on empty tables, to tell a downgrade that cannot take these rows
            # from one that cannot run at all. Rows are gone: no row comparison.
            base = self.empty(after)
            untouched, began = [], time.monotonic()
            try:
                yield step
            except Exception:
                self.driver.back()
                self.report.fail("stairway", f"downgrade failed: {self.why(exc)}", rev)
                return None
            self.rows_refused(rev, "downgrade", exc)
        timing.downgrade_s = time.monotonic() - began
        down, changed = self.observe(base, all_rows=self._all_rows(rev, step))
        self._compare(rev, before.schema.diff(down.schema, _union(groups, changed)),
                      "the downgrade does not reverse the upgrade: after it the schema differs "
                      "from before the upgrade (expected -> found)")
        lost = self._compare_rows(rev, untouched, before.prints, down.prints,
                                  "before the upgrade", "after the downgrade")
        return down, changed, [t for t in untouched if t not in lost]

    def _upgrade_again(self, rev: str, after: _State, down: _State, groups: Groups,
                       untouched: list[str], timing: RevisionTiming) -> Steps:
        step = self._step(rev, True)
        began = time.monotonic()
        try:
            yield step
        except Exception as exc:
            self.driver.back()
            self.report.fail("stairway", "the upgrade fails after the downgrade: "
                             f"{self.why(exc)}", rev)
            return
        timing.reupgrade_s = time.monotonic() - began
        again, changed = self.observe(down, all_rows=self._all_rows(rev, step))
        self._compare(rev, after.schema.diff(again.schema, _union(groups, changed)),
                      "upgrading again after the downgrade leaves a different schema than the "
                      "first upgrade (expected -> found)")
        self._compare_rows(rev, untouched, after.prints, again.prints,
                           "after the upgrade", "after downgrade and upgrade again")

    def _compare(self, rev: str, diffs: list[str], message: str) -> None:
        if diffs:
            self.report.fail("stairway", message, rev, diffs)

    def _compare_rows(self, rev: str, tables: list[str], expected: dict[str, str],
                      found: dict[str, str], when_expected: str, when_found: str) -> set[str]:
        """Report tables whose rows differ; returns their names."""
        if "data" in self.options.skip:
            return set()
        details, differ = [], set()
        for table in tables:
            if expected.get(table) != found.get(table):
                differ.add(table)
                details.append(f"table {table}: " + _row_change(
                    row_count(expected.get(table)), row_count(found.get(table)),
                    when_expected, when_found))
        if details:
            self.report.fail("data", "rows of tables this revision does not touch did not "
                             "survive", rev, details)
        return differ

    # -- at head ----------------------------------------------------------------------
    def second_upgrade(self) -> None:
        """``upgrade heads`` once more must plan nothing and change nothing."""
        self.driver.commit()
        before = self.state()
        planned: list[Any] = []

        def fn(rev: tuple[str, ...], context: Any) -> list[Any]:
            planned.extend(bridge.upgrade_fn(self.project, "heads")(rev, context))
            return planned

        try:
            self.driver.commit()
            bridge.run_env(self.project, fn, connection=self.conn)
            self.driver.commit()
        except UmbauError:
            self.driver.rollback()
            raise
        except Exception as exc:  # a step it should not have planned failed
            self.driver.rollback()
            self.report.fail("idempotent", "a second `upgrade heads` ran steps, and one "
                             f"failed: {self.why(exc)}", None,
                             [f"would run {s}" for s in planned])
            return
        after = self.state()
        details = [f"would run {s}" for s in planned] + before.schema.diff(after.schema)
        details += [f"table {t}: rows changed" for t, v in before.prints.items()
                    if after.prints.get(t) != v]
        if details:
            self.report.fail("idempotent", "a second `upgrade heads` changed something", None,
                             details)
        else:
            self.report.passed("idempotent")

    def drift(self) -> None:
        """Models against the database at head: :func:`umbau.testing.drift.differences`."""
        from umbau.testing.drift import differences

        self.driver.commit()
        found = differences(self.settings, self.conn, self.url, self.excluded)
        self.driver.rollback()
        if found:
            self.report.fail("drift", "the models and the database at head differ "
                             "(models -> database): write a revision (umbau new "
                             "--autogenerate) or fix the models", None, found)
        else:
            self.report.passed("drift")


def _union(*groups: Groups) -> Groups:
    """All groups of several steps; None (any) when one of them is."""
    found: set[str] = set()
    for some in groups:
        if some is None:
            return None
        found |= some
    return found


def _row_change(was: int, now: int, when_expected: str, when_found: str) -> str:
    if was != now:
        return f"{was} rows {when_expected}, {now} {when_found}"
    return f"the same {was} rows count, but their values changed {when_found}"


def _deliberate(exc: BaseException) -> bool:
    """RAISE EXCEPTION in SQL (P0001), or an exception the revision raises itself."""
    return sqlstate(exc) == "P0001" or getattr(exc, "orig", None) is None


# What in a revision file means it commits by itself: Alembic's autocommit_block, umbau's
# ops helpers (concurrent index builds, VALIDATE in its own transaction, backfills open
# autocommit blocks of their own) and explicit commits.
_COMMITS_ITSELF = ("autocommit_block", "from umbau import ops", "umbau.ops", ".commit(")


def _leaves_transaction(project: bridge.Project, rev: str) -> bool:
    """Revisions that commit by themselves: their round trip cannot be rolled back, so it
    runs on a copy of the database."""
    return any(_source_has(project, rev, word) for word in _COMMITS_ITSELF)


def _source_has(project: bridge.Project, rev: str, word: str) -> bool:
    """True when the revision file mentions ``word`` (case-insensitive)."""
    try:
        return word in Path(project.get(rev).path).read_text(encoding="utf-8").lower()
    except OSError:
        return False
