"""Identifiers longer than 63 bytes: PostgreSQL truncates them silently."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from umbau import sql as sqlparse
from umbau.lint.context import LintContext, changes_schema
from umbau.lint.model import Hit, Rule

LIMIT = 63  # NAMEDATALEN - 1 (PostgreSQL docs, "4.1.1. Identifiers and Key Words")
_LONG_RUN = re.compile(rf"\S{{{LIMIT + 1}}}")


def could_have_long_name(text: str) -> bool:
    """False when ``text`` cannot hold an identifier longer than 63 bytes, which spares the
    scan: in ASCII text without a double quote every identifier is unquoted, a run of
    non-blank characters of its length in bytes (lower-casing keeps it)."""
    return not text.isascii() or '"' in text or _LONG_RUN.search(text) is not None


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    # the parse tree holds the names already cut to 63 bytes: read the statement's text
    if ctx.statement is None or not changes_schema(node) \
            or not could_have_long_name(ctx.statement.text):
        return
    for name in dict.fromkeys(sqlparse.identifiers(ctx.statement.text)):
        if len(name.encode()) > LIMIT:
            cut = name.encode()[:LIMIT].decode(errors="ignore")
            yield Hit(f"the name {name} is {len(name.encode())} bytes: PostgreSQL keeps only "
                      f"the first {LIMIT} ({cut}), so a later DROP or RENAME by the full name "
                      "fails; choose a name of at most 63 bytes",
                      safe=f"# name it in at most {LIMIT} bytes, e.g.\n#   {cut[:50]}")


RULE = Rule(
    id="identifier-too-long",
    title="identifier longer than 63 bytes",
    lock="none",
    blocks="nothing now; later revisions that name it fail",
    effect="the object gets a truncated name",
    problem="""PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1) with only a
NOTICE. The object exists under the cut name; a later `DROP INDEX`, `DROP CONSTRAINT`
or rename that uses the full name fails, and Alembic's autogenerate keeps seeing a
difference. Long generated names (naming conventions over long table and column
names) are the usual cause (PostgreSQL docs, "4.1.1. Identifiers and Key Words").""",
    safe="""def upgrade():
    op.create_index("ix_invoices_sync_state_shop", "invoice_sync_state", ["shop_id"])""",
    check=check,
)
