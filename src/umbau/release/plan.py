"""Release plans: ``releases.toml`` (or ``[tool.umbau.releases."VERSION"]``) read into a
:class:`ReleasePlan`, every key checked before anything runs.

Where the plan comes from, first match wins: ``plan_file`` (``--plan FILE``); the
``releases`` table of the settings file (``[tool.umbau.releases."1.1.0"]`` in
pyproject.toml, ``[releases."1.1.0"]`` in umbau.toml); ``releases.toml`` beside the
settings file (or in the project root when there is no settings file).

Every mistake is one :class:`~umbau.errors.ReleasePlanError` line that names the file,
the version and the step (exit 37).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbau.errors import ReleasePlanError, SettingsError
from umbau.settings import Settings, parse_duration

PLAN_FILE = "releases.toml"
KINDS = ("preflight", "backup", "command", "migrate", "backfill", "env", "cache", "health",
         "smoke")
ROLLBACKS = ("auto", "downgrade", "restore")
PHASES = ("pre", "post")

# The keys each kind takes besides `kind` and `name`.
_KEYS: dict[str, frozenset[str]] = {
    "preflight": frozenset({"commands", "timeout"}),
    "backup": frozenset({"verify", "restore_test"}),
    "command": frozenset({"run", "undo", "timeout"}),
    "migrate": frozenset({"target", "phase"}),
    "backfill": frozenset({"names", "workers", "timeout"}),
    "env": frozenset({"file", "rename", "remove", "add", "require"}),
    "cache": frozenset({"url", "patterns", "flushall", "batch"}),
    "health": frozenset({"url", "expect_status", "interval", "deadline", "timeout"}),
    "smoke": frozenset({"run", "timeout"}),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "command": ("run",), "smoke": ("run",), "backfill": ("names",), "env": ("file",),
    "cache": ("url", "patterns"), "health": ("url",),
}
_RELEASE_KEYS = frozenset({"from", "rollback", "steps", "description"})
_DEFAULT_TIMEOUT = 3600.0  # seconds: commands without a timeout of their own


@dataclass(frozen=True)
class Step:
    """One step of a plan: its position (0-based), name, kind and its checked options.

    Durations in ``options`` are seconds (float); ``cwd`` is the folder commands run in.
    """

    index: int
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "kind": self.kind,
                "options": dict(self.options)}


@dataclass(frozen=True)
class ReleasePlan:
    """A version's plan: where it was read, the rollback method asked for, its steps."""

    version: str
    source: str
    folder: Path
    steps: tuple[Step, ...]
    rollback: str = "auto"
    from_version: str | None = None
    description: str | None = None

    @property
    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of everything in the plan that changes what a run
        does: the plan-level ``rollback`` and the steps (name, kind, options); not
        ``from`` nor ``description``. A resumed run must find the same plan."""
        text = json.dumps({"rollback": self.rollback,
                           "steps": [[s.name, s.kind, _jsonable(s.options)]
                                     for s in self.steps]}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def backup_first(self) -> bool:
        """True when a backup step comes before the first migrate or backfill step."""
        for step in self.steps:
            if step.kind == "backup":
                return True
            if step.kind in ("migrate", "backfill"):
                return False
        return False

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "source": self.source, "folder": str(self.folder),
                "from": self.from_version, "rollback": self.rollback,
                "description": self.description, "fingerprint": self.fingerprint,
                "steps": [_jsonable(s.as_dict()) for s in self.steps]}


@dataclass(frozen=True)
class RollbackChoice:
    """The rollback method a run uses (``downgrade`` or ``restore``), the warnings to
    show before it starts, and the pending revisions whose data changes a downgrade
    leaves in place (empty downgrade() after a data-only upgrade)."""

    method: str
    warnings: tuple[str, ...] = ()
    data_stays: tuple[str, ...] = ()


def choose_rollback(plan: ReleasePlan, refuses: Sequence[str],
                    data_stays: Sequence[tuple[str, str]]) -> RollbackChoice:
    """Decide the rollback method of ``plan`` from what its pending revisions' downgrades
    can do (:meth:`umbau.alembic_bridge.Project.irreversible_by_design` and
    ``check_downgradable``).

    ``refuses``: one line per revision whose downgrade cannot run (missing, empty after a
    schema change, raising, marked irreversible); ``data_stays``: (revision, reason) for
    downgrades that run but leave the upgrade's data changes. ``auto`` is ``restore``
    when a revision refuses, or when data would stay and a backup step comes before
    the first migrate/backfill step; else ``downgrade`` (with a warning when data stays).
    Raises :class:`~umbau.errors.ReleasePlanError` (exit 37) when the method chosen
    cannot work: restore without a backup step first, downgrade of a refusing revision.
    """
    where = f"{plan.source}: release {plan.version}"
    databases = any(s.kind in ("migrate", "backfill") for s in plan.steps)
    method = plan.rollback
    if method == "auto":
        method = "restore" if refuses or (data_stays and plan.backup_first) else "downgrade"
    if databases and method == "restore" and not plan.backup_first:
        why = f" ({refuses[0]})" if refuses else ""
        raise ReleasePlanError(
            f"{where}: rollback needs a restore{why} but no backup step comes before the "
            "first migrate or backfill step: add a backup step, or write the downgrade")
    if databases and method == "downgrade" and refuses:
        raise ReleasePlanError(
            f"{where}: rollback = \"downgrade\" but {refuses[0]}: use rollback = "
            "\"restore\" with a backup step")
    warnings: list[str] = []
    stays = tuple(r for r, _ in data_stays)
    if databases and method == "downgrade" and data_stays:
        names = ", ".join(f"{r} ({why})" for r, why in data_stays)
        fix = ("use rollback = \"restore\" (or \"auto\") with a backup step before the "
               "first migrate step" if plan.rollback == "downgrade" else
               "add a backup step before the first migrate step (auto then restores it)")
        warnings.append(f"a rollback by downgrade does not put back the data changed by "
                        f"{names}: {fix}")
    return RollbackChoice(method, tuple(warnings), stays if method == "downgrade" else ())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def load_plan(settings: Settings, version: str, plan_file: Path | None = None) -> ReleasePlan:
    """The plan of ``version``, checked.

    ``plan_file``: a releases.toml to read instead of the default places (module
    docstring). Raises :class:`~umbau.errors.ReleasePlanError` (exit 37) for a missing
    file or version, TOML syntax, an unknown key or kind, a bad duration or value.
    """
    source, folder, table = _releases_table(settings, plan_file)
    releases = table.get(version)
    if not isinstance(releases, Mapping):
        known = ", ".join(sorted(str(k) for k in table)) or "none"
        raise ReleasePlanError(f"{source}: no release {version!r} (known: {known}): add "
                               f'[releases."{version}"] with its steps')
    return parse_release(version, releases, source=source, folder=folder)


def known_versions(settings: Settings, plan_file: Path | None = None) -> list[str]:
    """The versions the plan file (or settings) describes, in file order."""
    _, _, table = _releases_table(settings, plan_file)
    return [str(k) for k in table]


def _releases_table(settings: Settings, plan_file: Path | None,
                    ) -> tuple[str, Path, Mapping[str, Any]]:
    if plan_file is not None:
        path = Path(plan_file).expanduser().resolve()
        if path.is_dir():
            raise ReleasePlanError(f"plan file {path} is a folder: give the path of a "
                                   f"releases.toml (e.g. {path / PLAN_FILE})")
        if not path.is_file():
            raise ReleasePlanError(f"plan file {path} does not exist: give the path of a "
                                   "releases.toml")
        return str(path), path.parent, _read_plan_file(path)
    section = settings.section("releases")
    if section:
        where = str(settings.settings_file) if settings.settings_file else "settings"
        return where, settings.root, section
    path = settings.root / PLAN_FILE
    if not path.is_file():
        raise ReleasePlanError(f"no release plan: write {path} (or [tool.umbau.releases] in "
                               "the settings, or pass --plan FILE)")
    return str(path), path.parent, _read_plan_file(path)


def _read_plan_file(path: Path) -> Mapping[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ReleasePlanError(f"{path}: {exc}: fix the TOML syntax") from exc
    except OSError as exc:
        raise ReleasePlanError(f"cannot read {path}: {exc.strerror}") from exc
    unknown = sorted(set(data) - {"releases"})
    if unknown:
        raise ReleasePlanError(f"{path}: unknown top-level key(s) {', '.join(unknown)}: "
                               'the plan lives under [releases."VERSION"]')
    releases = data.get("releases", {})
    if not isinstance(releases, Mapping):
        raise ReleasePlanError(f'{path}: releases must be a table of [releases."VERSION"]')
    return releases


def parse_release(version: str, table: Mapping[str, Any], *, source: str,
                  folder: Path) -> ReleasePlan:
    """Check one ``[releases."VERSION"]`` table (see :func:`load_plan`)."""
    where = f"{source}: release {version}"
    unknown = sorted(set(table) - _RELEASE_KEYS)
    if unknown:
        raise ReleasePlanError(f"{where}: unknown key(s) {', '.join(unknown)} (known: "
                               f"{', '.join(sorted(_RELEASE_KEYS))})")
    rollback = str(table.get("rollback", "auto"))
    if rollback not in ROLLBACKS:
        raise ReleasePlanError(f"{where}: rollback = {rollback!r}: use one of "
                               f"{', '.join(ROLLBACKS)}")
    raw_steps = table.get("steps", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ReleasePlanError(f'{where}: no steps: add [[releases."{version}".steps]] '
                               "tables")
    counts: dict[str, int] = {}
    for raw in raw_steps:
        if isinstance(raw, Mapping) and isinstance(raw.get("kind"), str):
            counts[raw["kind"]] = counts.get(raw["kind"], 0) + 1
    seen: dict[str, int] = {}
    steps: list[Step] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_steps):
        step = _parse_step(index, raw, where, counts, seen, folder)
        if step.name in names:
            raise ReleasePlanError(f"{where}: step {index + 1}: the name {step.name!r} is "
                                   "used twice: give each step its own name")
        names.add(step.name)
        steps.append(step)
    frm = table.get("from")
    description = table.get("description")
    return ReleasePlan(version=version, source=source, folder=folder, steps=tuple(steps),
                       rollback=rollback, from_version=None if frm is None else str(frm),
                       description=None if description is None else str(description))


def _parse_step(index: int, raw: Any, where: str, counts: Mapping[str, int],
                seen: dict[str, int], folder: Path) -> Step:
    label = f"{where}: step {index + 1}"
    if not isinstance(raw, Mapping):
        raise ReleasePlanError(f"{label}: a step is a table with a kind")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ReleasePlanError(f"{label}: kind = {kind!r}: use one of {', '.join(KINDS)}")
    seen[kind] = seen.get(kind, 0) + 1
    default = kind if counts.get(kind, 0) == 1 else f"{kind} {seen[kind]}"
    name = raw.get("name", default)
    if not isinstance(name, str) or not name.strip():
        raise ReleasePlanError(f"{label} ({kind}): name must be a non-empty string")
    label = f"{where}: step {index + 1} ({name})"
    unknown = sorted(set(raw) - _KEYS[kind] - {"kind", "name"})
    if unknown:
        raise ReleasePlanError(f"{label}: unknown key(s) {', '.join(unknown)} for a {kind} "
                               f"step (known: {', '.join(sorted(_KEYS[kind])) or 'none'})")
    missing = [k for k in _REQUIRED.get(kind, ()) if k not in raw]
    if missing:
        raise ReleasePlanError(f"{label}: a {kind} step needs {', '.join(missing)}")
    options = _check_options(kind, raw, label, folder)
    return Step(index=index, name=name, kind=kind, options=options)


def _check_options(kind: str, raw: Mapping[str, Any], label: str,
                   folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("timeout", "interval", "deadline"):
        if key in raw:
            try:
                out[key] = parse_duration(raw[key], key=key)
            except SettingsError as exc:
                raise ReleasePlanError(f"{label}: {exc}") from None
    if kind in ("command", "smoke", "preflight"):
        out.setdefault("timeout", _DEFAULT_TIMEOUT)
        out["cwd"] = str(folder)
    if kind in ("command", "smoke"):
        out["run"] = _string(raw, "run", label)
        if "undo" in raw:
            out["undo"] = _string(raw, "undo", label)
    elif kind == "preflight":
        out["commands"] = _strings(raw, "commands", label)
    elif kind == "backup":
        out["verify"] = _bool(raw, "verify", label, True)
        out["restore_test"] = _bool(raw, "restore_test", label, False)
    elif kind == "migrate":
        out["target"] = _string(raw, "target", label, "head")
        if "phase" in raw:
            phase = _string(raw, "phase", label)
            if phase not in PHASES:
                raise ReleasePlanError(f"{label}: phase = {phase!r}: use pre or post")
            out["phase"] = phase
    elif kind == "backfill":
        out["names"] = _strings(raw, "names", label)
        if not out["names"]:
            raise ReleasePlanError(f"{label}: names is empty: name the backfills to run")
        out["workers"] = _int(raw, "workers", label, 1, minimum=1)
        out.setdefault("timeout", _DEFAULT_TIMEOUT)
    elif kind == "env":
        out["file"] = str((folder / _string(raw, "file", label)).resolve())
        out["rename"] = _string_map(raw, "rename", label)
        out["remove"] = _strings(raw, "remove", label)
        out["add"] = _string_map(raw, "add", label)
        out["require"] = _strings(raw, "require", label)
    elif kind == "cache":
        out["url"] = _string(raw, "url", label)
        out["patterns"] = _strings(raw, "patterns", label)
        out["flushall"] = _bool(raw, "flushall", label, False)
        out["batch"] = _int(raw, "batch", label, 500, minimum=1)
        if not out["patterns"] and not out["flushall"]:
            raise ReleasePlanError(f"{label}: patterns is empty: name the keys to delete "
                                   "(e.g. 'etsy:*'), or set flushall = true")
    elif kind == "health":
        out["url"] = _string(raw, "url", label)
        out["expect_status"] = _int(raw, "expect_status", label, 200, minimum=100)
        out.setdefault("interval", 1.0)
        out.setdefault("deadline", 60.0)
        out.setdefault("timeout", 5.0)
    return out


def _string(raw: Mapping[str, Any], key: str, label: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ReleasePlanError(f"{label}: {key} = {value!r}: give a non-empty string")
    return value


def _strings(raw: Mapping[str, Any], key: str, label: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ReleasePlanError(f"{label}: {key} = {value!r}: give a list of strings")
    return list(value)


def _string_map(raw: Mapping[str, Any], key: str, label: str) -> dict[str, str]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str | int | float | bool)
                                                 and not isinstance(v, Mapping)
                                                 for v in value.values()):
        raise ReleasePlanError(f"{label}: {key} = {value!r}: give a table of KEY = \"value\"")
    return {str(k): _text(v) for k, v in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(raw: Mapping[str, Any], key: str, label: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ReleasePlanError(f"{label}: {key} = {value!r}: give true or false")
    return value


def _int(raw: Mapping[str, Any], key: str, label: str, default: int, *, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ReleasePlanError(f"{label}: {key} = {value!r}: give a whole number >= {minimum}")
    return value


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: str, environ: Mapping[str, str], label: str) -> str:
    """``${NAME}`` in ``value`` replaced from ``environ``; ReleasePlanError naming the
    variable when it is not set (a URL with a hole would reach the wrong server)."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ReleasePlanError(f"{label}: ${{{name}}} is not set in the environment: "
                                   "export it or write the value into the plan")
        return environ[name]

    return _VARIABLE.sub(replace, value)


def variables(value: str) -> Sequence[str]:
    """The ``${NAME}`` variables ``value`` refers to."""
    return _VARIABLE.findall(value)
