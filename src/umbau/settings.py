"""Settings: file + environment + flags -> one frozen :class:`Settings`.

Precedence, per key: flags > ``UMBAU_*`` environment > ``DATABASE_URL`` (the URL
only) > the settings file > ``sqlalchemy.url`` of alembic.ini (the URL only) >
defaults. The settings file is ``umbau.toml`` or the ``[tool.umbau]`` table of a
``pyproject.toml``, found by walking up from the working directory. The library
never reads ``os.environ`` itself: callers pass the environment in.
"""

from __future__ import annotations

import configparser
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from umbau.errors import SettingsError

SETTINGS_FILE = "umbau.toml"
PYPROJECT = "pyproject.toml"
ALEMBIC_INI = "alembic.ini"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_OFF = {"off", "none", "0", "false", "disabled"}


def parse_duration(value: Any, *, key: str, allow_off: bool = False) -> float | None:
    """Parse ``"2s"``, ``"500ms"``, ``"15min"``, ``"1h"`` or a number of seconds."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF):
        if allow_off:
            return None
        raise SettingsError(f"{key} cannot be off: give a duration such as '2s' or '15min'")
    if isinstance(value, bool):
        raise SettingsError(f"{key} = {value!r} is not a duration: use e.g. '2s', '500ms', '15min'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise SettingsError(
                f"{key} = {value!r} is not a duration: use e.g. '2s', '500ms', '15min'"
            )
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "").lower() or None]
    if seconds < 0:
        raise SettingsError(f"{key} = {value!r} is negative: give a positive duration")
    if seconds == 0 and allow_off:
        return None
    return seconds


def format_duration(seconds: float | None) -> str:
    """The inverse of :func:`parse_duration`, for display."""
    if seconds is None:
        return "off"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}min"
    return f"{seconds:g}s"


def parse_int(value: Any, *, key: str, minimum: int = 0) -> int:
    """A whole number of at least ``minimum``; ``key`` names it in the error."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} = {value!r} is not a whole number") from None
    if number < minimum:
        hint = "is negative: give 0 or more" if minimum == 0 else f"must be {minimum} or more"
        raise SettingsError(f"{key} = {value!r} {hint}")
    return number


def _parse_str(value: Any, *, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{key} = {value!r} must be a non-empty string")
    return value.strip()


_DURATION_KEYS = {"lock_timeout": False, "statement_timeout": True, "lock_wait": False,
                  "backoff_base": False, "backoff_max": False}
# the keys whose values are durations (seconds), e.g. for display with format_duration
DURATION_KEYS = frozenset(_DURATION_KEYS)
_INT_KEYS = {"retries"}
_PATH_KEYS = {"alembic_config", "script_location"}
_STR_KEYS = {"database_url", "metadata", "history_table"}


@dataclass(frozen=True)
class Settings:
    """The effective settings of one run. ``sources`` says where each value came from."""

    database_url: str | None = None
    alembic_config: Path | None = None
    script_location: Path | None = None
    metadata: str | None = None
    lock_timeout: float | None = 2.0
    statement_timeout: float | None = None
    retries: int = 10
    backoff_base: float | None = 0.5
    backoff_max: float | None = 30.0
    lock_wait: float | None = 900.0
    history_table: str = "umbau_history"
    root: Path = field(default_factory=Path.cwd)
    settings_file: Path | None = None
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "no database URL: set database_url in [tool.umbau], UMBAU_DATABASE_URL or "
                "DATABASE_URL, or pass --database-url"
            )
        return self.database_url

    def require_alembic(self) -> tuple[Path | None, Path | None]:
        """(alembic.ini, script_location); at least one is set, or SettingsError."""
        if self.alembic_config is None and self.script_location is None:
            where = self.root
            raise SettingsError(
                f"no umbau settings found in {where} or its parents: run `umbau init`, add "
                "[tool.umbau] to pyproject.toml, or pass --script-location"
            )
        return self.alembic_config, self.script_location

    def section(self, name: str) -> Mapping[str, Any]:
        """A sub-table such as ``[tool.umbau.lint]``, empty when absent."""
        return self.sections.get(name, {})

    def with_overrides(self, **changes: Any) -> Settings:
        sources = dict(self.sources)
        for key in changes:
            sources[key] = "override"
        return replace(self, sources=sources, **changes)


KEYS = tuple(
    f.name
    for f in fields(Settings)
    if f.name not in {"root", "settings_file", "sections", "sources"}
)


def find_settings_file(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """Walk up from ``start``: the first umbau.toml, or pyproject.toml with [tool.umbau]."""
    for folder in (start, *start.parents):
        candidate = folder / SETTINGS_FILE
        if candidate.is_file():
            data = _read_toml(candidate)
            return candidate, data.get("tool", {}).get("umbau", data)
        candidate = folder / PYPROJECT
        if candidate.is_file():
            data = _read_toml(candidate)
            table = data.get("tool", {}).get("umbau")
            if table is not None:
                return candidate, table
    return None, {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}: fix the TOML syntax") from exc
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc


def _coerce(key: str, value: Any, base: Path) -> Any:
    if key in _DURATION_KEYS:
        return parse_duration(value, key=key, allow_off=_DURATION_KEYS[key])
    if key in _INT_KEYS:
        return parse_int(value, key=key)
    if key in _PATH_KEYS:
        path = Path(_parse_str(value, key=key)).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    if key in _STR_KEYS:
        return _parse_str(value, key=key)
    raise SettingsError(_unknown_key_message(key))


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(KEYS)})"
    return f"unknown setting {key!r}{hint}"


