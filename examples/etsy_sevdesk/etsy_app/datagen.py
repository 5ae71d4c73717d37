"""Realistic, deterministic test data for the Etsy -> sevDesk schema.

``generate(url, n, seed=...)`` fills the tables of whatever revision the
database is at (1.0.0, 1.1.0 or a revision in between) with ``n`` orders, about
``n / 3`` customers, an invoice for every order that was paid, the sync job's
``integration_state`` entries and, from 1.1.0 on, two more shops. Rows are
written with PostgreSQL's COPY through psycopg 3: 100,000 orders take a few
seconds. The same seed on the same starting database gives the same rows.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
YEAR_SECONDS = 365 * 24 * 3600

FIRST_NAMES = (
    "Anna", "Lukas", "Mia", "Leon", "Emma", "Finn", "Sophie", "Jonas", "Lena", "Paul",
    "Marie", "Felix", "Hannah", "Noah", "Laura", "Elias", "Julia", "Ben", "Sarah", "Tim",
    "Olivia", "James", "Chloé", "Lucas", "Zoë", "Mateo", "Ines", "Jörg", "Małgorzata", "Aiko",
)
LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Smith", "Johnson", "Brown", "Dupont", "Rossi", "García", "Jansen", "Nowak", "Tanaka",
)
EMAIL_DOMAINS = ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.com", "icloud.com")
COUNTRIES = (("DE", 60), ("AT", 10), ("CH", 7), ("US", 9), ("GB", 6), ("FR", 4), ("NL", 4))
SHOP_NAMES = ("Holzwerk Berlin", "Papeterie Lena", "Keramik am See", "Filzfabrik Nord",
              "Silberschmiede Hamburg", "Kerzenzieherei Alpen")
ORDER_STATUS = (("paid", 20), ("shipped", 35), ("completed", 35), ("cancelled", 5),
                ("refunded", 5))
CURRENCIES = (("EUR", 80), ("USD", 12), ("GBP", 8))
SHIPPING_CENTS = (0, 0, 390, 495, 690, 1250)
SYNC_ERRORS = (
    "sevDesk API: 429 Too Many Requests",
    "sevDesk API: 500 Internal Server Error",
    "sevDesk API: contact address incomplete (missing zip code)",
)
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ë": "e",
                        "í": "i", "ł": "l", "ó": "o"})


def generate(url: str, n: int, *, seed: int = 0) -> dict[str, int]:
    """Add ``n`` orders (and their customers, invoices, shops) to the database at ``url``.

    Returns the number of rows written per table. Raises ``RuntimeError`` when the
    database has no Etsy schema yet (run ``umbau upgrade`` first).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    rng = Dice(seed)
    with psycopg.connect(_conninfo(url)) as conn:
        columns = _columns(conn)
        if "orders" not in columns:
            raise RuntimeError("the database has no orders table: run `umbau upgrade` first")
        counts: dict[str, int] = {}
        shop_ids = _shops(conn, columns, rng, counts)
        customers = _customers(conn, rng, max(1, n // 3), counts)
        orders = _orders(conn, rng, n, customers, shop_ids if "shop_id" in columns["orders"]
                         else [], counts)
        _invoices(conn, rng, orders, counts)
        _integration_state(conn, rng, orders, counts)
        for table in ("customers", "orders", "invoices", "shops"):
            if table in columns:
                _sync_sequence(conn, table)
        conn.commit()
    return counts


class Dice:
    """Draws from one seeded generator; quicker than ``random.Random.choice``/``randint``."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed).random

    def pick(self, choices: Sequence[Any]) -> Any:
        return choices[int(self.random() * len(choices))]

    def between(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def below(self, limit: int) -> int:
        return int(self.random() * limit)


# -- the tables -------------------------------------------------------------------


def _shops(conn: psycopg.Connection, columns: dict[str, set[str]], rng: Dice,
           counts: dict[str, int]) -> list[int]:
    """Two more shops besides the default one (1.1.0 on); all shop ids, default first."""
    if "shops" not in columns:
        return []
    first = _next_id(conn, "shops")
    rows = []
    for i in range(2):
        shop_id = first + i
        created = EPOCH + dt.timedelta(days=rng.between(0, 60))
        rows.append((shop_id, str(30_000_000 + shop_id * 7919), rng.pick(SHOP_NAMES),
                     True, created))
    counts["shops"] = _copy(conn, "shops", ("id", "etsy_shop_id", "name", "active",
                                            "created_at"), rows)
    ids = [row[0] for row in conn.execute("SELECT id FROM shops ORDER BY id")]
    default = conn.execute(
        "SELECT (value ->> 'shop_id')::integer FROM integration_state WHERE key = 'default_shop'"
    ).fetchone()
    if default and default[0] in ids:
        ids.remove(default[0])
        ids.insert(0, default[0])
    return ids


def _customers(conn: psycopg.Connection, rng: Dice, count: int,
               counts: dict[str, int]) -> list[int]:
    first = _next_id(conn, "customers")
    countries = _weighted(COUNTRIES)

    def rows() -> Iterator[tuple[Any, ...]]:
        for customer_id in range(first, first + count):
            given, family = rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)
            local = f"{given}.{family}".lower().translate(_ASCII)
            # Imported before the first order of the year this data covers.
            created = EPOCH - dt.timedelta(seconds=rng.below(YEAR_SECONDS))
            yield (
                customer_id,
                500_000_000 + customer_id * 13,
                str(40_000_000 + customer_id) if rng.random() < 0.9 else None,
                f"{given} {family}",
                f"{local}{customer_id}@{rng.pick(EMAIL_DOMAINS)}"
                if rng.random() < 0.95 else None,
                rng.pick(countries),
                created,
                created,
            )

    counts["customers"] = _copy(conn, "customers", (
        "id", "etsy_buyer_id", "sevdesk_contact_id", "name", "email", "country_code",
        "created_at", "updated_at"), rows())
    return list(range(first, first + count))


def _orders(conn: psycopg.Connection, rng: Dice, count: int, customers: list[int],
            shop_ids: list[int], counts: dict[str, int]) -> list[tuple[Any, ...]]:
    """The orders, oldest first; returns what the invoices need of each."""
    first = _next_id(conn, "orders")
    statuses, currencies = _weighted(ORDER_STATUS), _weighted(CURRENCIES)
    # The default shop gets most orders, the newer shops the rest.
    shop_choices = [shop_ids[0]] * 3 + shop_ids[1:] if shop_ids else []
    offsets = sorted(rng.below(YEAR_SECONDS) for _ in range(count))
    carried: list[tuple[Any, ...]] = []

    def rows() -> Iterator[list[Any]]:
        for order_id, offset in zip(range(first, first + count), offsets, strict=True):
            status = rng.pick(statuses)
            subtotal = rng.between(800, 25_000)
            shipping = rng.pick(SHIPPING_CENTS)
            total = subtotal + shipping
            tax = round(total * 19 / 119)  # prices include German VAT
            created = EPOCH + dt.timedelta(seconds=offset)
            paid = created + dt.timedelta(minutes=rng.between(1, 90))
            shipped = (paid + dt.timedelta(hours=rng.between(12, 120))
                       if status in ("shipped", "completed") else None)
            currency = rng.pick(currencies)
            row = [order_id, 3_000_000_000 + order_id * 17, rng.pick(customers), status,
                   currency, _money(subtotal), _money(shipping), _money(tax), _money(total),
                   paid, shipped, created, shipped or paid]
            if shop_ids:
                row.append(rng.pick(shop_choices))
            carried.append((order_id, status, currency, total, tax, paid))
            yield row

    names = ["id", "etsy_receipt_id", "customer_id", "status", "currency", "subtotal",
             "shipping_cost", "tax_amount", "total", "paid_at", "shipped_at", "created_at",
             "updated_at"]
    if shop_ids:
        names.append("shop_id")
    counts["orders"] = _copy(conn, "orders", names, rows())
    return carried


def _invoices(conn: psycopg.Connection, rng: Dice, orders: list[tuple[Any, ...]],
              counts: dict[str, int]) -> None:
    """One invoice per paid order; most are synced to sevDesk, some pending or failed."""
    first = _next_id(conn, "invoices")

    def rows() -> Iterator[tuple[Any, ...]]:
        invoice_id = first
        for order_id, order_status, currency, total, tax, paid in orders:
            if order_status == "cancelled":
                continue
            roll = rng.random()
            status = ("cancelled" if order_status == "refunded" else
                      "failed" if roll < 0.02 else "pending" if roll < 0.06 else
                      "paid" if roll < 0.7 else "sent")
            synced = status in ("sent", "paid", "cancelled")
            synced_at = paid + dt.timedelta(minutes=rng.between(5, 240)) if synced else None
            yield (
                invoice_id, order_id,
                str(90_000_000 + invoice_id) if synced else None,
                f"RE-{paid.year}-{invoice_id:07d}" if synced else None,
                status, currency, _money(total - tax), _money(tax), _money(total),
                paid.date() if synced else None,
                3 if status == "failed" else int(synced),
                rng.pick(SYNC_ERRORS) if status == "failed" else None,
                synced_at, paid, synced_at or paid,
            )
            invoice_id += 1

    counts["invoices"] = _copy(conn, "invoices", (
        "id", "order_id", "sevdesk_invoice_id", "invoice_number", "status", "currency",
        "net_amount", "tax_amount", "gross_amount", "invoice_date", "sync_attempts",
        "error_message", "synced_at", "created_at", "updated_at"), rows())


def _integration_state(conn: psycopg.Connection, rng: Dice,
                       orders: list[tuple[Any, ...]], counts: dict[str, int]) -> None:
    """The sync job's cursors, and the shop 1.0.0 serves (cached from ETSY_SHOP_ID)."""
    last_id, *_, last_paid = orders[-1]
    # Below 30,000,000: the extra shops of 1.1.0 get Etsy ids above, so none collide.
    shop = {"shop_id": str(20_000_000 + rng.between(1, 9_999_999)),
            "shop_name": rng.pick(SHOP_NAMES)}
    cursor = {"last_receipt_id": 3_000_000_000 + last_id * 17, "synced_at": last_paid.isoformat()}
    invoices = {"last_order_id": last_id, "synced_at": last_paid.isoformat()}
    entries = [("etsy.shop", shop, False), ("etsy.receipts_cursor", cursor, True),
               ("sevdesk.invoices_cursor", invoices, True)]
    for key, value, overwrite in entries:
        action = "UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at" \
            if overwrite else "NOTHING"
        conn.execute(
            "INSERT INTO integration_state (key, value, updated_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (key) DO {action}",
            (key, json.dumps(value), last_paid),
        )
    counts["integration_state"] = len(entries)


# -- helpers ------------------------------------------------------------------------


def _conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _columns(conn: psycopg.Connection) -> dict[str, set[str]]:
    """The tables of the public schema and their columns: what this revision has."""
    found: dict[str, set[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    ):
        found.setdefault(table, set()).add(column)
    return found


def _next_id(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()
    return int(row[0]) if row else 1


def _sync_sequence(conn: psycopg.Connection, table: str) -> None:
    """Move the id sequence past the ids written explicitly, for the app's next insert."""
    conn.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} "
        "HAVING max(id) IS NOT NULL"
    )


def _copy(conn: psycopg.Connection, table: str, names: Sequence[str],
          rows: Iterable[Sequence[Any]]) -> int:
    """COPY ``rows`` into ``table``; returns how many.

    Rows are made lazily: psycopg sends them in chunks as they come, so the server
    inserts one chunk while Python makes the next.
    """
    written = 0
    with conn.cursor() as cur, cur.copy(
        f"COPY {table} ({', '.join(names)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _weighted(choices: Sequence[tuple[str, int]]) -> list[str]:
    """A list to pick from with ``Dice.pick`` that honours the weights."""
    return [value for value, weight in choices for _ in range(weight)]
