"""map document tags to the tag taxonomy

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2025-01-17 13:00:00.000000+00:00

Release 1.0.0 (data): the free-form tags of 0.9 move into the taxonomy
``area:kind`` with the guide's mapping (``migrate_tags``)::

    invoice   -> financial:invoice        id       -> identity:id-card
    receipt   -> financial:receipt        passport -> identity:passport
    contract  -> legal:contract           letter   -> communication:letter
                                          email    -> communication:email

Other tags stay as they are. Two set-based statements, each with the whole
mapping as a VALUES list: a document that already carries both spellings (say
``invoice`` and ``financial:invoice``) keeps one tag, the new one; then every old
tag is renamed. A rerun finds nothing left to do.

The mapping is one-to-one, so the downgrade runs it backwards the same way. The
one thing it cannot tell apart is a document that had both spellings before
the upgrade: it comes back with the old tag only, which means the same.

Breaking changes:
- tag names change (invoice -> financial:invoice ...): filters on old tag
  names find nothing

Migration guide:
- search for the new names; API v1 clients that send old names must map them
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5f6a7b8c9d0"
down_revision = "d4e5f6a7b8c9"
branch_labels = None
depends_on = None

TAG_MAPPING = {
    "invoice": "financial:invoice",
    "receipt": "financial:receipt",
    "contract": "legal:contract",
    "id": "identity:id-card",
    "passport": "identity:passport",
    "letter": "communication:letter",
    "email": "communication:email",
}


def _rename_tags(pairs: dict[str, str]) -> None:
    """Rename tags ``from -> to`` for every pair, merging a document's duplicates."""
    values = ", ".join(f"(:from_{i}, :to_{i})" for i in range(len(pairs)))
    params = {}
    for i, (old, new) in enumerate(pairs.items()):
        params[f"from_{i}"], params[f"to_{i}"] = old, new
    mapping = f"(VALUES {values}) AS mapping (from_tag, to_tag)"
    op.execute(
        sa.text(
            f"""
            DELETE FROM document_tags AS t
            USING {mapping}
            WHERE t.tag = mapping.from_tag
              AND EXISTS (SELECT 1 FROM document_tags AS d
                          WHERE d.document_id = t.document_id AND d.tag = mapping.to_tag)
            """
        ).bindparams(**params)
    )
    op.execute(
        sa.text(
            f"""
            UPDATE document_tags AS t
            SET tag = mapping.to_tag
            FROM {mapping}
            WHERE t.tag = mapping.from_tag
            """
        ).bindparams(**params)
    )


def upgrade() -> None:
    _rename_tags(TAG_MAPPING)


def downgrade() -> None:
    _rename_tags({new: old for old, new in TAG_MAPPING.items()})
