"""DROP DATABASE in a migration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.DropdbStmt):
        yield Hit(f"DROP DATABASE {node.dbname} deletes a whole database: this does not belong "
                  "in a migration",
                  safe=f"# drop {node.dbname} by hand, after a backup, outside the revision "
                       "history:\n#   dropdb " + str(node.dbname))


RULE = Rule(
    id="drop-database",
    title="database dropped",
    lock="exclusive use of the database",
    blocks="every connection to that database",
    effect="the whole database is gone",
    problem="""A migration that drops a database destroys everything in it, and it cannot
run inside a transaction anyway. Databases are created and dropped by operators, not
by schema revisions.""",
    safe="""# Not in a revision. Take a backup and drop it by hand:
#   umbau backup --database-url postgresql://…/old_db
#   psql -c 'DROP DATABASE old_db'""",
    check=check,
    nodes=(ast.DropdbStmt,),
)
