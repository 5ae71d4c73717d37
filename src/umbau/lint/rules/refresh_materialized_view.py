"""REFRESH MATERIALIZED VIEW without CONCURRENTLY: readers wait for the whole refresh."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.RefreshMatViewStmt) and not node.concurrent and not node.skipData:
        view = relname(node.relation)
        yield Hit(f"REFRESH MATERIALIZED VIEW {view} locks it against reads until the refresh "
                  "ends: refresh CONCURRENTLY (it needs a unique index on the view)", view,
                  safe=f'''def upgrade():
    # once: CREATE UNIQUE INDEX CONCURRENTLY ... ON {view} (...)
    with op.get_context().autocommit_block():
        op.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")''')


RULE = Rule(
    id="refresh-materialized-view",
    title="materialized view refreshed without CONCURRENTLY",
    lock="ACCESS EXCLUSIVE on the materialized view",
    blocks="every read of the view for the whole refresh",
    effect="runs the view's query in full",
    problem="""A plain `REFRESH MATERIALIZED VIEW` takes ACCESS EXCLUSIVE on the view: every
query that reads it waits until the view's query has run to the end. `CONCURRENTLY`
(which needs a unique index on the view) lets reads go on (PostgreSQL docs,
"REFRESH MATERIALIZED VIEW").""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY shop_totals")""",
    check=check,
    nodes=(ast.RefreshMatViewStmt,),
)
