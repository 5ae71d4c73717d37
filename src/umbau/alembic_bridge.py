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
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    EnvironmentNotShared,
    IrreversibleRevision,
    MultipleHeads,
    OfflineRenderError,
    RevisionFileError,
    ScriptError,
    SettingsError,
    UmbauError,
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
        """Validate a target revision name early; returns it unchanged."""
        if target in {"head", "heads", "base"} or re.fullmatch(r"[+-]\d+", target):
            if target == "head":
                self.single_head()
            return target
        base = re.split(r"[+-]\d+$", target)[0]
        if "@" in base:
            base = base.split("@", 1)[1] or base
        if base in {"head", "heads", "base"}:
            return target
        try:
            self.script.revision_map.get_revisions(base)
        except alembic_revision.MultipleHeads as exc:
            raise multiple_heads(self.heads()) from exc
        except (alembic_util.CommandError, alembic_revision.RevisionError) as exc:
            raise self.unknown(base) from exc
        return target

    def upgrade_steps(self, current: Sequence[str], target: str) -> list[Step]:
        with _translate_resolution(self):
            steps = self.script._upgrade_revs(target, tuple(current))  # type: ignore[arg-type]
        return [step_of(s.info) for s in steps]

    def downgrade_steps(self, current: Sequence[str], target: str) -> list[Step]:
        with _translate_resolution(self):
            steps = self.script._downgrade_revs(target, tuple(current))  # type: ignore[arg-type]
        return [step_of(s.info) for s in steps]

    def check_downgradable(self, revision: str) -> None:
        """Refuse revisions whose downgrade() is missing or does nothing."""
        module = self._script(revision).module
        func = getattr(module, "downgrade", None)
        if func is None:
            raise IrreversibleRevision(
                f"revision {revision} has no downgrade(): write one, or restore a backup", revision
            )
        upgrade = getattr(module, "upgrade", None)
        if _is_empty_function(func) and not (upgrade is None or _is_empty_function(upgrade)):
            raise IrreversibleRevision(
                f"revision {revision} has an empty downgrade() ({self._script(revision).path}): "
                "write the downgrade, or restore a backup instead",
                revision,
            )


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
        with context:
            project.script.run_env()
    finally:
        cfg.attributes.pop("connection", None)
        cfg.attributes.pop("umbau_settings", None)
        cfg.output_buffer = saved_buffer
    return run


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


def upgrade_fn(project: Project, target: str) -> Callable[[tuple[str, ...], Any], Any]:
    def fn(rev: tuple[str, ...], context: Any) -> Any:
        with _translate_resolution(project):
            return project.script._upgrade_revs(target, rev)  # type: ignore[arg-type]

    return fn


def downgrade_fn(project: Project, target: str) -> Callable[[tuple[str, ...], Any], Any]:
    def fn(rev: tuple[str, ...], context: Any) -> Any:
        with _translate_resolution(project):
            return project.script._downgrade_revs(target, rev)  # type: ignore[arg-type]

    return fn


def stamp_fn(project: Project, target: str) -> Callable[[tuple[str, ...], Any], Any]:
    def fn(rev: tuple[str, ...], context: Any) -> Any:
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
    """A static look at env.py: does it read config.attributes['connection']?"""
    source = Path(project.script.env_py_location).read_text(encoding="utf-8")
    return "attributes" in source and "connection" in source


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
            return []

        original = project.script
        project.script = script
        try:
            run_env(project, fn, connection=connection)
        finally:
            project.script = original
        if connection.in_transaction():
            connection.rollback()
    scripts = [s for s in revision_context.generate_scripts() if s is not None]
    if not scripts:
        raise ScriptError("alembic wrote no revision file")
    return scripts[0]


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
