"""umbau: safe, fast, zero-downtime migrations for Alembic projects on PostgreSQL.

Every command is a function that takes :class:`Settings` first and returns a
result object; the CLI (``umbau``) only renders them.
"""

from __future__ import annotations

from umbau._version import __version__
from umbau.commands.config import show_config
from umbau.commands.doctor import doctor
from umbau.commands.info import current, heads, history, show
from umbau.commands.init import init
from umbau.commands.migrate import downgrade, merge, preview_downgrade, stamp, upgrade, upgrade_sql
from umbau.commands.new import new
from umbau.commands.status import check, status
from umbau.errors import UmbauError
from umbau.events import Event
from umbau.settings import Settings, load_settings

__all__ = [
    "Event",
    "Settings",
    "UmbauError",
    "__version__",
    "check",
    "current",
    "doctor",
    "downgrade",
    "heads",
    "history",
    "init",
    "load_settings",
    "merge",
    "new",
    "preview_downgrade",
    "show",
    "show_config",
    "stamp",
    "status",
    "upgrade",
    "upgrade_sql",
]
