"""``umbau new --expand``: the expand and the contract revision of a rename or type
change, written together (the contract one with ``phase = "post"``).

Specs::

    rename documents.ocr_text documents.extracted_text
    type documents.confidence_score numeric(5,4)

The column's current type is read from the database: the revisions name it for
``--sql`` rendering and for their downgrades.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.errors import UsageError
from umbau.settings import Settings

_SPEC = re.compile(r"\s*(rename|type)\s+(\S+)\s+(.+?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ExpandSpec:
    """``kind`` "rename": ``new`` is the new column name; "type": the new SQL type."""

    kind: str
    table: str
    column: str
    new: str


def parse_spec(text: str) -> ExpandSpec:
    """Parse an ``--expand`` spec; UsageError (with both forms) for anything else."""
    found = _SPEC.fullmatch(text)
    usage = ('use "rename TABLE.OLD TABLE.NEW" or "type TABLE.COLUMN TYPE", e.g. '
             '"type documents.confidence_score numeric(5,4)"')
    if not found:
        raise UsageError(f"--expand {text!r}: {usage}")
    kind, source, rest = found.group(1).lower(), found.group(2), found.group(3)
    table, _, column = source.rpartition(".")
    if not table or not column:
        raise UsageError(f"--expand {text!r}: name the column as TABLE.COLUMN; {usage}")
    if kind == "type":
        return ExpandSpec(kind, table, column, rest)
    new_table, _, new_column = rest.rpartition(".")
    if new_table != table or not new_column or " " in rest:
        raise UsageError(f"--expand {text!r}: a rename stays in {table}: "
                         f"rename {table}.{column} {table}.NEW_NAME")
    return ExpandSpec(kind, table, column, new_column)


@dataclass
class WrittenRevision:
    revision: str
    path: str
    message: str
    phase: str

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "path": self.path, "message": self.message,
                "phase": self.phase}


@dataclass
class ExpandResult:
    expand: WrittenRevision
    contract: WrittenRevision

    def as_dict(self) -> dict[str, Any]:
        return {"expand": self.expand.as_dict(), "contract": self.contract.as_dict()}


def write_expand(settings: Settings, spec_text: str, *, head: str = "head",
                 current_type: str | None = None) -> ExpandResult:
    """Write both revisions after ``head``. ``current_type`` (SQL) of the column is read
    from the database when not given (SettingsError without a database URL)."""
    spec = parse_spec(spec_text)
    project = bridge.Project(settings, settings.database_url)
    if head == "head" and len(project.heads()) > 1:
        raise bridge.multiple_heads(project.heads())
    old_type = current_type or _column_type(settings, spec)
    up, down, cup, cdown = _bodies(spec, old_type)
    what = _describe(spec)
    first = bridge.generate_written(project, f"expand: {what}", head, upgrades=up,
                                    downgrades=down, imports="from umbau import ops")
    second = bridge.generate_written(bridge.Project(settings, settings.database_url),
                                     f"contract: {what}", first.revision, upgrades=cup,
                                     downgrades=cdown, imports="from umbau import ops")
    _mark_post(Path(second.path))
    return ExpandResult(WrittenRevision(first.revision, first.path, f"expand: {what}", "pre"),
                        WrittenRevision(second.revision, second.path, f"contract: {what}",
                                        "post"))


def _describe(spec: ExpandSpec) -> str:
    if spec.kind == "rename":
        return f"rename {spec.table}.{spec.column} to {spec.new}"
    return f"change {spec.table}.{spec.column} to {spec.new}"


def _bodies(spec: ExpandSpec, old_type: str) -> tuple[str, str, str, str]:
    args = f"{spec.table!r}, {spec.column!r}, {spec.new!r}"
    if spec.kind == "rename":
        return (f"ops.rename_column({args}, type_={old_type!r})",
                f"ops.revert_rename_column({args})",
                f"ops.contract_rename_column({args})",
                f"ops.revert_contract_rename_column({args}, type_={old_type!r})")
    column = f"{spec.table!r}, {spec.column!r}"
    return (f"ops.change_type({args}, existing_type={old_type!r})",
            f"ops.revert_change_type({column}, {old_type!r})",
            f"ops.contract_change_type({args})",
            f"ops.revert_contract_change_type({args}, {old_type!r})")


def _mark_post(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    marked = re.sub(r"^(depends_on = .*)$",
                    r'\1\n# after the deploy, once the old application version is gone\n'
                    r'phase = "post"', text, count=1, flags=re.MULTILINE)
    path.write_text(marked, encoding="utf-8")


def _column_type(settings: Settings, spec: ExpandSpec) -> str:
    from sqlalchemy import text

    from umbau.postgres.connect import connect

    with connect(settings.require_database_url()) as conn:
        found = conn.execute(text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "to_regclass(:t) AND attname = :c AND attnum > 0 AND NOT attisdropped"),
            {"t": spec.table, "c": spec.column}).scalar()
    if found is None:
        raise UsageError(f"the database has no column {spec.table}.{spec.column}: upgrade it "
                         "to the head first, or check the name")
    return str(found)
