"""CREATE INDEX / REINDEX CONCURRENTLY on PostgreSQL 14.0 to 14.3: the index corruption bug."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule


def _concurrent(node: Any) -> bool:
    if isinstance(node, ast.IndexStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.ReindexStmt):
        return any(getattr(p, "defname", "") == "concurrently" for p in node.params or ())
    return False


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    version = ctx.server_version_num
    if version is not None and 140000 <= version < 140004 and _concurrent(node):
        table = relname(node.relation) if getattr(node, "relation", None) else None
        minor = f"14.{version % 100}"
        yield Hit(f"the server runs PostgreSQL {minor}, where CREATE INDEX / REINDEX "
                  "CONCURRENTLY can silently build a corrupt index: upgrade the server to "
                  "14.4 or later first (then REINDEX the indexes built on 14.0-14.3)", table,
                  safe=f"""# upgrade the server ({minor} -> 14.4 or later) before this
# revision runs; then find and rebuild indexes built concurrently on {minor}:
#   amcheck: SELECT bt_index_check(indexrelid, true) FROM pg_index ...""")


RULE = Rule(
    id="concurrent-index-pg14",
    title="concurrent index build on PostgreSQL 14.0-14.3",
    lock="SHARE UPDATE EXCLUSIVE on the table",
    blocks="nothing in particular; the index it builds may be corrupt",
    effect="an index that misses rows written during the build (wrong query results)",
    problem="""PostgreSQL 14.0 to 14.3 have a bug: `CREATE INDEX CONCURRENTLY` and `REINDEX
CONCURRENTLY` can miss rows that are updated during the build, leaving a corrupt
index and wrong query results. Fixed in 14.4 (PostgreSQL 14.4 release notes). Only
the server's minor version tells, so this rule needs a connection.""",
    safe="""# upgrade the server to 14.4 or later, then:
def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_shop_id", "orders", ["shop_id"],
                        postgresql_concurrently=True, if_not_exists=True)""",
    check=check,
    nodes=(ast.IndexStmt, ast.ReindexStmt),
)
