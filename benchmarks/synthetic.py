"""A synthetic, linear Alembic history of N revisions with realistic, varied operations.

``make_history(folder, revisions=500, seed=0)`` writes a complete project into
``folder``: alembic.ini, umbau.toml (``alembic_config``), migrations/env.py (umbau's
own template, which follows Alembic's connection-sharing recipe) and
migrations/versions/*.py. The same seed always writes the same files.

Every revision has a correct downgrade, so ``upgrade head`` / ``downgrade base`` /
``upgrade head`` runs cleanly with plain Alembic and with umbau. A new table is
created about every 10th revision (with a few rows, so data updates touch
something); the others add columns, indexes, check constraints and foreign keys,
create and drop views, change column types, rename columns, update or insert data
and set comments, on the tables that exist at that point.

Command line: ``python -m benchmarks.synthetic OUT_DIR [--revisions N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from umbau.commands.init import init
from umbau.settings import Settings

TABLE_WORDS = (
    "customers", "orders", "invoices", "documents", "tags", "users", "roles", "shops",
    "payments", "shipments", "notifications", "ocr_results", "products", "addresses",
    "refunds", "sessions", "audit_events", "webhooks", "exports", "settings",
)
COLUMN_WORDS = (
    "status", "total", "note", "external_id", "shipped_at", "retries", "currency",
    "priority", "is_active", "score", "reference", "weight", "paid_at", "source",
    "checksum", "version", "quantity", "locale", "discount", "archived",
)
# sa type expression -> (a wider type it may be altered to)
COLUMN_TYPES: dict[str, str | None] = {
    "sa.Integer()": "sa.BigInteger()",
    "sa.String(40)": "sa.String(80)",
    "sa.Numeric(12, 2)": "sa.Numeric(14, 2)",
    "sa.Text()": None,
    "sa.Boolean()": None,
    "sa.DateTime(timezone=True)": None,
}
NUMERIC_TYPES = {"sa.Integer()", "sa.BigInteger()", "sa.Numeric(12, 2)", "sa.Numeric(14, 2)"}
# Relative weights of the operations that fill the revisions between two new tables.
WEIGHTS: dict[str, int] = {
    "add_column": 24, "create_index": 12, "check_constraint": 8, "create_view": 6,
    "drop_view": 3, "alter_type": 8, "rename_column": 7, "foreign_key": 6,
    "data_update": 8, "data_insert": 4, "comment": 8,
}
BASE_DATE = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class _Column:
    name: str
    type_: str
    nullable: bool
    foreign_key: bool = False
    indexed: bool = False
    checked: bool = False


@dataclass
class _Table:
    name: str
    columns: list[_Column] = field(default_factory=list)
    comment: str | None = None
    name_comment: str | None = None


@dataclass
class _Revision:
    message: str
    upgrade: list[str]
    downgrade: list[str]


class _History:
    """The schema as it stands after each revision, and the revisions written so far."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tables: list[_Table] = []
        self.views: dict[str, str] = {}  # live view name -> its SELECT
        self.counter = 0

    def unique(self, word: str) -> str:
        self.counter += 1
        return f"{word}_{self.counter}"

    def columns(self, test: Callable[[_Column], bool]) -> list[tuple[_Table, _Column]]:
        return [(t, c) for t in self.tables for c in t.columns if test(c)]

    # -- the operations; each returns a revision and updates the schema ---------
    def create_table(self) -> _Revision:
        table = _Table(self.unique(self.rng.choice(TABLE_WORDS)))
        self.tables.append(table)
        rows = self.rng.randint(10, 60)
        up = [
            f"op.create_table(\n        {table.name!r},\n"
            "        sa.Column('id', sa.BigInteger(), sa.Identity(), primary_key=True),\n"
            "        sa.Column('name', sa.Text(), nullable=False),\n"
            "        sa.Column('amount', sa.Integer(), nullable=False, server_default='0'),\n"
            "        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False,\n"
            "                  server_default=sa.text('now()')),\n    )",
            f"op.execute(\"INSERT INTO {table.name} (name, amount) \"\n"
            f"           \"SELECT 'row ' || g, g FROM generate_series(1, {rows}) AS g\")",
        ]
        return _Revision(f"create table {table.name}", up, [f"op.drop_table({table.name!r})"])

    def add_column(self) -> _Revision:
        table = self.rng.choice(self.tables)
        type_ = self.rng.choice(list(COLUMN_TYPES))
        column = _Column(self.unique(self.rng.choice(COLUMN_WORDS)), type_, nullable=True)
        extra = ""
        if type_ == "sa.Boolean()" and self.rng.random() < 0.5:
            column.nullable = False
            extra = ", nullable=False, server_default=sa.false()"
        elif type_ == "sa.Integer()" and self.rng.random() < 0.3:
            column.nullable = False
            extra = ", nullable=False, server_default='0'"
        table.columns.append(column)
        up = [f"op.add_column({table.name!r}, sa.Column({column.name!r}, {type_}{extra}))"]
        down = [f"op.drop_column({table.name!r}, {column.name!r})"]
        return _Revision(f"add {table.name}.{column.name}", up, down)

    def create_index(self) -> _Revision | None:
        found = self.columns(lambda c: not c.indexed)
        if not found:
            return None
        table, column = self.rng.choice(found)
        column.indexed = True
        name = f"ix_{table.name}_{column.name}"
        up = [f"op.create_index({name!r}, {table.name!r}, [{column.name!r}])"]
        down = [f"op.drop_index({name!r}, table_name={table.name!r})"]
        return _Revision(f"index {table.name}.{column.name}", up, down)

    def check_constraint(self) -> _Revision | None:
        found = self.columns(lambda c: c.type_ in NUMERIC_TYPES and not c.checked)
        if not found:
            return None
        table, column = self.rng.choice(found)
        column.checked = True
        name = f"ck_{table.name}_{column.name}"
        expr = f"{column.name} IS NULL OR {column.name} >= 0"
        up = [f"op.create_check_constraint({name!r}, {table.name!r}, {expr!r})"]
        down = [f"op.drop_constraint({name!r}, {table.name!r}, type_='check')"]
        return _Revision(f"check {table.name}.{column.name} is not negative", up, down)

    def create_view(self) -> _Revision:
        table = self.rng.choice(self.tables)
        name = self.unique(f"v_{table.name}")
        # Views read only the columns no later revision renames or retypes.
        floor = self.rng.randint(0, 9)
        select = f"SELECT id, name, amount FROM {table.name} WHERE amount > {floor}"
        self.views[name] = select
        up = [f"op.execute({f'CREATE VIEW {name} AS {select}'!r})"]
        down = [f"op.execute({f'DROP VIEW {name}'!r})"]
        return _Revision(f"create view {name}", up, down)

    def drop_view(self) -> _Revision | None:
        if not self.views:
            return None
        name = self.rng.choice(sorted(self.views))
        select = self.views.pop(name)
        up = [f"op.execute({f'DROP VIEW {name}'!r})"]
        down = [f"op.execute({f'CREATE VIEW {name} AS {select}'!r})"]
        return _Revision(f"drop view {name}", up, down)

    def alter_type(self) -> _Revision | None:
        found = self.columns(lambda c: bool(COLUMN_TYPES.get(c.type_)) and not c.foreign_key)
        if not found:
            return None
        table, column = self.rng.choice(found)
        old, new = column.type_, COLUMN_TYPES[column.type_]
        column.type_ = str(new)
        nullable = column.nullable

        def alter(to: str, existing: str) -> str:
            return (f"op.alter_column({table.name!r}, {column.name!r}, type_={to},\n"
                    f"                    existing_type={existing}, existing_nullable={nullable})")

        return _Revision(f"widen {table.name}.{column.name} to {str(new).removeprefix('sa.')}",
                         [alter(str(new), old)], [alter(old, str(new))])

    def rename_column(self) -> _Revision | None:
        found = self.columns(lambda c: not c.foreign_key)
        if not found:
            return None
        table, column = self.rng.choice(found)
        old = column.name
        column.name = self.unique(old.rsplit("_", 1)[0])
        up = [f"op.alter_column({table.name!r}, {old!r}, new_column_name={column.name!r})"]
        down = [f"op.alter_column({table.name!r}, {column.name!r}, new_column_name={old!r})"]
        return _Revision(f"rename {table.name}.{old} to {column.name}", up, down)

    def foreign_key(self) -> _Revision | None:
        if len(self.tables) < 2:
            return None
        child, parent = self.rng.sample(self.tables, 2)
        column = _Column(self.unique(f"{parent.name.rsplit('_', 1)[0]}_id"), "sa.BigInteger()",
                         nullable=True, foreign_key=True, checked=True)
        child.columns.append(column)
        name = f"fk_{child.name}_{column.name}"
        up = [
            f"op.add_column({child.name!r}, sa.Column({column.name!r}, sa.BigInteger()))",
            f"op.create_foreign_key({name!r}, {child.name!r}, {parent.name!r},\n"
            f"                          [{column.name!r}], ['id'])",
        ]
        down = [
            f"op.drop_constraint({name!r}, {child.name!r}, type_='foreignkey')",
            f"op.drop_column({child.name!r}, {column.name!r})",
        ]
        return _Revision(f"link {child.name} to {parent.name}", up, down)

    def data_update(self) -> _Revision:
        table = self.rng.choice(self.tables)
        every, step = self.rng.randint(2, 9), self.rng.randint(1, 5)
        where = f"WHERE id % {every} = 0"
        up = [f"op.execute({f'UPDATE {table.name} SET amount = amount + {step} {where}'!r})"]
        down = [f"op.execute({f'UPDATE {table.name} SET amount = amount - {step} {where}'!r})"]
        return _Revision(f"raise amounts of every {every}th {table.name} row", up, down)

    def data_insert(self) -> _Revision:
        table = self.rng.choice(self.tables)
        batch = self.unique("batch")
        rows = self.rng.randint(5, 40)
        insert = (f"INSERT INTO {table.name} (name, amount) "
                  f"SELECT '{batch} ' || g, g FROM generate_series(1, {rows}) AS g")
        delete = f"DELETE FROM {table.name} WHERE name LIKE '{batch} %'"
        return _Revision(f"insert {rows} {table.name} rows", [f"op.execute({insert!r})"],
                         [f"op.execute({delete!r})"])

    def comment(self) -> _Revision:
        table = self.rng.choice(self.tables)
        text = f"{self.rng.choice(COLUMN_WORDS).replace('_', ' ')} data, revision {self.counter}"
        self.counter += 1
        if self.rng.random() < 0.5:
            old, table.comment = table.comment, text
            up = [f"op.create_table_comment({table.name!r}, {text!r}, existing_comment={old!r})"]
            down = [f"op.drop_table_comment({table.name!r}, existing_comment={text!r})"
                    if old is None else
                    f"op.create_table_comment({table.name!r}, {old!r}, existing_comment={text!r})"]
            return _Revision(f"comment on table {table.name}", up, down)
        old, table.name_comment = table.name_comment, text

        def alter(to: str | None, existing: str | None) -> str:
            return (f"op.alter_column({table.name!r}, 'name', comment={to!r},\n"
                    f"                    existing_type=sa.Text(), existing_nullable=False,\n"
                    f"                    existing_comment={existing!r})")

        return _Revision(f"comment on {table.name}.name", [alter(text, old)], [alter(old, text)])

    def next_revision(self, number: int) -> _Revision:
        """Revision ``number`` (1-based): a new table every 10th, else a random operation."""
        if number % 10 == 1 or not self.tables:
            return self.create_table()
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while True:
            kind = self.rng.choices(kinds, weights)[0]
            revision = getattr(self, kind)()
            if revision is not None:
                return revision


