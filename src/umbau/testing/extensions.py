"""Extensions a history needs, found before ``umbau test`` starts, and the server to run on.

A history that creates a contrib extension (``citext``, ``pg_trgm``, ``hstore`` ...) fails
at its first revision on a server that does not ship it: an environment problem, not a
defect of the history. The revision files (and an ``.sql`` setup hook) are read for
``CREATE EXTENSION``; the server's ``pg_available_extensions`` is compared with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import text

from umbau import alembic_bridge as bridge
from umbau.postgres.connect import connect

_CREATE = re.compile(r"CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?([A-Za-z0-9_-]+)\"?",
                     re.IGNORECASE)


def required(project: bridge.Project, extra_files: Iterable[str | Path] = ()) -> list[str]:
    """Names of the extensions the revision files (and ``extra_files``) create, sorted."""
    paths = [Path(r.path) for r in project.revisions()] + [Path(p) for p in extra_files]
    names: set[str] = set()
    for path in paths:
        try:
            names.update(m.lower() for m in _CREATE.findall(path.read_text(encoding="utf-8")))
        except OSError:
            continue  # an unreadable file fails later with its own message
    return sorted(names)


def available(server_url: str) -> set[str]:
    """Extensions the server at ``server_url`` can create (``pg_available_extensions``)."""
    with connect(server_url) as conn:
        return set(conn.execute(text("SELECT name FROM pg_available_extensions")).scalars())


def missing(needed: Iterable[str], server_url: str) -> list[str]:
    """The extensions of ``needed`` the server lacks, sorted."""
    needed = sorted(needed)
    if not needed:
        return []
    have = available(server_url)
    return [n for n in needed if n not in have]
