"""The databases of a fleet: where they come from, their names, tags and URLs.

Sources, in order of precedence (the first one given wins):

1. a targets file (``--targets FILE`` / ``targets = "FILE"``): one URL per line with
   ``#`` comments, or a TOML file (``.toml``) of ``[[targets]]`` tables with ``name``,
   ``url`` and ``tags``;
2. a query against the control database (``--targets-query`` / ``targets_query``)
   returning ``name, url`` and optionally ``tags`` (a text array);
3. a URL template and database names (``--url-template``/``--databases``, or
   ``url_template``/``databases``): ``{name}`` in the template is replaced by each name,
   or else the template's database is;
4. an inline list in ``[tool.umbau.fleet]``: ``targets = [{name = ..., url = ...}]``.

URLs keep their passwords in memory only: everything shown or stored goes through
:func:`display_url` (masked) or :func:`stored_url` (password removed).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from umbau.errors import SettingsError, UsageError
from umbau.settings import mask_url


@dataclass(frozen=True)
class Target:
    """One database of the fleet. ``url`` may hold a password: never print it."""

    name: str
    url: str
    tags: tuple[str, ...] = ()

    @property
    def shown_url(self) -> str:
        return display_url(self.url)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.shown_url, "tags": list(self.tags)}


@dataclass(frozen=True)
class TargetSource:
    """Where the targets come from (at most one of the first three is used)."""

    file: Path | None = None
    query: str | None = None
    url_template: str | None = None
    databases: tuple[str, ...] = ()
    inline: tuple[Mapping[str, Any], ...] = ()

    @property
    def given(self) -> bool:
        return bool(self.file or self.query or self.url_template or self.inline)


def display_url(url: str) -> str:
    """The URL with its password masked (``***``), as printed everywhere."""
    return mask_url(url) or ""


def stored_url(url: str) -> str:
    """The URL without its password: what the control database keeps.

    A worker that joins a run without a targets file of its own connects with this URL;
    libpq then takes the password from ``PGPASSWORD`` or ``~/.pgpass``.
    """
    try:
        parsed = make_url(url)
        # URL.set() ignores None; the URL is a named tuple, so _replace drops the password
        return parsed._replace(password=None).render_as_string(hide_password=False)
    except Exception as exc:
        raise UsageError(f"target URL {display_url(url)!r} is not valid: use "
                         "postgresql://user@host:port/database") from exc


def database_name(url: str) -> str:
    """The database a URL names (the default target name)."""
    try:
        name = make_url(url).database
    except Exception as exc:
        raise UsageError(f"target URL {display_url(url)!r} is not valid: use "
                         "postgresql://user@host:port/database") from exc
    if not name:
        raise UsageError(f"target URL {display_url(url)!r} names no database: add /DBNAME")
    return name


def from_lines(text: str, origin: str) -> list[Target]:
    """One URL per line; blank lines and ``#`` comments are skipped."""
    targets = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()  # a URL may hold '#'
        if not line:
            continue
        if "://" not in line or " " in line:
            raise UsageError(f"{origin}:{number}: expected one database URL per line "
                             "(postgresql://user@host/db); use a .toml file for names and tags")
        targets.append(Target(database_name(line), line))
    return targets