def _render(revision: _Revision, rev_id: str, down: str | None, created: datetime) -> str:
    def body(lines: Sequence[str]) -> str:
        return "\n".join(f"    {line}" for line in lines)

    return f'''"""{revision.message}

Revision ID: {rev_id}
Revises: {down or ""}
Create Date: {created:%Y-%m-%d %H:%M:%S}

A synthetic revision written by benchmarks/synthetic.py.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = {rev_id!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{body(revision.upgrade)}


def downgrade() -> None:
{body(revision.downgrade)}
'''


def make_history(folder: Path, revisions: int = 500, *, seed: int = 0) -> Path:
    """Write an Alembic project with ``revisions`` linear revisions into ``folder``.

    Returns ``folder`` (resolved). ``folder`` may exist but must not hold a project
    yet. The same ``revisions`` and ``seed`` always give the same files.
    """
    if revisions < 1:
        raise ValueError("revisions must be at least 1")
    folder = Path(folder).resolve()
    if (folder / "alembic.ini").exists() or (folder / "migrations").exists():
        raise FileExistsError(f"{folder} already holds a project: pass an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    init(Settings(root=folder), folder)
    versions = folder / "migrations" / "versions"
    rng = random.Random(seed)
    history = _History(rng)
    down: str | None = None
    for number in range(1, revisions + 1):
        revision = history.next_revision(number)
        rev_id = f"{rng.getrandbits(48):012x}"
        created = BASE_DATE + timedelta(hours=number)
        slug = re.sub(r"\W+", "_", revision.message.replace("sa.", "")).strip("_")[:40]
        path = versions / f"{number:04d}_{rev_id}_{slug}.py"
        path.write_text(_render(revision, rev_id, down, created), encoding="utf-8")
        down = rev_id
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.synthetic OUT_DIR [--revisions N] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synthetic",
                                     description="Write a synthetic Alembic history.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--revisions", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = make_history(args.out_dir, args.revisions, seed=args.seed)
    print(f"wrote {args.revisions} revisions to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