def _ini_url(ini: Path) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini)
    except configparser.Error:
        return None
    url = parser.get("alembic", "sqlalchemy.url", fallback=None)
    if not url or "%(" in url or url.startswith("driver://"):
        return None
    return url


def load_settings(
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge defaults, the settings file, the environment and flags, flags winning per key.

    ``environ``: the environment to read (``UMBAU_*``, ``DATABASE_URL``, and for the
    ``[backup]`` section ``UMBAU_PG_BIN`` and ``PATH``); never ``os.environ`` by itself.
    Raises :class:`~umbau.errors.SettingsError` on an unknown key or a bad value.
    """
    cwd = (cwd or Path.cwd()).resolve()
    environ = environ or {}
    path, table = _settings_table(cwd, config_file)
    root = path.parent if path else cwd
    values: dict[str, Any] = {}
    sources: dict[str, str] = {k: "default" for k in KEYS}
    sections: dict[str, Mapping[str, Any]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            sections[key] = value
            continue
        values[key] = _coerce(key, value, root)
        sources[key] = f"file {path}"
    _find_alembic(values, sources, root)
    _from_environment(values, sources, environ, cwd)
    _from_flags(values, sources, flags or {}, cwd)
    if "backup" in sections or _BACKUP_ENV.intersection(environ):
        sections["backup"] = _backup_binaries(sections.get("backup", {}), environ)
    return Settings(root=root, settings_file=path, sections=sections, sources=sources, **values)


def _settings_table(cwd: Path, config_file: Path | None) -> tuple[Path | None, dict[str, Any]]:
    """The settings file and its umbau table: ``config_file``, or found from ``cwd`` up."""
    if config_file is None:
        return find_settings_file(cwd)
    config_file = config_file.resolve()
    if not config_file.is_file():
        raise SettingsError(f"settings file {config_file} does not exist")
    data = _read_toml(config_file)
    return config_file, data.get("tool", {}).get("umbau", data)


def _find_alembic(values: dict[str, Any], sources: dict[str, str], root: Path) -> None:
    """alembic.ini (or ``[tool.alembic]``) beside the settings, and its sqlalchemy.url."""
    if "alembic_config" not in values and "script_location" not in values:
        ini = root / ALEMBIC_INI
        pyproject = root / PYPROJECT
        if ini.is_file():
            values["alembic_config"] = ini
            sources["alembic_config"] = f"found {ini}"
        elif pyproject.is_file() and "alembic" in _read_toml(pyproject).get("tool", {}):
            values["alembic_config"] = pyproject  # Alembic >= 1.16: [tool.alembic] only
            sources["alembic_config"] = f"found [tool.alembic] in {pyproject}"
    if "database_url" not in values and values.get("alembic_config"):
        url = _ini_url(values["alembic_config"])
        if url:
            values["database_url"] = url
            sources["database_url"] = f"sqlalchemy.url in {values['alembic_config']}"


def _from_environment(values: dict[str, Any], sources: dict[str, str],
                      environ: Mapping[str, str], cwd: Path) -> None:
    """DATABASE_URL, then UMBAU_<KEY> for every key (paths relative to ``cwd``)."""
    if environ.get("DATABASE_URL"):
        values["database_url"] = environ["DATABASE_URL"]
        sources["database_url"] = "env DATABASE_URL"
    for key in KEYS:
        env_key = f"UMBAU_{key.upper()}"
        if environ.get(env_key):
            values[key] = _coerce(key, environ[env_key], cwd)
            sources[key] = f"env {env_key}"


def _from_flags(values: dict[str, Any], sources: dict[str, str], flags: Mapping[str, Any],
                cwd: Path) -> None:
    """Command-line flags (None: not given), which win over everything else."""
    for key, value in flags.items():
        if value is None:
            continue
        if key not in KEYS:
            raise SettingsError(_unknown_key_message(key))
        values[key] = _coerce(key, value, cwd)
        sources[key] = f"flag --{key.replace('_', '-')}"


_BACKUP_ENV = {"UMBAU_PG_BIN", "PATH"}


def _backup_binaries(section: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``[backup]`` with where pg_dump and pg_restore are looked for, from the environment.

    ``UMBAU_PG_BIN`` (a folder) wins over the file's ``pg_bin``; ``PATH`` is searched when
    the file sets no ``search_path``. Resolved here, not in the CLI, so that a library
    call with the same environment takes the same binaries as ``umbau backup``.
    """
    out = dict(section)
    if environ.get("UMBAU_PG_BIN"):
        out["pg_bin"] = environ["UMBAU_PG_BIN"]
    if environ.get("PATH"):
        out.setdefault("search_path", environ["PATH"])
    return out


def mask_url(url: str | None) -> str | None:
    """The URL with its password replaced by ``***``, in every form
    (:func:`umbau.masking.mask_secrets`: userinfo, ``?password=``, keyword DSNs)."""
    if url is None:
        return None
    from umbau.masking import mask_secrets

    return mask_secrets(url)
