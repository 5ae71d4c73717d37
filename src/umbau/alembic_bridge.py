"""The one module that reaches into Alembic.

umbau runs a project's own ``env.py`` through an :class:`EnvironmentContext`
subclass that hands over umbau's connection (Alembic's connection-sharing
recipe, ``config.attributes["connection"]``), forces one transaction per
revision and records each step in the history table inside that step's
transaction.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import inspect
import io
import re
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import util as alembic_util
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.script import revision as alembic_revision
from sqlalchemy.engine import Connection

from umbau.errors import (
    BrokenRevisionGraph,
    EnvironmentFailed,
    EnvironmentNotShared,
    IrreversibleRevision,
    MultipleHeads,
    NoChangesDetected,
    OfflineRenderError,
    RevisionFileError,
    ScriptError,
    SettingsError,
    UmbauError,
    UnknownDatabaseRevision,
    UnknownRevision,
)
from umbau.postgres import UMBAU_TABLES
from umbau.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"

SHARING_RECIPE = textwrap.dedent(
    """\
    connectable = config.attributes.get("connection", None)
    if connectable is not None:  # umbau (or any caller) hands over its connection
        context.configure(connection=connectable, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    """
)


@dataclass(frozen=True)
class RevisionInfo:
    """One revision script, as umbau shows it."""

    revision: str
    down_revisions: tuple[str, ...]
    message: str
    path: str
    branch_labels: tuple[str, ...] = ()
    is_head: bool = False
    is_merge: bool = False
    phase: str = "pre"  # "post": runs after the deploy (`phase = "post"` in the file)

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "down_revisions": list(self.down_revisions),
            "message": self.message,
            "path": self.path,
            "branch_labels": list(self.branch_labels),
            "is_head": self.is_head,
            "is_merge": self.is_merge,
            "phase": self.phase,
        }


@dataclass(frozen=True)
class Step:
    """One planned revision step."""

    revision: str
    down_revision: str | None
    direction: str  # "upgrade" | "downgrade"
    message: str


def _info(script: Script) -> RevisionInfo:
    return RevisionInfo(
        revision=script.revision,
        down_revisions=tuple(alembic_util.to_tuple(script.down_revision, default=())),
        message=(script.doc or "").strip().splitlines()[0] if script.doc else "",
        path=script.path,
        branch_labels=tuple(sorted(script.branch_labels)),
        is_head=script.is_head,
        is_merge=script.is_merge_point,
        phase=revision_phase(script),
    )


PHASES = ("pre", "post")


def revision_phase(script: Script) -> str:
    """The module-level ``phase`` of a revision file: "pre" (default) or "post"."""
    phase = getattr(script.module, "phase", "pre")
    if phase not in PHASES:
        raise RevisionFileError(f"{script.path}: phase = {phase!r}: use \"pre\" (before the "
                                "deploy, the default) or \"post\" (after it)", script.path, None)
    return str(phase)


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_config(settings: Settings, url: str | None) -> Config:
    ini, location = settings.require_alembic()
    if ini is not None:
        if not ini.is_file():
            raise SettingsError(f"alembic config {ini} does not exist: fix alembic_config")
        cfg = _alembic_config(ini)
        if location is not None:
            cfg.set_main_option("script_location", str(location))
    else:
        cfg = Config()
        cfg.set_main_option("script_location", str(location))
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("prepend_sys_path", str(settings.root))
    if not cfg.get_alembic_option("script_location"):
        raise SettingsError(f"{ini} has no script_location: add it under [alembic] "
                            "(alembic.ini) or [tool.alembic] (pyproject.toml)")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _alembic_config(path: Path) -> Config:
    """alembic.ini, pyproject.toml's [tool.alembic], or both side by side (as `alembic`)."""
    if path.suffix == ".toml":
        return Config(toml_file=str(path))
    pyproject = path.parent / "pyproject.toml"
    if pyproject.is_file() and "[tool.alembic]" in pyproject.read_text(encoding="utf-8"):
        return Config(str(path), toml_file=str(pyproject))
    return Config(str(path))


class Project:
    """An Alembic project: its config and revision scripts, loaded once."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        self.settings = settings
        self.config = build_config(settings, url)
        self.script = _load_script_directory(self.config)
        self._checksums: dict[str, str] = {}

    # -- the revision graph -------------------------------------------------
    def revisions(self) -> list[RevisionInfo]:
        """All revisions, oldest first."""
        walked = list(self.script.walk_revisions("base", "heads"))
        return [_info(s) for s in reversed(walked)]

    def heads(self) -> tuple[str, ...]:
        return tuple(self.script.get_heads())

    def get(self, revision: str) -> RevisionInfo:
        return _info(self._script(revision))

    def _script(self, revision: str) -> Script:
        try:
            found = self.script.get_revision(revision)
        except alembic_util.CommandError as exc:
            raise self.unknown(revision) from exc
        except alembic_revision.RevisionError as exc:
            raise self.unknown(revision) from exc
        if found is None:
            raise self.unknown(revision)
        return found

    def phase(self, revision: str) -> str:
        """"pre" or "post" (the revision file's module-level ``phase``)."""
        return revision_phase(self._script(revision))

    def known(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except (alembic_util.CommandError, alembic_revision.RevisionError):
            return False

    def unknown(self, revision: str) -> UnknownRevision:
        ids = [r.revision for r in self.script.walk_revisions("base", "heads")]
        close = [i for i in ids if i.startswith(revision[:4])][:3] if revision else []
        close += [c for c in difflib.get_close_matches(revision, ids, n=3, cutoff=0.5)
                  if c not in close]
        hint = f"close matches: {', '.join(close)}" if close else "see `umbau history`"
        return UnknownRevision(f"unknown revision {revision!r}: {hint}", revision, close)

    def single_head(self) -> str:
        heads = self.heads()
        if len(heads) > 1:
            raise multiple_heads(heads)
        if not heads:
            raise ScriptError("the project has no revisions yet: create one with `umbau new`")
        return heads[0]

    def checksum(self, revision: str) -> str | None:
        if revision not in self._checksums:
            try:
                self._checksums[revision] = sha256_file(self._script(revision).path)
            except (OSError, UnknownRevision):
                return None
        return self._checksums[revision]

    def resolve_target(self, target: str) -> str:
        """Validate a target revision name early; returns it unchanged.

        Alembic's forms: ``head``, ``heads``, ``base``, ``+2``/``-1``, a revision or a
        prefix of one, ``rev+1``, and branch-relative ``label@head``, ``label@+1``,
        ``label@-1``, ``label@rev`` (Alembic docs, "Working with Branches").
        """
        if target in {"head", "heads", "base"} or re.fullmatch(r"[+-]\d+", target):
            if target == "head":
                self.single_head()
            return target
        label, at, rest = target.rpartition("@")
        if at:
            self._check_branch_label(label)
            if rest in {"", "head", "heads", "base"} or re.fullmatch(r"[+-]\d+", rest):
                return target
        base = re.split(r"[+-]\d+$", rest if at else target)[0]
        if base in {"head", "heads", "base"}:
            return target
        self._check_revision(base)
        return target

    def _check_branch_label(self, label: str) -> None:
        labels = {lb for s in self.script.walk_revisions("base", "heads")
                  for lb in s.branch_labels}
        if label not in labels:
            hint = f"branch labels: {', '.join(sorted(labels))}" if labels else \
                "no revision has branch_labels"
            raise UnknownRevision(f"unknown branch label {label!r}: {hint}", label)

    def _check_revision(self, base: str) -> None:
        try:
            self.script.revision_map.get_revisions(base)
        except alembic_revision.MultipleHeads as exc:
            raise multiple_heads(self.heads()) from exc
        except (alembic_util.CommandError, alembic_revision.RevisionError,
                AssertionError) as exc:
            raise self.unknown(base) from exc

    def upgrade_steps(self, current: Sequence[str], target: str) -> list[Step]:
        check_known(self, current)
        with _translate_resolution(self):
            steps = self.script._upgrade_revs(target, tuple(current))  # type: ignore[arg-type]
        return [step_of(s.info) for s in steps]

    def downgrade_steps(self, current: Sequence[str], target: str) -> list[Step]:
        check_known(self, current)
        with _translate_resolution(self):
            steps = self.script._downgrade_revs(target, tuple(current))  # type: ignore[arg-type]
        return [step_of(s.info) for s in steps]

    def check_downgradable(self, revision: str) -> str | None:
        """Refuse revisions whose downgrade() is missing, or empty after an upgrade that
        changes the schema (IrreversibleRevision). An empty downgrade() after a data-only
        upgrade (DML, no DDL: :func:`changes_data_only`) has nothing to undo in the
        schema: it returns a note saying so instead of refusing."""
        module = self._script(revision).module
        func = getattr(module, "downgrade", None)
        if func is None:
            raise IrreversibleRevision(
                f"revision {revision} has no downgrade(): write one, or restore a backup", revision
            )
        upgrade = getattr(module, "upgrade", None)
        if not _is_empty_function(func) or upgrade is None or _is_empty_function(upgrade):
            return None
        if changes_data_only(upgrade):
            return (f"revision {revision}: empty downgrade() after a data-only upgrade: "
                    "no schema to undo, its data changes stay")
        raise IrreversibleRevision(
            f"revision {revision} has an empty downgrade() ({self._script(revision).path}): "
            "write the downgrade, or restore a backup instead",
            revision,
        )


    def irreversible_by_design(self, revision: str) -> tuple[str, str] | None:
        """Whether ``revision``'s downgrade cannot give back what its upgrade did, read
        from the file without running anything (the static part of
        :mod:`umbau.testing.verdicts`, shared with ``umbau release``).

        Returns None when the downgrade is expected to undo the upgrade, else
        ``(kind, reason)``: kind ``"refuses"`` for a ``# umbau: irreversible <reason>``
        marker or a downgrade() whose first statement raises (``raise
        NotImplementedError``: ``umbau downgrade`` stops there with exit 11), kind
        ``"data stays"`` for an empty downgrade() after a data-only upgrade (it runs,
        but the rows the upgrade changed stay changed). A missing downgrade, or an empty
        one after a schema change, is :meth:`check_downgradable`'s (a defect)."""
        script = self._script(revision)
        marked = irreversible_marker(script.path)
        if marked is not None:
            return "refuses", (f"marked irreversible: {marked}" if marked
                               else "marked irreversible")
        func = getattr(script.module, "downgrade", None)
        if func is None:
            return None
        raised = _raises_first(func)
        if raised is not None:
            return "refuses", f"its downgrade() raises {raised} before any SQL"
        upgrade = getattr(script.module, "upgrade", None)
        if _is_empty_function(func) and upgrade is not None \
                and not _is_empty_function(upgrade) and changes_data_only(upgrade):
            return "data stays", ("empty downgrade() after a data-only upgrade: its data "
                                  "changes stay")
        return None


_IRREVERSIBLE_MARKER = re.compile(r"^\s*#\s*umbau:\s*irreversible\b[ \t:-]*(.*)$",
                                  re.MULTILINE)


def irreversible_marker(path: str | Path) -> str | None:
    """The reason of a ``# umbau: irreversible <reason>`` line in the file at ``path``
    ('' without a reason), or None when there is no such line (or no readable file)."""
    try:
        found = _IRREVERSIBLE_MARKER.search(Path(path).read_text(encoding="utf-8"))
    except OSError:
        return None
    return None if found is None else found.group(1).strip()


def _raises_first(func: Callable[..., Any]) -> str | None:
    """The exception's name when the function's first statement (after a docstring) is
    a ``raise``, else None."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    for stmt in node.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        if isinstance(stmt, ast.Raise):
            exc = stmt.exc
            if isinstance(exc, ast.Call):
                exc = exc.func
            if isinstance(exc, ast.Name):
                return exc.id
            if isinstance(exc, ast.Attribute):
                return exc.attr
            return "an exception"
        return None
    return None


def has_empty_downgrade(project: Project, revision: str) -> bool:
    """True when ``revision``'s downgrade() exists and does nothing (``pass``)."""
    func = getattr(project._script(revision).module, "downgrade", None)
    return func is not None and _is_empty_function(func)


# op.* calls that change no schema; and the first word of SQL that changes only rows.
_DATA_OPS = frozenset({"execute", "bulk_insert", "get_bind", "get_context", "inline_literal",
                       "f", "batch_alter_table_data"})
_DML = re.compile(r"^\s*(INSERT|UPDATE|DELETE|SELECT|WITH|MERGE)\b", re.IGNORECASE)
_DML_BUILDERS = frozenset({"insert", "update", "delete", "select", "values", "where"})


def changes_data_only(func: Callable[..., Any]) -> bool:
    """True when ``func`` (an upgrade()) visibly changes rows only: its ``op.*`` calls are
    data operations, and every SQL string it executes starts with INSERT, UPDATE, DELETE,
    SELECT, WITH or MERGE (SQLAlchemy insert()/update()/delete() are allowed too).
    Anything umbau cannot read (SQL built at run time) counts as schema change."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return False
    return all(_is_data_call(node) for node in ast.walk(tree) if isinstance(node, ast.Call))


def _is_data_call(call: ast.Call) -> bool:
    target = call.func
    if not isinstance(target, ast.Attribute):
        return True  # sa.text(...), len(...): judged where they are executed
    if isinstance(target.value, ast.Name) and target.value.id == "op" \
            and target.attr not in _DATA_OPS:
        return False
    if target.attr != "execute" or not call.args:
        return True
    return _is_dml(call.args[0])


def _is_dml(arg: ast.expr) -> bool:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return bool(_DML.match(arg.value))
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name | ast.Attribute):
        name = arg.func.id if isinstance(arg.func, ast.Name) else arg.func.attr
        if name == "text" and arg.args:
            return _is_dml(arg.args[0])
        return name in _DML_BUILDERS
    return False


def multiple_heads(heads: Sequence[str]) -> MultipleHeads:
    joined = " ".join(heads)
    return MultipleHeads(
        f"the scripts have {len(heads)} heads ({', '.join(heads)}): merge them with "
        f"`umbau merge -m \"merge heads\" {joined}`, or name one head as the target",
        heads,
    )


@contextmanager
def _translate_resolution(project: Project) -> Iterator[None]:
    """Alembic's revision-resolution errors become umbau's."""
    try:
        yield
    except alembic_revision.MultipleHeads as exc:
        raise multiple_heads(project.heads()) from exc
    except alembic_revision.ResolutionError as exc:
        raise project.unknown(getattr(exc, "argument", "") or "") from exc
    except alembic_revision.RangeNotAncestorError as exc:
        raise UnknownRevision(
            f"{exc}: the target is not an ancestor or descendant of the current revision",
            str(getattr(exc, "upper", "")),
        ) from exc
    except alembic_util.CommandError as exc:
        raise ScriptError(f"{exc}: check the target revision") from exc
    except AttributeError as exc:
        error = _missing_function(project, exc)
        if error is exc:
            raise
        raise error from exc


def _missing_function(project: Project, exc: AttributeError) -> UmbauError | AttributeError:
    """Alembic reads ``module.upgrade``/``module.downgrade`` when it plans a step: a
    revision file without one is named, with what to do."""
    name = getattr(exc, "name", None)
    module = getattr(getattr(exc, "obj", None), "__name__", None)
    script = next((s for s in project.script.walk_revisions("base", "heads")
                   if getattr(s.module, "__name__", None) == module), None)
    if script is None or name not in {"upgrade", "downgrade"}:
        return exc
    if name == "downgrade":
        return IrreversibleRevision(
            f"revision {script.revision} has no downgrade() ({script.path}): write one, or "
            "restore a backup instead", script.revision)
    return RevisionFileError(f"{script.path}: revision {script.revision} has no upgrade(): "
                             "add one", script.path)


def _is_empty_function(func: Callable[..., Any]) -> bool:
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        return False
    for stmt in node.body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or a bare ``...``
        return False
    return True


def _load_script_directory(cfg: Config) -> ScriptDirectory:
    try:
        script = ScriptDirectory.from_config(cfg)
    except alembic_util.CommandError as exc:
        raise SettingsError(f"{exc}: check script_location") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            script.revision_map.heads  # noqa: B018 - forces loading every revision file
        except SyntaxError as exc:
            raise RevisionFileError(
                f"{exc.filename}:{exc.lineno}: syntax error in revision file ({exc.msg}): fix it",
                exc.filename or "?", exc.lineno,
            ) from exc
        except alembic_revision.CycleDetected as exc:
            revs = ", ".join(getattr(exc, "revisions", []) or [])
            raise BrokenRevisionGraph(
                f"the revision graph has a cycle through {revs}: fix down_revision in those files"
            ) from exc
        except KeyError as exc:
            missing = _missing_downrev(caught) or str(exc)
            raise BrokenRevisionGraph(missing) from exc
        except alembic_util.CommandError as exc:
            raise ScriptError(f"{exc}: fix the revision files") from exc
        except Exception as exc:
            raise _file_error(exc, script) from exc
    return script


def _missing_downrev(caught: Iterable[warnings.WarningMessage]) -> str | None:
    for warning in caught:
        match = re.search(r"Revision (\S+) referenced from (.+) is not present",
                          str(warning.message))
        if match:
            return (
                f"revision {match.group(2)} names down_revision {match.group(1)!r}, which no "
                "file defines: fix its down_revision or restore the missing file"
            )
    return None


def revision_location(exc: BaseException, script: ScriptDirectory) -> tuple[str, int] | None:
    """The revision file and line where ``exc`` was raised: the innermost traceback frame
    inside a versions folder (the failing ``op.*`` call), or None when none is."""
    versions = [str(Path(p).resolve()) for p in script._version_locations]
    found = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # SQLAlchemy chains the cause
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            filename = str(Path(tb.tb_frame.f_code.co_filename).resolve())
            if any(filename.startswith(v) for v in versions):
                found = (filename, tb.tb_lineno)
            tb = tb.tb_next
        if found:
            return found
        current = current.__context__
    return None


def _file_error(exc: BaseException, script: ScriptDirectory) -> RevisionFileError:
    path, line = revision_location(exc, script) or ("?", None)
    return RevisionFileError(
        f"{path}:{line}: revision file fails to load ({type(exc).__name__}: {exc}): fix it",
        path, line,
    )


# -- running env.py ---------------------------------------------------------


@dataclass
class EnvRun:
    """What one run of env.py saw and did."""

    version_table: str = "alembic_version"
    version_table_schema: str | None = None
    connection_shared: bool | None = None
    on_version_apply: list[Callable[..., None]] = field(default_factory=list)
    migrations_failed: BaseException | None = None  # what context.run_migrations() raised


class _UmbauEnvironmentContext(EnvironmentContext):
    """Forces per-revision transactions and adds umbau's step callback."""

    umbau_run: EnvRun
    umbau_connection: Connection | None

    def configure(self, *args: Any, **kw: Any) -> None:
        run = self.umbau_run
        kw["transaction_per_migration"] = True
        existing = alembic_util.to_tuple(kw.get("on_version_apply"), default=())
        kw["on_version_apply"] = (*existing, *run.on_version_apply)
        kw["include_name"] = _skip_umbau_tables(kw.get("include_name"))
        run.version_table = kw.get("version_table") or "alembic_version"
        run.version_table_schema = kw.get("version_table_schema")
        if self.umbau_connection is not None and not self.is_offline_mode():
            run.connection_shared = kw.get("connection") is self.umbau_connection
            if not run.connection_shared:
                raise EnvironmentNotShared(
                    f"{self.script.env_py_location} does not use the connection umbau hands "
                    "over: in run_migrations_online() use config.attributes['connection'] "
                    "when it is set (`umbau doctor` prints the lines to add)"
                )
        super().configure(*args, **kw)

    def run_migrations(self, **kw: Any) -> None:
        try:
            super().run_migrations(**kw)
        except Exception as exc:
            self.umbau_run.migrations_failed = exc
            raise


def _skip_umbau_tables(user_filter: Callable[..., bool] | None) -> Callable[..., bool]:
    """An include_name hook that hides umbau's own tables from autogenerate."""

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "table" and name in UMBAU_TABLES:
            return False
        return user_filter(name, type_, parent_names) if user_filter else True

    return include_name


# Alembic keeps its module-proxy set-up per class: share EnvironmentContext's, so that
# ``from alembic import context`` in env.py sees this subclass.
_UmbauEnvironmentContext._setups[_UmbauEnvironmentContext] = (
    EnvironmentContext._setups[EnvironmentContext]
)


def run_env(
    project: Project,
    fn: Callable[[tuple[str, ...], Any], Iterable[Any]],
    *,
    connection: Connection | None = None,
    as_sql: bool = False,
    starting_rev: str | None = None,
    destination_rev: str | None = None,
    on_version_apply: Sequence[Callable[..., None]] = (),
    output: io.StringIO | None = None,
    purge: bool = False,
    dont_mutate: bool = False,
) -> EnvRun:
    """Run the project's env.py once with ``fn`` as the migration function."""
    run = EnvRun(on_version_apply=list(on_version_apply))
    cfg = project.config
    cfg.attributes["connection"] = connection
    cfg.attributes["umbau_settings"] = project.settings  # umbau.ops reads its retry policy
    saved_buffer = cfg.output_buffer
    if output is not None:
        cfg.output_buffer = output
    context = _UmbauEnvironmentContext(
        cfg,
        project.script,
        fn=fn,
        as_sql=as_sql,
        starting_rev=starting_rev,
        destination_rev=destination_rev,
        purge=purge,
        dont_mutate=dont_mutate,
    )
    context.umbau_run = run
    context.umbau_connection = connection
    try:
        with context, _env_patches(cfg, project.script.env_py_location, connection):
            _run_env_file(project, run)
    finally:
        cfg.attributes.pop("connection", None)
        cfg.attributes.pop("umbau_settings", None)
        cfg.output_buffer = saved_buffer
    return run


def _run_env_file(project: Project, run: EnvRun) -> None:
    """Run env.py; an error outside ``context.run_migrations()`` is env.py's own."""
    try:
        project.script.run_env()
    except UmbauError:
        raise
    except Exception as exc:
        if run.migrations_failed is exc:
            raise  # a revision failed: the runner decides (retry, partial, failed)
        raise env_failed(exc, project) from exc


def env_failed(exc: BaseException, project: Project) -> EnvironmentFailed:
    """env.py could not be loaded or run, with its file and line."""
    env_py = str(Path(project.script.env_py_location).resolve())
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if str(Path(tb.tb_frame.f_code.co_filename).resolve()) == env_py:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f"{env_py}:{line}" if line else env_py
    text_ = " ".join(str(exc).split()) or type(exc).__name__
    hint = "fix env.py or install what it imports"
    if "greenlet" in text_:
        hint = ("the async env.py needs greenlet: pip install 'sqlalchemy[asyncio]' "
                "(umbau itself runs it on its own synchronous connection)")
    return EnvironmentFailed(f"{where}: env.py fails ({type(exc).__name__}: {text_[:300]}): "
                             f"{hint}")


class _SharedEngine:
    """Stands in for the engine a stock env.py makes from ``sqlalchemy.url``: its
    connections are umbau's own connection, never closed by env.py. Sync and async
    (``async with engine.connect() as c: await c.run_sync(fn)``) templates alike."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self.connection

    def begin(self) -> Any:
        return self.connect()

    def dispose(self) -> Any:
        return _AsyncNoop()


class _AsyncShared:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def __aenter__(self) -> _AsyncShared:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return fn(self.connection, *args, **kw)

    async def commit(self) -> None:
        return None


class _AsyncSharedEngine(_SharedEngine):
    def connect(self) -> Any:
        return _AsyncShared(self.connection)

    def begin(self) -> Any:
        return _AsyncShared(self.connection)


class _AsyncNoop:
    """``await engine.dispose()`` and a plain ``engine.dispose()`` both work."""

    def __await__(self) -> Iterator[None]:
        return iter(())


def _async_module(env_py: str) -> Any:
    """sqlalchemy.ext.asyncio when env.py uses it and it can be imported (it needs
    greenlet: without it env.py's own import fails, and says so in one line)."""
    if "sqlalchemy.ext.asyncio" in sys.modules:
        return sys.modules["sqlalchemy.ext.asyncio"]
    if "async_engine_from_config" not in Path(env_py).read_text(encoding="utf-8"):
        return None
    try:
        import sqlalchemy.ext.asyncio
    except ImportError:
        return None
    return sqlalchemy.ext.asyncio


@contextmanager
def _env_patches(cfg: Config, env_py: str, connection: Connection | None) -> Iterator[None]:
    """While env.py runs: Alembic's stock templates get umbau's connection, and
    Alembic's INFO log lines follow the ``umbau`` logger's level.

    The stock templates (``alembic init -t generic|async|pyproject``) make their own
    engine with ``engine_from_config``/``async_engine_from_config`` from
    ``sqlalchemy.url``, which umbau sets to its URL: that call, for that URL only,
    returns an engine whose connection is umbau's (lock, timeouts, one transaction per
    revision), so the templates run unchanged and without greenlet.
    """
    import logging.config

    import sqlalchemy

    url = cfg.get_main_option("sqlalchemy.url")
    with ExitStack() as stack:
        stack.enter_context(_replaced(logging.config, "fileConfig", _quiet_file_config))
        stack.enter_context(_replaced(sqlalchemy, "engine_from_config",
                                      _sharing(_SharedEngine, url, connection)))
        async_module = _async_module(env_py)
        if async_module is not None:
            stack.enter_context(_replaced(async_module, "async_engine_from_config",
                                          _sharing(_AsyncSharedEngine, url, connection)))
        yield


@contextmanager
def _replaced(module: Any, name: str,
              wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    """``module.name`` replaced by ``wrap(original)`` for the block, then restored."""
    original = getattr(module, name)
    setattr(module, name, wrap(original))
    try:
        yield
    finally:
        setattr(module, name, original)


def _quiet_file_config(real: Callable[..., Any]) -> Callable[..., None]:
    """env.py's ``fileConfig(alembic.ini)``, then Alembic's and SQLAlchemy's loggers no
    chattier than WARNING unless the ``umbau`` logger is at INFO (``umbau -v``)."""
    import logging

    def file_config(*args: Any, **kw: Any) -> None:
        real(*args, **kw)
        # the level, not isEnabledFor(): fileConfig has just disabled loggers it does not name
        if logging.getLogger("umbau").getEffectiveLevel() <= logging.INFO:
            return
        for name in ("alembic", "sqlalchemy"):
            if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
                logging.getLogger(name).setLevel(logging.WARNING)

    return file_config


def _sharing(kind: type[_SharedEngine], url: str | None, connection: Connection | None,
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper of ``(async_)engine_from_config`` that returns ``kind(connection)`` for
    the config's own URL and the real engine for any other."""

    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        def engine_from_config(configuration: Any, prefix: str = "sqlalchemy.",
                               **kw: Any) -> Any:
            if connection is not None and configuration.get(f"{prefix}url") == url:
                return kind(connection)
            return real(configuration, prefix, **kw)

        return engine_from_config

    return wrap


def current_heads(project: Project, connection: Connection) -> tuple[str, ...]:
    """The revisions in the version table, read through env.py (like `alembic current`)."""
    seen: list[tuple[str, ...]] = []

    def fn(rev: tuple[str, ...], context: Any) -> list[Any]:
        seen.append(tuple(rev))
        return []

    # dont_mutate: reading must not create the version table (as `alembic current`)
    run_env(project, fn, connection=connection, dont_mutate=True)
    if connection.in_transaction():
        connection.rollback()
    return seen[0] if seen else ()


def check_known(project: Project, current: Sequence[str],
                hint: str = "run `umbau doctor`") -> None:
    """Refuse to plan from a database revision that no script knows (as `umbau check`)."""
    unknown = [r for r in current if not project.known(r)]
    if unknown:
        raise UnknownDatabaseRevision(
            f"the database is at {', '.join(unknown)}, which no revision file knows: {hint}",
            unknown)


def upgrade_fn(project: Project, target: str) -> Callable[[tuple[str, ...], Any], Any]:
    def fn(rev: tuple[str, ...], context: Any) -> Any:
        check_known(project, rev)
        with _translate_resolution(project):
            return project.script._upgrade_revs(target, rev)  # type: ignore[arg-type]

    return fn


def downgrade_fn(project: Project, target: str) -> Callable[[tuple[str, ...], Any], Any]:
    def fn(rev: tuple[str, ...], context: Any) -> Any:
        check_known(project, rev)
        with _translate_resolution(project):
            return project.script._downgrade_revs(target, rev)  # type: ignore[arg-type]

    return fn


def stamp_fn(project: Project, target: str) -> Callable[[tuple[str, ...], Any], Any]:
    def fn(rev: tuple[str, ...], context: Any) -> Any:
        # with --purge Alembic hands over no current revision: nothing to check then
        check_known(project, rev, f"run `umbau stamp --purge {target}` if the schema is at "
                                  f"{target}, else `umbau doctor`")
        with _translate_resolution(project):
            return project.script._stamp_revs(target, rev)

    return fn


def step_of(step_info: MigrationInfo) -> Step:
    """A Step from the MigrationInfo that on_version_apply receives."""
    revision = step_info.up_revision_id or ",".join(step_info.up_revision_ids)
    script = step_info.up_revision
    doc = getattr(script, "doc", "") or ""
    return Step(
        revision=revision,
        down_revision=",".join(step_info.down_revision_ids) or None,
        direction="upgrade" if step_info.is_upgrade else "downgrade",
        message=doc.strip().splitlines()[0] if doc.strip() else "",
    )


def render_sql(project: Project, start: str | None, target: str, *, downgrade: bool = False) -> str:
    """The SQL Alembic would run, rendered offline (``--sql``)."""
    buffer = io.StringIO()
    fn = downgrade_fn(project, target) if downgrade else upgrade_fn(project, target)
    try:
        run_env(project, fn, as_sql=True, starting_rev=start, destination_rev=target,
                output=buffer)
    except UmbauError:
        raise
    except Exception as exc:
        text_ = str(exc).strip().splitlines()
        raise OfflineRenderError(
            f"the SQL cannot be rendered offline ({type(exc).__name__}: "
            f"{text_[0] if text_ else ''}): fix that revision, or, if it reads data or "
            "inspects the schema, run it on a scratch database instead of --sql"
        ) from exc
    return buffer.getvalue()


def env_shares_connection(project: Project) -> bool:
    """A static look at env.py: will it run on the connection umbau hands over?"""
    source = Path(project.script.env_py_location).read_text(encoding="utf-8")
    return source_shares_connection(source)


def source_shares_connection(source: str) -> bool:
    """Yes when env.py reads ``config.attributes['connection']`` (Alembic's recipe), or
    makes its engine from the config's ``sqlalchemy.*`` section as Alembic's stock
    templates do: umbau then hands that engine its own connection (``_env_patches``)."""
    recipe = "attributes" in source and "connection" in source
    stock = re.search(r"engine_from_config\(\s*config\.get_section\(", source) is not None
    return recipe or stock


def now() -> datetime:
    return datetime.now(UTC)


def iter_steps(steps: Iterable[Any], on_start: Callable[[Any], None]) -> Iterator[Any]:
    """Yield Alembic's steps lazily, calling ``on_start`` just before each one runs."""
    for step in steps:
        on_start(step)
        yield step


# -- new revisions ------------------------------------------------------------


def generate_revision(
    project: Project,
    message: str,
    *,
    autogenerate: bool,
    connection: Connection | None,
    head: str = "head",
    rev_id: str | None = None,
    template: Path | None = None,
) -> Script:
    """Write a new revision file named ``YYYYMMDD_HHMM_<slug>.py``."""
    from alembic.autogenerate.api import RevisionContext

    script = _template_directory(project, message, template)
    command_args = dict(message=message, autogenerate=autogenerate, sql=False, head=head,
                        splice=False, branch_label=None, version_path=None, rev_id=rev_id,
                        depends_on=None)
    revision_context = RevisionContext(project.config, script, command_args)

    if autogenerate:
        if connection is None:
            raise SettingsError("--autogenerate needs a database: set database_url")

        def fn(rev: tuple[str, ...], context: Any) -> list[Any]:
            revision_context.run_autogenerate(rev, context)
            for generated in revision_context.generated_revisions:
                _create_missing_enums(generated, context.connection)
            return []

        original = project.script
        project.script = script
        try:
            run_env(project, fn, connection=connection)
        finally:
            project.script = original
        if connection.in_transaction():
            connection.rollback()
        _refuse_empty(revision_context)
    scripts = [s for s in revision_context.generate_scripts() if s is not None]
    if not scripts:
        raise ScriptError("alembic wrote no revision file")
    return scripts[0]


def _refuse_empty(revision_context: Any) -> None:
    """Autogenerate found no difference: write nothing (as `alembic check` says it)."""
    directives = revision_context.generated_revisions
    if directives and all(d.upgrade_ops is None or d.upgrade_ops.is_empty()
                          for d in directives):
        raise NoChangesDetected(
            "no changes in the models: the database already matches them, so no revision "
            "was written; change the models first, or drop --autogenerate for a hand-written "
            "(e.g. data) revision")


def _create_missing_enums(generated: Any, connection: Connection) -> None:
    """Add ``CREATE TYPE … AS ENUM`` before a new column whose enum type the database lacks
    (and ``DROP TYPE`` after the column's drop in the downgrade).

    Alembic's ``add_column`` never creates the type (only ``create_table`` does, through
    SQLAlchemy's table events), so the autogenerated revision fails on every database
    without it: "type … does not exist".
    """
    import sqlalchemy as sa
    from alembic.operations import ops

    upgrade, downgrade = generated.upgrade_ops, generated.downgrade_ops
    created = {_enum_key(c.type) for op_ in _flat(upgrade.ops)
               if isinstance(op_, ops.CreateTableOp) for c in op_.columns
               if isinstance(c, sa.Column) and _enum_key(c.type)}
    for container in _containers(upgrade):
        for op_ in list(container.ops):
            enum = getattr(getattr(op_, "column", None), "type", None)
            key = _enum_key(enum)
            if isinstance(op_, ops.AddColumnOp) and key and key not in created \
                    and not _type_exists(connection, *key):
                created.add(key)
                container.ops.insert(container.ops.index(op_), ops.ExecuteSQLOp(
                    _create_enum_sql(enum)))
                _drop_after_column(downgrade, op_, _qualified(*key))


def _flat(items: Sequence[Any]) -> Iterator[Any]:
    for item in items:
        yield item
        yield from _flat(getattr(item, "ops", ()))


def _containers(root: Any) -> list[Any]:
    return [root] + [op_ for op_ in _flat(root.ops) if hasattr(op_, "ops")]


def _enum_key(type_: Any) -> tuple[str, str | None] | None:
    import sqlalchemy as sa

    if isinstance(type_, sa.Enum) and type_.name and type_.native_enum:
        return type_.name, type_.schema
    return None


def _type_exists(connection: Connection, name: str, schema: str | None) -> bool:
    import sqlalchemy as sa

    found = connection.execute(sa.text(
        "SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typname = :name AND n.nspname = coalesce(:schema, current_schema())"),
        {"name": name, "schema": schema}).first()
    return found is not None


def _qualified(name: str, schema: str | None) -> str:
    from umbau.postgres.quoting import quote_ident

    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


def _create_enum_sql(enum: Any) -> str:
    values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in enum.enums)
    return f"CREATE TYPE {_qualified(enum.name, enum.schema)} AS ENUM ({values})"


def _drop_after_column(downgrade: Any, added: Any, qualified: str) -> None:
    from alembic.operations import ops

    for container in _containers(downgrade):
        for op_ in list(container.ops):
            if isinstance(op_, ops.DropColumnOp) and op_.column_name == added.column.name \
                    and op_.table_name == added.table_name:
                container.ops.insert(container.ops.index(op_) + 1,
                                     ops.ExecuteSQLOp(f"DROP TYPE {qualified}"))
                return


class _TemplateScriptDirectory(ScriptDirectory):
    """A ScriptDirectory whose new revisions use umbau's template."""

    umbau_template: Path

    @classmethod
    def wrap(cls, original: ScriptDirectory, template: Path) -> _TemplateScriptDirectory:
        clone = cls.__new__(cls)
        clone.__dict__.update(original.__dict__)
        clone.umbau_template = template
        return clone

    def _generate_template(self, src: Any, dest: Any, **kw: Any) -> None:
        if Path(src).name == "script.py.mako":
            src = self.umbau_template
        super()._generate_template(src, dest, **kw)


def _template_directory(project: Project, message: str,
                        template: Path | None) -> _TemplateScriptDirectory:
    """The project's ScriptDirectory, writing ``YYYYMMDD_HHMM_<slug>.py``.

    The template is the project's own ``script.py.mako`` when it has the "Breaking
    changes" and "Migration guide" sections (as `umbau init` writes it), else umbau's.
    """
    script = _TemplateScriptDirectory.wrap(project.script, template or revision_template(project))
    file_template = "%(year)d%(month).2d%(day).2d_%(hour).2d%(minute).2d_%(slug)s"
    slug = re.sub(r"\W+", "_", message.lower()).strip("_")[:40].strip("_")
    prefix = datetime.now(UTC).strftime("%Y%m%d_%H%M")
    for location in script._version_locations:
        if (Path(location) / f"{prefix}_{slug}.py").exists():
            file_template += "_%(rev)s"
            break
    script.file_template = file_template
    script.timezone = "UTC"
    script.messaging_opts = {"quiet": True}  # umbau reports the new file itself
    return script


def revision_template(project: Project) -> Path:
    own = Path(project.script.dir) / "script.py.mako"
    if own.is_file():
        text_ = own.read_text(encoding="utf-8")
        if "Breaking changes" in text_ and "Migration guide" in text_:
            return own
    return TEMPLATES / "script.py.mako"


def generate_merge(project: Project, message: str, revisions: Sequence[str]) -> Script:
    """A merge revision of ``revisions``; its upgrade and downgrade are empty on purpose."""
    script = _template_directory(project, message, None)
    created = script.generate_revision(
        alembic_util.rev_id(), message, refresh=True, head=list(revisions),
        config=project.config, umbau_merge=True,
    )
    if created is None:
        raise ScriptError("alembic wrote no merge revision")
    return created


def generate_written(project: Project, message: str, head: str, *, upgrades: str,
                     downgrades: str, imports: str = "") -> Script:
    """A revision whose upgrade()/downgrade() bodies are given (``umbau new --expand``)."""
    script = _template_directory(project, message, None)
    created = script.generate_revision(
        alembic_util.rev_id(), message, refresh=True, head=head, config=project.config,
        upgrades=upgrades, downgrades=downgrades, imports=imports,
    )
    if created is None:
        raise ScriptError("alembic wrote no revision file")
    return created


def down_revisions_of(script: Script) -> tuple[str, ...]:
    return tuple(alembic_util.to_tuple(script.down_revision, default=()))


def revision_step(project: Project, revision: str, *, upgrade: bool) -> Any:
    """Alembic's step that applies (or reverts) exactly ``revision`` and nothing else.

    ``umbau test`` yields these one at a time from a single env.py run, so that a
    stairway over hundreds of revisions runs env.py once instead of three times each.
    """
    from alembic.runtime.migration import RevisionStep

    return RevisionStep(project.script.revision_map, project._script(revision), upgrade)
