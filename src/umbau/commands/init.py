"""``umbau init``: an Alembic environment that shares umbau's connection.

In a folder that already has an Alembic project (alembic.ini), nothing of it is
touched: umbau writes its settings file and says which lines env.py still
needs, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.errors import UsageError
from umbau.settings import ALEMBIC_INI, SETTINGS_FILE, Settings, find_settings_file

_ALEMBIC_INI = """\
# Written by `umbau init`. Plain `alembic` works too: it reads DATABASE_URL.
[alembic]
script_location = %(here)s/{directory}
prepend_sys_path = .
path_separator = os

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = WARNING
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

_SETTINGS = """\
# umbau settings; UMBAU_* environment variables and flags override them.
[tool.umbau]
alembic_config = "alembic.ini"
{metadata_line}# database_url = "postgresql://user@localhost:5432/app"   # or DATABASE_URL
lock_timeout = "2s"
retries = 10
lock_wait = "15min"
"""


@dataclass
class InitResult:
    folder: str
    created: list[str] = field(default_factory=list)
    existing_project: bool = False
    env_shares_connection: bool = True
    lines_to_add: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def init(settings: Settings, folder: Path | None = None, *, directory: str = "migrations",
         metadata: str | None = None) -> InitResult:
    """Create alembic.ini, ``directory``/env.py, its template and versions/, and umbau.toml."""
    root = (folder or settings.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    metadata = metadata or settings.metadata
    result = InitResult(folder=str(root))
    ini = root / ALEMBIC_INI
    if ini.exists():
        result.existing_project = True
        env_py = _env_py_of(settings, ini)
        source = env_py.read_text(encoding="utf-8") if env_py and env_py.exists() else ""
        result.env_shares_connection = bridge.source_shares_connection(source)
        if not result.env_shares_connection:
            result.lines_to_add = bridge.SHARING_RECIPE
    else:
        target = root / directory
        if target.exists() and any(target.iterdir()):
            raise UsageError(f"{target} exists and is not empty: choose --directory or remove it")
        (target / "versions").mkdir(parents=True, exist_ok=True)
        ini.write_text(_ALEMBIC_INI.format(directory=directory), encoding="utf-8")
        env = (bridge.TEMPLATES / "env.py").read_text(encoding="utf-8")
        (target / "env.py").write_text(_with_metadata(env, metadata), encoding="utf-8")
        mako = (bridge.TEMPLATES / "script.py.mako").read_text(encoding="utf-8")
        (target / "script.py.mako").write_text(mako, encoding="utf-8")
        result.created += [str(ini), str(target / "env.py"), str(target / "script.py.mako"),
                           str(target / "versions")]
    found, _ = find_settings_file(root)
    if found is None or found.parent != root:
        path = root / SETTINGS_FILE
        line = (f'metadata = "{metadata}"\n' if metadata
                else '# metadata = "myapp.models:Base.metadata"\n')
        path.write_text(_SETTINGS.format(metadata_line=line), encoding="utf-8")
        result.created.append(str(path))
    return result


def _with_metadata(env: str, metadata: str | None) -> str:
    if not metadata:
        return env.replace("${metadata_expr}", "None")
    module, _, attr = metadata.partition(":")
    if not module or not attr:
        raise UsageError(
            f"--metadata {metadata!r}: use module:attribute, e.g. app.models:Base.metadata")
    first = attr.split(".")[0]
    return env.replace("target_metadata = ${metadata_expr}",
                       f"from {module} import {first}  # noqa: E402\n\ntarget_metadata = {attr}")


def _pyproject_location(folder: Path) -> str | None:
    """``[tool.alembic] script_location`` of pyproject.toml (`alembic init -t pyproject`)."""
    import tomllib

    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return None
    table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    location = table.get("alembic", {}).get("script_location")
    return str(location).replace("%(here)s", str(folder)) if location else None


def _env_py_of(settings: Settings, ini: Path) -> Path | None:
    import configparser

    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    parser.read(ini)
    location = parser.get("alembic", "script_location", fallback=None) or \
        _pyproject_location(ini.parent)
    if not location:
        return None
    path = Path(location)
    if not path.is_absolute():
        path = ini.parent / path
    return path / "env.py"
