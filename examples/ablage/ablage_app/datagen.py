"""Realistic, deterministic test data for the Ablage schema.

``generate(url, n, seed=...)`` fills the tables of whatever revision the
database is at (any revision from 0.9.0 to 2.0.0) with ``n`` documents, about
``n / 20`` users, 0-3 tags per document, and notification events with their
deliveries. What it writes follows the revision: OCR results in the 0.9 or the
1.0 format, ``users.role`` or ``user_roles``, old tags or taxonomy tags,
``ocr_text`` and/or ``extracted_text``. Rows are written with PostgreSQL's COPY
through psycopg 3. The same seed on the same starting database gives the same
rows.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

# Revisions after which the data looks different (see migrations/versions).
OCR_FORMAT_1_0 = "b2c3d4e5f6a7"
ROLES_ASSIGNED = "d4e5f6a7b8c9"
TAG_TAXONOMY = "e5f6a7b8c9d0"

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
YEAR_SECONDS = 365 * 24 * 3600

ROLE_IDS = {
    "admin": "a1111111-1111-1111-1111-111111111111",
    "user": "b2222222-2222-2222-2222-222222222222",
    "viewer": "c3333333-3333-3333-3333-333333333333",
}
TAXONOMY = {
    "invoice": "financial:invoice",
    "receipt": "financial:receipt",
    "contract": "legal:contract",
    "id": "identity:id-card",
    "passport": "identity:passport",
    "letter": "communication:letter",
    "email": "communication:email",
}
FREE_TAGS = ("steuer-2024", "wichtig", "versicherung", "archiv", "haushalt", "auto")

FIRST_NAMES = ("Anna", "Lukas", "Mia", "Leon", "Emma", "Finn", "Sophie", "Jonas", "Lena",
               "Paul", "Marie", "Felix", "Hannah", "Noah", "Laura", "Elias", "Jörg", "Zoë")
LAST_NAMES = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
              "Becker", "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder")
ROLE_WEIGHTS = (("admin", 5), ("user", 78), ("viewer", 15), (None, 2))
STATUS_WEIGHTS = (("completed", 85), ("pending", 4), ("processing", 3), ("failed", 8))
CONTENT_TYPES = (("application/pdf", "pdf", 80), ("image/jpeg", "jpg", 12),
                 ("image/png", "png", 8))
ENGINES = ("tesseract", "deepseek", "paddleocr")
CITIES = ("Berlin", "Hamburg", "München", "Köln", "Leipzig", "Freiburg")
COMPANIES = ("Stadtwerke", "Telekom", "Allianz", "Hausverwaltung Sommer", "Zahnarztpraxis Dr. Lang",
             "Autohaus Becker", "Finanzamt")

# Each kind of document: file name stem, its old (0.9) tag, and OCR text lines.
KINDS = (
    ("Rechnung", "invoice", ("Rechnung Nr. {number}", "{company}, {city}",
                             "Leistungszeitraum {month}", "Gesamtbetrag: {amount} EUR",
                             "Zahlbar innerhalb von 14 Tagen ohne Abzug")),
    ("Quittung", "receipt", ("Quittung", "{company}", "Betrag dankend erhalten: {amount} EUR",
                             "{city}, den {date}")),
    ("Vertrag", "contract", ("Vertrag Nr. {number}", "zwischen {company} und {name}",
                             "Laufzeit: 24 Monate ab {date}", "Kündigungsfrist: 3 Monate",
                             "{city}, den {date}")),
    ("Personalausweis", "id", ("BUNDESREPUBLIK DEUTSCHLAND", "PERSONALAUSWEIS",
                               "Name: {name}", "Gültig bis: {date}")),
    ("Reisepass", "passport", ("REISEPASS / PASSPORT", "Name: {name}",
                               "Ausstellende Behörde: Stadt {city}")),
    ("Brief", "letter", ("{company}", "Sehr geehrte Damen und Herren,",
                         "bezugnehmend auf Ihr Schreiben vom {date}", "Mit freundlichen Grüßen")),
    ("E-Mail", "email", ("Von: service@{domain}", "Betreff: Ihre Anfrage {number}",
                         "Hallo {name},", "vielen Dank für Ihre Nachricht.")),
)
SEGMENT_TYPES = ("text", "text", "text", "header", "table")
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ë": "e"})
DELIVERY_ERRORS = ("SMTP 451 4.7.1 try again later", "webhook: 502 Bad Gateway",
                   "webhook: connection timed out after 10s")


class Dice:
    """Draws from one seeded generator; quicker than ``random.Random.choice``/``randint``."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.random = self._rng.random

    def pick(self, choices: Sequence[Any]) -> Any:
        return choices[int(self.random() * len(choices))]

    def between(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def below(self, limit: int) -> int:
        return int(self.random() * limit)

    def uuid7(self, at: dt.datetime) -> uuid.UUID:
        """A time-ordered UUID (version 7): rows made in time order land at the end
        of the primary key's index instead of all over it, which COPY does much faster."""
        millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
        rand = self._rng.getrandbits(74)
        return uuid.UUID(int=(millis << 80) | (0x7 << 76) | ((rand >> 62) << 64)
                         | (0b10 << 62) | (rand & ((1 << 62) - 1)))


def generate(url: str, n: int, *, seed: int = 0) -> dict[str, int]:
    """Add ``n`` documents (and users, roles, tags, notifications) to the database at ``url``.

    Returns the number of rows written per table. Raises ``RuntimeError`` when the
    database has no Ablage schema yet (run ``umbau upgrade`` first).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    rng = Dice(seed)
    with psycopg.connect(_conninfo(url)) as conn:
        schema = _Schema.read(conn)
        counts: dict[str, int] = {}
        users = _users(conn, rng, schema, max(1, n // 20), counts)
        documents = _documents(conn, rng, schema, n, users, counts)
        if "document_tags" in schema.columns:
            _tags(conn, rng, schema, documents, counts)
        if "notification_events" in schema.columns:
            _notifications(conn, rng, documents, users, counts)
        conn.commit()
    return counts


class _Schema:
    """What the database's revision has: tables, columns, applied revisions."""

    def __init__(self, columns: dict[str, set[str]], applied: set[str]) -> None:
        self.columns = columns
        self.applied = applied

    @classmethod
    def read(cls, conn: psycopg.Connection) -> _Schema:
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            columns.setdefault(table, set()).add(column)
        if "documents" not in columns or "alembic_version" not in columns:
            raise RuntimeError("the database has no documents table: run `umbau upgrade` first")
        heads = tuple(row[0] for row in conn.execute("SELECT version_num FROM alembic_version"))
        script = ScriptDirectory(str(MIGRATIONS))
        applied = {rev.revision for rev in script.iterate_revisions(heads, "base")}
        return cls(columns, applied)

    def has(self, table: str, column: str) -> bool:
        return column in self.columns.get(table, set())


# -- the tables -------------------------------------------------------------------


def _users(conn: psycopg.Connection, rng: Dice, schema: _Schema, count: int,
           counts: dict[str, int]) -> list[tuple[uuid.UUID, str]]:
    """Users with their role in ``users.role`` (0.9) and/or ``user_roles`` (1.0 on)."""
    roles = _weighted(ROLE_WEIGHTS)
    with_role_column = schema.has("users", "role")
    with_user_roles = ROLES_ASSIGNED in schema.applied
    taken = conn.execute("SELECT count(*) FROM users").fetchone()
    first = (taken[0] if taken else 0) + 1
    rows, assignments, users = [], [], []
    for number in range(first, first + count):
        created = EPOCH - dt.timedelta(seconds=rng.below(YEAR_SECONDS))
        user_id = rng.uuid7(created)
        given, family = rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)
        email = f"{given}.{family}.{number}@example.org".lower().translate(_ASCII)
        role = rng.pick(roles)
        row = [user_id, email, f"{given} {family}", rng.random() < 0.95, created, created]
        if with_role_column:
            row.append(role)
        rows.append(row)
        if with_user_roles and role is not None:
            assignments.append((user_id, ROLE_IDS[role], created))
        users.append((user_id, email))
    names = ["id", "email", "full_name", "is_active", "created_at", "updated_at"]
    if with_role_column:
        names.append("role")
    counts["users"] = _copy(conn, "users", names, rows)
    if with_user_roles:
        counts["user_roles"] = _copy(conn, "user_roles", ("user_id", "role_id", "assigned_at"),
                                     assignments)
    return users


