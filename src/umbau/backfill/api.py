"""Declaring a backfill: which table, which key, what change, what must hold afterwards."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from umbau.errors import UmbauError, UsageError
from umbau.loader import load_object, split_spec

if TYPE_CHECKING:
    from umbau.payload.registry import Registry

Row = dict[str, Any]
Transform = Callable[[list[Row]], "Sequence[Row] | None"]


@dataclass(frozen=True)
class Backfill:
    """One data migration, changed batch by batch on the table's key.

    Give either ``set`` (column -> SQL expression, evaluated per row like the SET
    list of an UPDATE) or ``transform``: a Python function that receives a batch of
    rows (dicts of the key columns and ``columns``) and returns the rows to write
    back, each a dict of the key columns and the columns it changes. ``where`` (SQL)
    limits the rows that change; ``verify`` (SQL) must be true for every row of the
    table once the backfill is done.
    """

    name: str
    table: str
    set: Mapping[str, str] | None = None
    transform: Transform | None = None
    where: str | None = None
    key: Sequence[str] | None = None
    columns: Sequence[str] | None = None
    verify: str | None = None
    batch_size: int | None = None
    min_batch_size: int | None = None
    max_batch_size: int | None = None
    target_duration: float | None = None
    pause: float | None = None
    chunks: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"backfill name {self.name!r} must be letters, digits, '_' or '-'")
        if (self.set is None) == (self.transform is None):
            raise UsageError(f"backfill {self.name}: give exactly one of set= (SQL) or "
                             "transform= (a Python function)")
        if self.set is not None and not self.set:
            raise UsageError(f"backfill {self.name}: set= is empty: name at least one column")
        if self.transform is not None and not callable(self.transform):
            raise UsageError(f"backfill {self.name}: transform= must be a function")

    @classmethod
    def from_payload(cls, table: str, column: str, kind: str, *,
                     registry: Registry | None = None, **options: Any) -> Backfill:
        """Upgrade every document of payload ``kind`` in ``table.column`` to its latest
        version (rows already there are not touched); see
        :func:`umbau.backfill.payload.payload_backfill` for the options."""
        from umbau import payload
        from umbau.backfill.payload import payload_backfill

        return cls(**payload_backfill(table, column, kind,
                                      registry=registry or payload.registry, **options))

    @property
    def kind(self) -> str:
        return "sql" if self.set is not None else "python"

    def definition(self) -> dict[str, Any]:
        """What identifies the change. A transform counts by its qualified name, not its
        body, so that fixing a transform that raised resumes the same backfill."""
        return {
            "table": self.table,
            "key": list(self.key) if self.key else None,
            "set": dict(self.set) if self.set is not None else None,
            "transform": _qualname(self.transform) if self.transform else None,
            "columns": list(self.columns) if self.columns else None,
            "where": self.where,
            "verify": self.verify,
        }

    def fingerprint(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def load_backfill(spec: str, root: Path | None = None) -> Backfill:
    """Import ``module:attribute`` (the project root is put on sys.path first)."""
    try:
        module_name, attribute = split_spec(spec)
    except ValueError:
        raise UsageError(f"{spec!r} is not module:attribute, e.g. myapp.backfills:ocr_v2"
                         ) from None
    try:
        value: Any = load_object(spec, root)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r} ({exc}): check the module path "
                         "and run from the project folder") from exc
    except AttributeError:
        raise UsageError(f"{module_name} has no attribute {attribute!r}: name a Backfill"
                         ) from None
    except UmbauError:
        raise  # a Backfill(...) declared wrongly at import: already one line
    except Exception as exc:  # the module's own code (any error, SyntaxError included)
        raise UsageError(f"importing {module_name!r} failed ({_describe(exc)}): fix the "
                         "module (rerun with --debug for the traceback)") from exc
    if value is None:
        raise UsageError(f"{module_name} has no attribute {attribute!r}: name a Backfill")
    if callable(value) and not isinstance(value, Backfill):
        value = _call_factory(spec, value)
    if not isinstance(value, Backfill):
        raise UsageError(f"{spec} is a {type(value).__name__}, not a umbau.backfill.Backfill")
    return value


def _call_factory(spec: str, factory: Callable[[], Any]) -> Any:
    """Call a function that returns the Backfill; its errors are one line."""
    try:
        return factory()
    except UmbauError:
        raise
    except Exception as exc:
        raise UsageError(f"{spec}() failed ({_describe(exc)}): name a Backfill, or a function "
                         "without arguments that returns one (rerun with --debug for the "
                         "traceback)") from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"  # a SyntaxError's text names its file and line
