"""umbau's errors: one tree, each class with the exit code the CLI maps it to.

::

    UmbauError                          1  anything umbau refuses or fails to do
    ├── UsageError                      2  bad arguments
    ├── SettingsError                   2  no settings found, bad key or value
    ├── DatabaseError                   5  cannot reach or use the server
    │   ├── DatabaseUnreachable         5  host/port or socket not answering
    │   └── AuthenticationFailed        5  wrong user or password
    ├── RevisionGraphError              4  the scripts and the database disagree
    │   ├── MultipleHeads               4  several heads where one is needed
    │   └── UnknownDatabaseRevision     4  alembic_version names no known script
    ├── ScriptError                     8  revision files that cannot be loaded
    │   ├── RevisionFileError           8  syntax error, import error (file, line)
    │   ├── BrokenRevisionGraph         8  cycle, missing down_revision
    │   └── OfflineRenderError          8  a revision cannot be rendered as SQL (--sql)
    ├── UnknownRevision                 9  a target no script knows
    ├── LockWaitExceeded                6  another migrator held the lock too long
    │   └── FleetBusy                   6  another fleet run is in progress on the control db
    ├── MigrationFailed                 7  a revision step failed and was rolled back
    │   └── RetriesExhausted            7  lock timeouts / deadlocks beyond the retry limit
    ├── ConfirmationRequired           10  destructive step needs --yes
    ├── IrreversibleRevision           11  downgrade() missing, empty or refusing
    ├── EnvironmentNotShared           12  env.py ignores the connection umbau hands over
    ├── BackupFailed                   13  pg_dump/pg_restore failed or cannot run
    │   ├── PgToolMissing              13  pg_dump/pg_restore not found
    │   ├── PgToolTooOld               13  client major version older than the server's
    │   ├── InsufficientDiskSpace      13  less free space than the database needs
    │   └── OwnerRoleMissing           26  restore: the backup's owner roles are missing
    ├── BackupCorrupt                  14  checksum, archive or restore-test check failed
    ├── UnsafeMigration                15  upgrade refused: error-level lint findings
    ├── TargetNotEmpty (Confirmation…) 10  restore/copy into a database that has tables
    ├── BackfillError                  20  a backfill refused or failed (umbau.backfill)
    │   ├── NoUsableKey                20  table without a primary key / unique NOT NULL key
    │   ├── BackfillDefinitionChanged  20  same name, different definition
    │   ├── BackfillFailed             20  a batch failed (transform, SQL, retries); resumable
    │   ├── BackfillInUse              24  --restart while a live worker owns the backfill
    │   ├── BackfillStateLost          25  the state vanished under a running backfill
    │   └── BackfillInterrupted   130/143  SIGINT/SIGTERM: stopped after the current batches
    ├── VerificationFailed             21  rows that do not satisfy the backfill's verify
    ├── PartiallyApplied (Migration…)  16  a revision left its transaction, then failed
    ├── NoMatchingRevision             17  baseline: no revision's schema matches the database
    ├── NoChangesDetected              18  new --autogenerate: the models match the database
    ├── EnvironmentFailed              19  env.py fails to load or run (import error, greenlet)
    ├── MissingExtensions              22  umbau test: no server at hand has the extensions
    ├── LintRuleError (UsageError)     28  a custom lint rule's id is taken or malformed
    ├── LintUnknown                    29  upgrade refused: a pending revision could not be linted
    ├── OpsRefused                     30  an ops helper refused: unsafe default, contract too early
    ├── IndexBuildFailed               31  a concurrent index stayed invalid after its rebuilds
    ├── FleetFailed                    32  fleet targets failed, a canary failed, budget spent
    ├── FleetStopped                   33  a fleet run stopped by SIGTERM/SIGINT; rerun resumes
    ├── PayloadError                   34  a payload chain or document umbau cannot walk
    ├── ReleaseFailed                  35  a release step failed; the release was rolled back
    ├── ReleaseRollbackFailed          36  a release step failed and its rollback failed too
    ├── ReleasePlanError               37  a release plan that cannot be read or run as written
    ├── ReleaseBusy                    38  another operator is running a release on the database
    ├── EnvFileError                   39  release env step: missing file or required key, bad file
    ├── CacheError                     40  release cache step: Redis unreachable, redis missing
    └── HealthCheckFailed              40  release health step: no expected status by the deadline
    └── MetricsExportFailed            41  --metrics-port/--pushgateway/--metrics-textfile unusable

    KeyboardInterrupt (not an UmbauError: it unwinds like Ctrl-C, through every cleanup)
    └── Terminated                    143  SIGTERM during backup, restore, copy or verify

Exit code 3 is not an error: ``umbau check`` returns it when revisions are pending.
Every message is one line that says what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PENDING = 3
EXIT_GRAPH = 4
EXIT_DATABASE = 5
EXIT_LOCK_WAIT = 6
EXIT_MIGRATION = 7
EXIT_SCRIPTS = 8
EXIT_UNKNOWN_REVISION = 9
EXIT_CONFIRMATION = 10
EXIT_IRREVERSIBLE = 11
EXIT_ENVIRONMENT = 12
EXIT_BACKUP = 13
EXIT_BACKUP_CORRUPT = 14
EXIT_UNSAFE = 15
EXIT_PARTIAL = 16
EXIT_NO_MATCH = 17
EXIT_NO_CHANGES = 18
EXIT_ENV_FAILED = 19
EXIT_BACKFILL = 20
EXIT_VERIFICATION = 21
EXIT_MISSING_EXTENSIONS = 22
EXIT_BACKFILL_IN_USE = 24
EXIT_BACKFILL_STATE_LOST = 25
EXIT_OWNER_ROLE_MISSING = 26
EXIT_LINT_RULE = 28
EXIT_LINT_UNKNOWN = 29
EXIT_OPS_REFUSED = 30
EXIT_INDEX_BUILD = 31
EXIT_FLEET_FAILED = 32
EXIT_FLEET_STOPPED = 33
EXIT_PAYLOAD = 34
EXIT_RELEASE_FAILED = 35
EXIT_RELEASE_ROLLBACK_FAILED = 36
EXIT_RELEASE_PLAN = 37
EXIT_RELEASE_BUSY = 38
EXIT_ENV_FILE = 39
EXIT_RELEASE_SERVICE = 40  # the release's cache and health steps
EXIT_METRICS = 41  # 41-42: observability (metrics exposition)
EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it


class UmbauError(Exception):
    """Base of every error umbau raises on purpose."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(UmbauError):
    exit_code = EXIT_USAGE


