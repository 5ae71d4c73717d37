"""VACUUM FULL and CLUSTER rewrite the table under an exclusive lock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.VacuumStmt) and any(
            getattr(o, "defname", None) == "full" for o in node.options or ()):
        names = [relname(r.relation) for r in node.rels or () if r.relation] or ["every table"]
        for table in names:
            yield Hit(f"VACUUM FULL rewrites {table} under an ACCESS EXCLUSIVE lock: use "
                      "pg_repack or pg_squeeze, outside migrations",
                      None if table == "every table" else table,
                      safe=f"# outside the revision, online:\n#   pg_repack --table={table}")
    elif isinstance(node, ast.ClusterStmt):
        cluster_table = relname(node.relation) if node.relation else None
        yield Hit(f"CLUSTER rewrites {cluster_table or 'every clustered table'} under an "
                  "ACCESS EXCLUSIVE lock: use pg_repack, outside migrations", cluster_table,
                  safe=f"# outside the revision, online (keeps the clustered order):\n"
                       f"#   pg_repack --table={cluster_table or '<table>'} --order-by=<columns>")


RULE = Rule(
    id="vacuum-full-or-cluster",
    title="VACUUM FULL or CLUSTER",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole rewrite",
    effect="rewrites the table and all its indexes",
    problem="""`VACUUM FULL` and `CLUSTER` copy the whole table and rebuild its indexes while
holding an ACCESS EXCLUSIVE lock — neither reads nor writes get through until they
finish. Plain `VACUUM` (no lock against reads and writes) is usually enough;
`pg_repack` reorganises a table online.""",
    safe="""# Not in a revision. Online, from an operator's shell:
#   pg_repack --table documents --dbname app
# or, if only dead tuples matter:
def upgrade():
    with op.get_context().autocommit_block():
        op.execute("VACUUM (ANALYZE) documents")""",
    check=check,
    nodes=(ast.VacuumStmt, ast.ClusterStmt),
)
