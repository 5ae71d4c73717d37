"""SQLAlchemy models of Ablage at the head revision (release 2.0.0).

They match the schema the revisions build exactly: the example's tests compare
them with the database with Alembic's ``compare_metadata``.
"""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ablage_app import ocr_formats
from umbau.payload.types import VersionedJSON


def _now() -> Any:
    return text("now()")


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True,
                         server_default=text("gen_random_uuid()"))


def _timestamp() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=_now())


class Base(DeclarativeBase):
    type_annotation_map = {uuid.UUID: UUID(as_uuid=True)}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email", name="uq_users_email"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    email: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(server_default=true())
    created_at: Mapped[dt.datetime] = _timestamp()
    updated_at: Mapped[dt.datetime] = _timestamp()


class Role(Base):
    """A named set of permissions: ``{"documents": ["read", ...], ...}``."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("name", name="uq_roles_name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    permissions: Mapped[dict[str, list[str]]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = _timestamp()
    updated_at: Mapped[dt.datetime] = _timestamp()


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "role_id", name="pk_user_roles"),
        Index("ix_user_roles_role_id", "role_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", name="fk_user_roles_user_id", ondelete="CASCADE"))
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", name="fk_user_roles_role_id", ondelete="CASCADE"))
    assigned_at: Mapped[dt.datetime] = _timestamp()
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", name="fk_user_roles_assigned_by"))


class Document(Base):
    """An uploaded document and its OCR result.

    ``ocr_result`` is stored in the 1.0 format by release 1.0.0 and in the 2.0 format once
    the ``ocr_result_2_0`` backfill has run; it is always read in the 2.0 format.
    """

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_user_status", "user_id", "status"),
        Index("ix_documents_created_at", "created_at"),
        Index("ix_documents_confidence_score", "confidence_score",
              postgresql_where=text("confidence_score IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", name="fk_documents_user_id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    ocr_result: Mapped[dict[str, Any] | None] = mapped_column(VersionedJSON(ocr_formats.KIND))
    created_at: Mapped[dt.datetime] = _timestamp()
    updated_at: Mapped[dt.datetime] = _timestamp()
    confidence_score: Mapped[Decimal | None] = mapped_column(
        Numeric(5, 4), comment="OCR confidence score (0.0-1.0)")
    extracted_text: Mapped[str | None] = mapped_column(Text)


class DocumentTag(Base):
    """A tag of the taxonomy (``financial:invoice``) or a free-form one."""

    __tablename__ = "document_tags"
    __table_args__ = (
        UniqueConstraint("document_id", "tag", name="uq_document_tag"),
        Index("ix_document_tags_tag", "tag"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", name="fk_document_tags_document_id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = _timestamp()


class NotificationEvent(Base):
    __tablename__ = "notification_events"
    __table_args__ = (
        Index("ix_notification_events_user_created", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_type: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", name="fk_notification_events_user_id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("documents.id", name="fk_notification_events_document_id",
                   ondelete="SET NULL"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = _timestamp()


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (
        Index("ix_notification_deliveries_event_id", "event_id"),
        Index("ix_notification_deliveries_pending", "created_at",
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_events.id", name="fk_notification_deliveries_event_id",
                   ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = _timestamp()