class SettingsError(UmbauError):
    exit_code = EXIT_USAGE


class DatabaseError(UmbauError):
    exit_code = EXIT_DATABASE


class DatabaseUnreachable(DatabaseError):
    pass


class AuthenticationFailed(DatabaseError):
    pass


class RevisionGraphError(UmbauError):
    exit_code = EXIT_GRAPH


class MultipleHeads(RevisionGraphError):
    def __init__(self, message: str, heads: Sequence[str]) -> None:
        super().__init__(message)
        self.heads = tuple(heads)


class UnknownDatabaseRevision(RevisionGraphError):
    def __init__(self, message: str, revisions: Sequence[str]) -> None:
        super().__init__(message)
        self.revisions = tuple(revisions)


class ScriptError(UmbauError):
    exit_code = EXIT_SCRIPTS


class RevisionFileError(ScriptError):
    def __init__(self, message: str, path: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class BrokenRevisionGraph(ScriptError):
    pass


class OfflineRenderError(ScriptError):
    """A revision that cannot be rendered in Alembic's offline (--sql) mode."""


class UnknownRevision(UmbauError):
    exit_code = EXIT_UNKNOWN_REVISION

    def __init__(self, message: str, revision: str, close: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.revision = revision
        self.close = tuple(close)


class LockWaitExceeded(UmbauError):
    exit_code = EXIT_LOCK_WAIT


class MigrationFailed(UmbauError):
    exit_code = EXIT_MIGRATION

    def __init__(self, message: str, revision: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.revision = revision
        self.attempts = attempts


class RetriesExhausted(MigrationFailed):
    pass


class ConfirmationRequired(UmbauError):
    exit_code = EXIT_CONFIRMATION


class IrreversibleRevision(UmbauError):
    exit_code = EXIT_IRREVERSIBLE

    def __init__(self, message: str, revision: str) -> None:
        super().__init__(message)
        self.revision = revision


class EnvironmentNotShared(UmbauError):
    exit_code = EXIT_ENVIRONMENT


class BackupFailed(UmbauError):
    exit_code = EXIT_BACKUP


class PgToolMissing(BackupFailed):
    pass


class PgToolTooOld(BackupFailed):
    def __init__(self, message: str, client_major: int, server_major: int) -> None:
        super().__init__(message)
        self.client_major = client_major
        self.server_major = server_major


class InsufficientDiskSpace(BackupFailed):
    def __init__(self, message: str, needed: int, free: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.free = free


class BackupCorrupt(UmbauError):
    exit_code = EXIT_BACKUP_CORRUPT


class TargetNotEmpty(ConfirmationRequired):
    def __init__(self, message: str, tables: Sequence[str]) -> None:
        super().__init__(message)
        self.tables = tuple(tables)


class BackfillError(UmbauError):
    exit_code = EXIT_BACKFILL


class NoUsableKey(BackfillError):
    pass


class BackfillDefinitionChanged(BackfillError):
    pass


class BackfillFailed(BackfillError):
    def __init__(self, message: str, key_range: str | None = None) -> None:
        super().__init__(message)
        self.key_range = key_range


class VerificationFailed(UmbauError):
    exit_code = EXIT_VERIFICATION

    def __init__(self, message: str, rows: int, sample: Sequence[Sequence[str]]) -> None:
        super().__init__(message)
        self.rows = rows
        self.sample = tuple(tuple(k) for k in sample)


class UnsafeMigration(UmbauError):
    """``umbau upgrade`` refused: the pending revisions have error-level lint findings."""

    exit_code = EXIT_UNSAFE

    def __init__(self, message: str, findings: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.findings = tuple(findings)


class BackfillInUse(BackfillError):
    """``backfill run --restart`` refused: a live worker still owns part of the backfill."""

    exit_code = EXIT_BACKFILL_IN_USE

    def __init__(self, message: str, owners: Sequence[str]) -> None:
        super().__init__(message)
        self.owners = tuple(owners)


class BackfillStateLost(BackfillError):
    """The backfill's state vanished (or was redeclared) while this run worked on it."""

    exit_code = EXIT_BACKFILL_STATE_LOST


class BackfillInterrupted(BackfillError):
    """SIGINT or SIGTERM stopped a backfill run after the workers' current batches.

    ``exit_code`` is 128 + the signal number, as shells report it: 130 for SIGINT, 143
    for SIGTERM.
    """

    def __init__(self, message: str, signal_number: int, rows_done: int,
                 rows_total: int | None) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number
        self.signal_number = signal_number
        self.rows_done = rows_done
        self.rows_total = rows_total

class PayloadError(UmbauError):
    """A versioned payload that cannot be upgraded: unknown kind or version, a gap or a
    cycle in the chain, a duplicate upgrader, or a step that failed (umbau.payload)."""

    exit_code = EXIT_PAYLOAD

class OwnerRoleMissing(BackupFailed):
    """A restore would fail on ``ALTER … OWNER TO``: roles that own objects in the backup
    do not exist on the target (``--no-owner`` restores without ownership)."""

    exit_code = EXIT_OWNER_ROLE_MISSING

    def __init__(self, message: str, roles: Sequence[str]) -> None:
        super().__init__(message)
        self.roles = tuple(roles)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while umbau ran a client program (``postgres.clients``): raised
    like Ctrl-C's KeyboardInterrupt, so the same cleanup runs; the CLI exits 143."""

    exit_code = EXIT_TERMINATED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

class PartiallyApplied(MigrationFailed):
    """A revision committed part of its work (``op.get_bind().commit()``, an
    ``autocommit_block``) and then failed: the database holds half of it."""

    exit_code = EXIT_PARTIAL

    def __init__(self, message: str, revision: str, attempts: int,
                 committed: Sequence[str] = ()) -> None:
        super().__init__(message, revision, attempts)
        self.committed = tuple(committed)


class NoMatchingRevision(UmbauError):
    """``umbau baseline``: no revision's schema matches the database's."""

    exit_code = EXIT_NO_MATCH


class NoChangesDetected(UmbauError):
    """``umbau new --autogenerate``: the models and the database agree, nothing to write."""

    exit_code = EXIT_NO_CHANGES


class EnvironmentFailed(UmbauError):
    """The project's env.py cannot be loaded or run (an import error, a missing module)."""

    exit_code = EXIT_ENV_FAILED

class LintRuleError(UsageError):
    """A lint rule that cannot be registered: its id is taken or malformed (custom rules)."""

    exit_code = EXIT_LINT_RULE


class LintUnknown(UmbauError):
    """``umbau upgrade`` under ``lint.gate_strict``: a pending revision could not be linted."""

    exit_code = EXIT_LINT_UNKNOWN

class MissingExtensions(UmbauError):
    """``umbau test``: the history creates extensions the test server does not ship."""

    exit_code = EXIT_MISSING_EXTENSIONS

    def __init__(self, message: str, extensions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.extensions = tuple(extensions)

class OpsRefused(UmbauError):
    """An ``umbau.ops`` helper refused to run: it would rewrite or block a busy table, or
    a contract step came before its backfill finished and verified."""

    exit_code = EXIT_OPS_REFUSED


class IndexBuildFailed(UmbauError):
    """``ops.create_index`` left no valid index after its bounded rebuilds."""

    exit_code = EXIT_INDEX_BUILD

    def __init__(self, message: str, index: str) -> None:
        super().__init__(message)
        self.index = index

class FleetFailed(UmbauError):
    """``umbau fleet upgrade``: targets failed, a canary failed or the failure budget was spent."""

    exit_code = EXIT_FLEET_FAILED


class FleetStopped(UmbauError):
    """``umbau fleet upgrade`` stopped by SIGTERM/SIGINT before every target ran."""

    exit_code = EXIT_FLEET_STOPPED


class FleetBusy(LockWaitExceeded):
    """Another ``umbau fleet upgrade`` run is in progress on the same control database."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class ReleaseFailed(UmbauError):
    """``umbau release run``: a step failed and every completed step was undone (the
    database, the env file and the commands' undo are back where the release began)."""

    exit_code = EXIT_RELEASE_FAILED

    def __init__(self, message: str, version: str, step: str, result: object = None) -> None:
        super().__init__(message)
        self.version = version
        self.step = step
        self.result = result  # the umbau.release.ReleaseResult of the run


class ReleaseRollbackFailed(UmbauError):
    """``umbau release run``: a step failed and undoing the completed steps failed too;
    ``left`` names what is left as it was after the release's steps."""

    exit_code = EXIT_RELEASE_ROLLBACK_FAILED

    def __init__(self, message: str, version: str, step: str, left: Sequence[str],
                 result: object = None) -> None:
        super().__init__(message)
        self.version = version
        self.step = step
        self.left = tuple(left)
        self.result = result  # the umbau.release.ReleaseResult of the run


class ReleasePlanError(UmbauError):
    """A release plan that cannot be read or run as written: no such version, an unknown
    key or kind, a bad duration, a plan that changed under a release in progress, or a
    rollback that is impossible (no backup step and a revision without a downgrade)."""

    exit_code = EXIT_RELEASE_PLAN


class ReleaseBusy(UmbauError):
    """Another ``umbau release run`` holds the release lock on the database."""

    exit_code = EXIT_RELEASE_BUSY

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder
class EnvFileError(UmbauError):
    """A release env step (``umbau.release.envfile``) refused: the env file is missing or
    unreadable, a required key is missing, a rename would overwrite another value, or a
    quote is never closed. Raised before anything is written."""

    exit_code = EXIT_ENV_FILE


class CacheError(UmbauError):
    """A release cache step (``umbau.release.cache``) failed: Redis cannot be reached or
    answered with an error, the URL is malformed, or the ``redis`` package is missing."""

    exit_code = EXIT_RELEASE_SERVICE


class HealthCheckFailed(UmbauError):
    """A release health step (``umbau.release.health``) saw no expected status before its
    deadline; the message names the last status or connection error."""

    exit_code = EXIT_RELEASE_SERVICE

    def __init__(self, message: str, status: int | None = None, attempts: int = 0,
                 error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.error = error
class MetricsExportFailed(UmbauError):
    """A metrics exposition option cannot be honoured: ``--metrics-port`` already in use,
    ``--pushgateway`` unreachable or not an http(s) URL, ``--metrics-textfile`` in a folder
    that is missing or not writable (checked before the command runs)."""

    exit_code = EXIT_METRICS
