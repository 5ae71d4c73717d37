"""REINDEX without CONCURRENTLY."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.ReindexStmt) and not any(
            getattr(p, "defname", None) == "concurrently" for p in node.params or ()):
        what = relname(node.relation) if node.relation else (node.name or "the database")
        yield Hit(f"REINDEX {what} blocks writes to the table (and reads that use the index) "
                  "until it is rebuilt: use REINDEX … CONCURRENTLY (PostgreSQL 12+)",
                  safe=f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("REINDEX {_kind(node)} CONCURRENTLY {what}")''')


def _kind(node: Any) -> str:
    return str(node.kind.name).removeprefix("REINDEX_OBJECT_")


RULE = Rule(
    id="require-concurrent-reindex",
    title="REINDEX without CONCURRENTLY",
    lock="SHARE on the table, ACCESS EXCLUSIVE on the index",
    blocks="writes to the table, and reads that would use the index",
    effect="rebuilds the index from a full table scan",
    problem="""A plain `REINDEX` locks out writes to the table and every query that would
use the index until the rebuild finishes. From PostgreSQL 12, `REINDEX CONCURRENTLY`
builds the new index beside the old one and swaps them.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.execute("REINDEX INDEX CONCURRENTLY ix_documents_created_at")""",
    check=check,
    nodes=(ast.ReindexStmt,),
)