def _documents(conn: psycopg.Connection, rng: Dice, schema: _Schema, count: int,
               users: list[tuple[uuid.UUID, str]],
               counts: dict[str, int]) -> list[tuple[Any, ...]]:
    """Documents with OCR results; returns (id, user, kind, status, created, filename)."""
    statuses, content_types = _weighted(STATUS_WEIGHTS), _weighted(
        [((mime, ext), weight) for mime, ext, weight in CONTENT_TYPES])
    text_columns = [c for c in ("ocr_text", "extracted_text") if schema.has("documents", c)]
    with_score = schema.has("documents", "confidence_score")
    pool = _OcrPool(rng, count, new_format=OCR_FORMAT_1_0 in schema.applied)
    offsets = sorted(rng.below(YEAR_SECONDS) for _ in range(count))
    documents: list[tuple[Any, ...]] = []

    def rows() -> Iterator[list[Any]]:
        for offset in offsets:
            created = EPOCH + dt.timedelta(seconds=offset)
            document_id, (user_id, _) = rng.uuid7(created), rng.pick(users)
            kind = rng.below(len(KINDS))
            status = rng.pick(statuses)
            mime, ext = rng.pick(content_types)
            filename = f"{KINDS[kind][0]}_{created:%Y%m%d}_{rng.between(1, 999):03d}.{ext}"
            result, text, score = (pool.pick(kind) if status == "completed"
                                   else (None, None, None))
            updated = created + dt.timedelta(seconds=rng.between(5, 600)) if result else created
            row = [document_id, user_id, filename, mime, rng.between(20_000, 8_000_000),
                   status, result, created, updated]
            row.extend(text for _ in text_columns)
            if with_score:
                row.append(score)
            documents.append((document_id, user_id, KINDS[kind], status, created, filename))
            yield row

    names = ["id", "user_id", "filename", "content_type", "size_bytes", "status", "ocr_result",
             "created_at", "updated_at", *text_columns]
    if with_score:
        names.append("confidence_score")
    counts["documents"] = _copy(conn, "documents", names, rows())
    return documents


