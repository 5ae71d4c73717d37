"""add document tags

Revision ID: f6e5d4c3b2a1
Revises: 7c2f4e6a8d13
Create Date: 2024-12-02 10:00:00.000000+00:00

Release 0.9.0: free-form tags on documents (``invoice``, ``receipt``,
``contract``, ``letter`` ...), as in the guide's "Create Table" pattern. One tag
per document at most once (``uq_document_tag``); ``ix_document_tags_tag`` finds
the documents of a tag. Release 1.0.0 moves the tags into a taxonomy
(revision e5f6a7b8c9d0).

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "f6e5d4c3b2a1"
down_revision = "7c2f4e6a8d13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_tags",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True,
                  server_default=sa.text("gen_random_uuid()")),
        sa.Column("document_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE",
                                name="fk_document_tags_document_id"),
        sa.UniqueConstraint("document_id", "tag", name="uq_document_tag"),
    )
    op.create_index("ix_document_tags_tag", "document_tags", ["tag"])


def downgrade() -> None:
    op.drop_table("document_tags")
