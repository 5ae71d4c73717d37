"""umbau: safe, fast, zero-downtime migrations for Alembic projects on PostgreSQL.

Every command is a function that takes :class:`Settings` first and returns a
result object; the CLI (``umbau``) only renders them::

    import os
    from umbau import load_settings, status, upgrade

    settings = load_settings(environ=os.environ)
    print(upgrade(settings, "head").as_dict())

The names below are imported on first use, so ``import umbau`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from umbau._version import __version__

_EXPORTS = {
    "Event": "umbau.events",
    "Settings": "umbau.settings",
    "load_settings": "umbau.settings",
    "UmbauError": "umbau.errors",
    "init": "umbau.commands.init",
    "new": "umbau.commands.new",
    "show_config": "umbau.commands.config",
    "status": "umbau.commands.status",
    "check": "umbau.commands.status",
    "current": "umbau.commands.info",
    "heads": "umbau.commands.info",
    "history": "umbau.commands.info",
    "show": "umbau.commands.info",
    "upgrade": "umbau.commands.migrate",
    "upgrade_sql": "umbau.commands.migrate",
    "downgrade": "umbau.commands.migrate",
    "preview_downgrade": "umbau.commands.migrate",
    "stamp": "umbau.commands.migrate",
    "merge": "umbau.commands.migrate",
    "doctor": "umbau.commands.doctor",
    "demo": "umbau.commands.demo",
    "lint": "umbau.commands.lint",
    "test": "umbau.commands.test",
    "backup": "umbau.backup.dump",
    "verify_backup": "umbau.backup.verify",
    "restore": "umbau.backup.restore",
    "copy": "umbau.backup.copy",
    "Backfill": "umbau.backfill.api",
    "run_backfill": "umbau.backfill.orchestrator",
    "run_in_revision": "umbau.backfill.revision",
    "ops": "umbau.ops",  # a module: `from umbau import ops` in revision files
}
_RENAMED = {"verify_backup": "verify"}

__all__ = [
    "Backfill",
    "Event",
    "Settings",
    "UmbauError",
    "__version__",
    "backup",
    "check",
    "copy",
    "current",
    "demo",
    "doctor",
    "downgrade",
    "heads",
    "history",
    "init",
    "lint",
    "load_settings",
    "merge",
    "new",
    "ops",
    "preview_downgrade",
    "restore",
    "run_backfill",
    "run_in_revision",
    "show",
    "show_config",
    "stamp",
    "status",
    "test",
    "upgrade",
    "upgrade_sql",
    "verify_backup",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'umbau' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module == f"umbau.{name}" else getattr(imported, _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from umbau import ops
    from umbau.backfill.api import Backfill
    from umbau.backfill.orchestrator import run_backfill
    from umbau.backfill.revision import run_in_revision
    from umbau.backup.copy import copy
    from umbau.backup.dump import backup
    from umbau.backup.restore import restore
    from umbau.backup.verify import verify as verify_backup
    from umbau.commands.config import show_config
    from umbau.commands.demo import demo
    from umbau.commands.doctor import doctor
    from umbau.commands.info import current, heads, history, show
    from umbau.commands.init import init
    from umbau.commands.lint import lint
    from umbau.commands.migrate import (
        downgrade,
        merge,
        preview_downgrade,
        stamp,
        upgrade,
        upgrade_sql,
    )
    from umbau.commands.new import new
    from umbau.commands.status import check, status
    from umbau.commands.test import test
    from umbau.errors import UmbauError
    from umbau.events import Event
    from umbau.settings import Settings, load_settings
