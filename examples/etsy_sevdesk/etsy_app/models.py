"""SQLAlchemy models of the Etsy -> sevDesk sync, at the head revision (1.1.0).

They match the schema the revisions build exactly: the example's tests compare
them with the database with Alembic's ``compare_metadata``.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Money = Numeric(12, 2)


def _now() -> Any:
    return text("now()")


class Base(DeclarativeBase):
    pass


class Shop(Base):
    """An Etsy shop whose receipts are synced (1.1.0: several shops per install)."""

    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("etsy_shop_id", name="uq_shops_etsy_shop_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    etsy_shop_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())


class Customer(Base):
    """An Etsy buyer, and the sevDesk contact the invoices are addressed to."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("etsy_buyer_id", name="uq_customers_etsy_buyer_id"),
        UniqueConstraint("sevdesk_contact_id", name="uq_customers_sevdesk_contact_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    etsy_buyer_id: Mapped[int] = mapped_column(BigInteger)
    sevdesk_contact_id: Mapped[str | None] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    country_code: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())


class Order(Base):
    """A paid Etsy receipt."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("etsy_receipt_id", name="uq_orders_etsy_receipt_id"),
        Index("ix_orders_customer_id", "customer_id"),
        Index("ix_orders_created_at", "created_at"),
        Index("idx_orders_shop_created", "shop_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    etsy_receipt_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", name="fk_orders_customer_id_customers"))
    status: Mapped[str] = mapped_column(String(20), server_default="paid")
    currency: Mapped[str] = mapped_column(String(3), server_default="EUR")
    subtotal: Mapped[Decimal] = mapped_column(Money)
    shipping_cost: Mapped[Decimal] = mapped_column(Money, server_default="0")
    tax_amount: Mapped[Decimal] = mapped_column(Money, server_default="0")
    total: Mapped[Decimal] = mapped_column(Money)
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    shipped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())
    # NULL while 1.0.0 code still writes orders; the default shop afterwards.
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("shops.id", name="fk_orders_shop_id_shops"))


class Invoice(Base):
    """The sevDesk invoice of one order; ``sevdesk_invoice_id`` is set once it is synced."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("order_id", name="uq_invoices_order_id"),
        UniqueConstraint("sevdesk_invoice_id", name="uq_invoices_sevdesk_invoice_id"),
        UniqueConstraint("invoice_number", name="uq_invoices_invoice_number"),
        Index("ix_invoices_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", name="fk_invoices_order_id_orders", ondelete="CASCADE"))
    sevdesk_invoice_id: Mapped[str | None] = mapped_column(String(50))
    invoice_number: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    net_amount: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    gross_amount: Mapped[Decimal] = mapped_column(Money)
    invoice_date: Mapped[dt.date | None] = mapped_column(Date)
    sync_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error_message: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())


class IntegrationState(Base):
    """Cursors and cached settings of the sync job, one JSON value per key."""

    __tablename__ = "integration_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=_now())
