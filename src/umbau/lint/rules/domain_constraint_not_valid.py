"""ALTER DOMAIN … ADD CONSTRAINT without NOT VALID: checks every column of the domain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import CT, LintContext, object_name
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.AlterDomainStmt) and node.subtype == "C" \
            and isinstance(node.def_, ast.Constraint) and node.def_.contype == CT.CONSTR_CHECK \
            and not node.def_.skip_validation:
        domain = object_name(node.typeName)
        name = node.def_.conname or f"{domain}_check"
        yield Hit(f"ALTER DOMAIN {domain} ADD CONSTRAINT checks every row of every column of "
                  f"type {domain} while holding locks that block writes: add it NOT VALID, "
                  "then VALIDATE in a later revision",
                  safe=f'''def upgrade():
    op.execute("ALTER DOMAIN {domain} ADD CONSTRAINT {name} CHECK (...) NOT VALID")

# a later revision:
def upgrade():
    op.execute("ALTER DOMAIN {domain} VALIDATE CONSTRAINT {name}")''')


RULE = Rule(
    id="domain-constraint-not-valid",
    title="domain constraint added without NOT VALID",
    lock="SHARE on every table with a column of the domain",
    blocks="writes to those tables while every row is checked",
    effect="scans every table that uses the domain",
    problem="""`ALTER DOMAIN … ADD CONSTRAINT` checks the new constraint against every value of
every column that uses the domain, blocking writes to those tables meanwhile. With
`NOT VALID` only new values are checked; `VALIDATE CONSTRAINT` later checks the old
ones without blocking writes (PostgreSQL docs, "ALTER DOMAIN").""",
    safe="""def upgrade():
    op.execute("ALTER DOMAIN positive_amount ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID")

# a later revision:
def upgrade():
    op.execute("ALTER DOMAIN positive_amount VALIDATE CONSTRAINT positive")""",
    check=check,
    nodes=(ast.AlterDomainStmt,),
)