def from_entries(entries: Sequence[Any], origin: str) -> list[Target]:
    """Tables with ``url`` and optional ``name`` and ``tags`` (TOML file or settings)."""
    targets = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
            raise UsageError(f"{origin}: target #{number} needs a url = \"postgresql://...\"")
        tags = entry.get("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise UsageError(f"{origin}: target #{number}: tags must be a list of strings")
        name = entry.get("name") or database_name(entry["url"])
        targets.append(Target(str(name), entry["url"], tuple(tags)))
    return targets


def from_file(path: Path) -> list[Target]:
    """A targets file: TOML (``.toml``) or one URL per line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the targets file {path}: {exc.strerror}") from exc
    if path.suffix != ".toml":
        return from_lines(text, str(path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}: fix the TOML syntax") from exc
    entries = data.get("targets")
    if not isinstance(entries, list):
        raise UsageError(f"{path}: no [[targets]] tables: add entries with name, url, tags")
    return from_entries(entries, str(path))


def from_template(template: str, databases: Sequence[str]) -> list[Target]:
    """``{name}`` in ``template`` replaced by each database name (or its database part)."""
    if not databases:
        raise UsageError("--url-template needs --databases NAME...")
    if "{name}" in template:
        return [Target(name, template.replace("{name}", name)) for name in databases]
    try:
        base = make_url(template)
    except Exception as exc:
        raise UsageError(f"--url-template {display_url(template)!r} is not a URL: use "
                         "postgresql://user@host/{name}") from exc
    return [Target(name, base.set(database=name).render_as_string(hide_password=False))
            for name in databases]


def from_rows(rows: Sequence[Sequence[Any]], query: str) -> list[Target]:
    """The rows of a targets query: ``name, url[, tags]``."""
    targets = []
    for row in rows:
        if len(row) < 2 or not isinstance(row[1], str):
            raise UsageError(f"the targets query must return name, url[, tags]: {query!r}")
        tags = tuple(row[2] or ()) if len(row) > 2 else ()
        targets.append(Target(str(row[0]), row[1], tags))
    return targets


def source_from_settings(section: Mapping[str, Any], base: Path) -> TargetSource:
    """The target source of ``[tool.umbau.fleet]`` (paths relative to the settings file)."""
    targets = section.get("targets")
    file = inline = None
    if isinstance(targets, str):
        file = Path(targets).expanduser()
        file = file if file.is_absolute() else base / file
    elif isinstance(targets, list):
        inline = tuple(targets)
    elif targets is not None:
        raise SettingsError("[tool.umbau.fleet] targets must be a file name or a list of "
                            "{name, url, tags} tables")
    databases = section.get("databases", [])
    if not isinstance(databases, list):
        raise SettingsError("[tool.umbau.fleet] databases must be a list of database names")
    return TargetSource(file=file, query=section.get("targets_query"),
                        url_template=section.get("url_template"),
                        databases=tuple(str(d) for d in databases), inline=inline or ())


def merge_sources(flags: TargetSource, configured: TargetSource) -> TargetSource:
    """Flags win over the settings file as a whole: sources are not mixed."""
    if flags.given:
        return flags
    if flags.databases and configured.url_template:
        return TargetSource(url_template=configured.url_template, databases=flags.databases)
    return configured


def resolve(source: TargetSource,
            query: Callable[[str], Sequence[Sequence[Any]]] | None = None) -> list[Target]:
    """The targets of ``source``, checked: names unique, at least one.

    ``query`` runs the targets query against the control database (needed only for a
    query source). Raises :class:`UsageError` naming what to fix.
    """
    if source.file is not None:
        targets = from_file(source.file)
    elif source.query is not None:
        if query is None:
            raise UsageError("--targets-query needs a control database: pass --control-url")
        targets = from_rows(query(source.query), source.query)
    elif source.url_template is not None:
        targets = from_template(source.url_template, source.databases)
    elif source.inline:
        targets = from_entries(source.inline, "[tool.umbau.fleet] targets")
    else:
        raise UsageError("no fleet targets: pass --targets FILE, --targets-query SQL or "
                         "--url-template URL --databases NAME..., or set them in "
                         "[tool.umbau.fleet]")
    return _checked(targets)


def _checked(targets: list[Target]) -> list[Target]:
    if not targets:
        raise UsageError("the fleet has no targets: add database URLs to the targets source")
    seen: set[str] = set()
    for target in targets:
        if not re.fullmatch(r"[^\s]{1,200}", target.name):
            raise UsageError(f"target name {target.name!r} must be 1-200 characters, no spaces")
        if target.name in seen:
            raise UsageError(f"two targets are named {target.name!r}: give each a unique name "
                             "(a .toml targets file has a name per entry)")
        seen.add(target.name)
    return targets


def select(targets: Sequence[Target], tags: Sequence[str]) -> list[Target]:
    """The targets carrying every one of ``tags`` (all targets when none is given)."""
    wanted = set(tags)
    chosen = [t for t in targets if wanted <= set(t.tags)]
    if not chosen:
        raise UsageError(f"no target has the tag(s) {', '.join(sorted(wanted))}: check --tags")
    return chosen