class _OcrPool:
    """OCR results per kind of document, made once and shared by several documents.

    Encoding a fresh JSON result for every one of 100,000 documents would take
    most of the time; ``count / 7`` results per kind (at most 200) keep small data
    sets unique and big ones varied enough.
    """

    def __init__(self, rng: Dice, count: int, *, new_format: bool) -> None:
        self.rng = rng
        self.size = max(1, min(count // len(KINDS) + 1, 200))
        self.new_format = new_format
        self.made: list[list[tuple[str, str, str]]] = [[] for _ in KINDS]

    def pick(self, kind: int) -> tuple[str, str, str]:
        """(ocr_result as JSON, text, confidence score) for a document of ``kind``."""
        made = self.made[kind]
        if len(made) < self.size:
            result = _ocr_result(self.rng, KINDS[kind])
            document = _to_1_0(result) if self.new_format else result
            made.append((json.dumps(document, ensure_ascii=False), result["content"],
                         f"{result['score']:.4f}"))
            return made[-1]
        return made[self.rng.below(self.size)]


def _ocr_result(rng: Dice, kind: tuple[Any, ...]) -> dict[str, Any]:
    """An OCR result in the 0.9 format, the way the 0.9 OCR worker wrote it."""
    values = {
        "number": f"{rng.between(2020, 2024)}-{rng.between(1, 99_999):05d}",
        "company": rng.pick(COMPANIES),
        "city": rng.pick(CITIES),
        "name": f"{rng.pick(FIRST_NAMES)} {rng.pick(LAST_NAMES)}",
        "amount": f"{rng.between(5, 2_500)},{rng.between(0, 99):02d}",
        "date": f"{rng.between(1, 28):02d}.{rng.between(1, 12):02d}.{rng.between(2020, 2024)}",
        "month": f"{rng.between(1, 12):02d}/2024",
        "domain": rng.pick(("example.de", "kundenservice.example.com", "mail.example.org")),
    }
    segments, top = [], 40
    for line in kind[2]:
        height = rng.between(14, 40)
        segments.append({
            "text": line.format(**values),
            "bbox": [rng.between(30, 80), top, rng.between(200, 520), height],
            "conf": round(0.7 + rng.random() * 0.299, 3),
            "type": rng.pick(SEGMENT_TYPES),
        })
        top += height + rng.between(8, 60)
    return {
        "content": "\n".join(s["text"] for s in segments),
        "score": round(sum(s["conf"] for s in segments) / len(segments), 6),
        "engine": rng.pick(ENGINES),
        "lang": "de" if rng.random() < 0.9 else "en",
        "page_count": rng.between(1, 4),
        "duration": round(0.3 + rng.random() * 12, 3),
        "segments": segments,
    }


def _to_1_0(old: dict[str, Any]) -> dict[str, Any]:
    """The 1.0 format, as the 1.0 OCR worker writes it (same mapping as the migration)."""
    return {
        "version": "1.0",
        "text": old["content"],
        "confidence": old["score"],
        "backend": old["engine"],
        "metadata": {"language": old["lang"], "pages": old["page_count"],
                     "processing_time": old["duration"]},
        "blocks": [{"text": s["text"], "bbox": s["bbox"], "confidence": s["conf"],
                    "type": s["type"]} for s in old["segments"]],
    }


def _tags(conn: psycopg.Connection, rng: Dice, schema: _Schema,
          documents: list[tuple[Any, ...]], counts: dict[str, int]) -> None:
    """0-3 tags per document: the tag of its kind, maybe a free-form one or two."""
    taxonomy = TAG_TAXONOMY in schema.applied

    def rows() -> Iterator[tuple[Any, ...]]:
        for document_id, _, kind, _, created, _ in documents:
            tags = []
            if rng.random() < 0.8:
                tags.append(TAXONOMY[kind[1]] if taxonomy else kind[1])
            for _ in range(rng.between(0, 2)):
                tag = rng.pick(FREE_TAGS)
                if tag not in tags:
                    tags.append(tag)
            for tag in tags:
                yield rng.uuid7(created), document_id, tag, created

    counts["document_tags"] = _copy(conn, "document_tags",
                                    ("id", "document_id", "tag", "created_at"), rows())


def _notifications(conn: psycopg.Connection, rng: Dice, documents: list[tuple[Any, ...]],
                   users: list[tuple[uuid.UUID, str]], counts: dict[str, int]) -> None:
    """An event for about half of the processed documents, delivered on 1-3 channels."""
    emails = dict(users)
    deliveries: list[tuple[Any, ...]] = []

    def events() -> Iterator[tuple[Any, ...]]:
        for document_id, user_id, _, status, created, filename in documents:
            if status not in ("completed", "failed") or rng.random() < 0.5:
                continue
            at = created + dt.timedelta(seconds=rng.between(5, 900))
            event_id = rng.uuid7(at)
            event_type = "document.processed" if status == "completed" else "document.failed"
            payload = {"document_id": str(document_id), "filename": filename, "status": status}
            yield event_id, event_type, user_id, document_id, json.dumps(payload), at
            channels = [("in_app", str(user_id))]
            if rng.random() < 0.6:
                channels.append(("email", emails[user_id]))
            if rng.random() < 0.1:
                channels.append(("webhook", f"https://hooks.example.com/ablage/{user_id}"))
            for channel, recipient in channels:
                roll = rng.random()
                state = "sent" if roll < 0.9 else "failed" if roll < 0.95 else "pending"
                deliveries.append((
                    rng.uuid7(at), event_id, channel, recipient, state,
                    {"sent": 1, "failed": 3, "pending": 0}[state],
                    rng.pick(DELIVERY_ERRORS) if state == "failed" else None,
                    at + dt.timedelta(seconds=rng.between(1, 120)) if state == "sent" else None,
                    at,
                ))

    counts["notification_events"] = _copy(
        conn, "notification_events",
        ("id", "event_type", "user_id", "document_id", "payload", "created_at"), events())
    counts["notification_deliveries"] = _copy(
        conn, "notification_deliveries",
        ("id", "event_id", "channel", "recipient", "status", "attempts", "last_error",
         "sent_at", "created_at"), deliveries)


# -- helpers ------------------------------------------------------------------------


def _conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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


def _weighted(choices: Sequence[tuple[Any, int]]) -> list[Any]:
    """A list to pick from with ``Dice.pick`` that honours the weights."""
    return [value for value, weight in choices for _ in range(weight)]
