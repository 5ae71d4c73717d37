"""add notification events and deliveries

Revision ID: 7c2f4e6a8d13
Revises: 5e0a9d3c1b27
Create Date: 2024-11-18 14:00:00.000000+00:00

Release 0.9.0. Things that happen to a document (uploaded, processed, failed,
shared) become ``notification_events``; each event is delivered to the user on
one or more channels (in-app, e-mail, webhook), one ``notification_deliveries``
row per channel, retried while it is pending. Two new tables: nothing waits.

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
revision = "7c2f4e6a8d13"
down_revision = "5e0a9d3c1b27"
branch_labels = None
depends_on = None

UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "notification_events",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("document_id", UUID, nullable=True),
        sa.Column("payload", postgresql.JSONB, nullable=False,
                  server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_notification_events_user_id"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="SET NULL",
                                name="fk_notification_events_document_id"),
    )
    op.create_index("ix_notification_events_user_created", "notification_events",
                    ["user_id", "created_at"])

    op.create_table(
        "notification_deliveries",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("event_id", UUID, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.ForeignKeyConstraint(["event_id"], ["notification_events.id"], ondelete="CASCADE",
                                name="fk_notification_deliveries_event_id"),
    )
    op.create_index("ix_notification_deliveries_event_id", "notification_deliveries",
                    ["event_id"])
    # The delivery worker polls for pending deliveries, oldest first.
    op.create_index("ix_notification_deliveries_pending", "notification_deliveries",
                    ["created_at"], postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    op.drop_table("notification_events")
