"""json columns (opt-in): jsonb is indexable, comparable and smaller to query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import LintContext, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS, py_table
from umbau.lint.rules.prefer_timestamptz import typed_columns


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, type_name in typed_columns(node):
        if type_sig(type_name).name == "json":
            yield Hit(f"{table}.{column} is json: use jsonb (indexable with GIN, has equality, "
                      "no reparsing on every access)", table,
                      safe=f'op.add_column({py_table(table)}, sa.Column("{column}", '
                           "postgresql.JSONB(), nullable=True))")


RULE = Rule(
    id="prefer-jsonb",
    title="json column (prefer jsonb)",
    lock="none",
    blocks="nothing now",
    effect="none now; changing the type later rewrites the table",
    problem="""`json` stores the text as given and reparses it on every access; it has no
equality operator (so no DISTINCT, GROUP BY or UNIQUE) and no GIN index. `jsonb`
does all of that. Changing the type later is a table rewrite, so choose at creation
(PostgreSQL docs, "8.14. JSON Types").""",
    safe="""op.add_column("documents",
              sa.Column("ocr_result", postgresql.JSONB(), nullable=True))""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
