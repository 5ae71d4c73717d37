"""Database errors as people read them: message, DETAIL and HINT on one line."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from umbau.postgres.connect import sqlstate


def describe_error(exc: BaseException) -> str:
    """One line for a database or Python error, keeping PostgreSQL's DETAIL and HINT.

    ``cannot drop table a because other objects depend on it (DETAIL: constraint b_a_fkey
    on table b depends on table a; HINT: Use DROP ... CASCADE ...)``. A Python error is
    ``TypeName: message``; lock timeouts and deadlocks are prefixed with what they are.
    """
    orig: Any = getattr(exc, "orig", None)
    source = orig if orig is not None else exc
    lines = str(source).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if orig is None and not isinstance(exc, sa.exc.SQLAlchemyError):
        first = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    diag = getattr(source, "diag", None)
    extra = [f"{label}: {value}" for label, value in (
        ("DETAIL", getattr(diag, "message_detail", None)),
        ("HINT", getattr(diag, "message_hint", None))) if value]
    if extra:
        first = f"{first} ({'; '.join(' '.join(e.split()) for e in extra)})"
    code = sqlstate(exc)
    if code == "55P03":
        return f"lock timeout ({first})"
    if code == "40P01":
        return f"deadlock ({first})"
    return first
