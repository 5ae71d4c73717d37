"""A small FastAPI application of Ablage's document API, v1 and v2 side by side.

- ``GET /api/v2/documents/{id}`` and ``/api/v2/documents/{id}/extracted-text``: the 2.0
  format.
- ``GET /api/v1/documents/{id}``: the 1.x shape (``ocr_text``, ``ocr_result`` in the 0.9
  format), made from the stored document by the payload downgraders.
- ``GET /api/v1/documents/{id}/ocr-text``: deprecated (``Deprecation``, ``Sunset`` and a
  ``successor-version`` link to the v2 route); after the sunset it answers 410 Gone.
- ``GET /api/documents/{id}``: the version asked for in ``X-API-Version`` (1.0 or 2.0;
  400 naming both for anything else).

Needs the ``fastapi`` package (``pip install 'umbau[examples]'``)::

    uvicorn --factory ablage_app.api:create_app   # with DATABASE_URL set
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from ablage_app import ocr_formats
from ablage_app.models import Document
from umbau.web import (
    ApiVersionMiddleware,
    ApiVersions,
    DeprecatedRoute,
    DeprecationMiddleware,
    PayloadView,
    UsageLog,
)

#: The OCR result as each API version shows it.
OCR_VIEW = PayloadView(ocr_formats.KIND, {"1.0": "0", "2.0": "2.0"})
VERSIONS = ApiVersions(supported=("1.0", "2.0"), default="2.0")
OCR_TEXT_ROUTE = DeprecatedRoute(
    "/api/v1/documents/{id}/ocr-text",
    deprecated=datetime(2025, 3, 1, tzinfo=UTC),
    sunset=datetime(2025, 12, 1, tzinfo=UTC),
    successor="/api/v2/documents/{id}/extracted-text",
    gone_after_sunset=True,
)


def to_v1(doc: Document) -> dict[str, Any]:
    """A document the way API v1 clients read it."""
    return {"id": str(doc.id), "filename": doc.filename, "ocr_text": doc.extracted_text or "",
            "ocr_result": OCR_VIEW.render(doc.ocr_result, "1.0"),
            "created_at": doc.created_at.isoformat()}


def to_v2(doc: Document) -> dict[str, Any]:
    """A document in the API v2 format."""
    return {"id": str(doc.id), "filename": doc.filename, "extracted_text": doc.extracted_text,
            "confidence_score": None if doc.confidence_score is None
            else str(doc.confidence_score),
            "ocr_result": OCR_VIEW.render(doc.ocr_result, "2.0"),
            "created_at": doc.created_at.isoformat()}


def session(request: Request) -> Iterator[Session]:
    """A database session for one request."""
    with request.app.state.sessions() as db:
        yield db


DB = Annotated[Session, Depends(session)]


def create_app(database_url: str | None = None, *, usage: UsageLog | None = None,
               now: Any = None) -> Any:
    """The ASGI application on ``database_url`` (default: ``DATABASE_URL``)."""
    url = database_url or os.environ["DATABASE_URL"]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))

    def load(db: Session, document_id: str) -> Document:
        try:
            key = uuid.UUID(document_id)
        except ValueError:
            raise HTTPException(404, "no such document") from None
        doc = db.get(Document, key)
        if doc is None:
            raise HTTPException(404, "no such document")
        return doc

    app = FastAPI(title="Ablage")
    app.state.sessions = sessionmaker(engine)

    @app.get("/api/v2/documents/{document_id}")
    def get_v2(document_id: str, db: DB) -> dict[str, Any]:
        return to_v2(load(db, document_id))

    @app.get("/api/v2/documents/{document_id}/extracted-text")
    def get_text_v2(document_id: str, db: DB) -> dict[str, Any]:
        return {"text": load(db, document_id).extracted_text or ""}

    @app.get("/api/v1/documents/{document_id}")
    def get_v1(document_id: str, db: DB) -> dict[str, Any]:
        return to_v1(load(db, document_id))

    @app.get("/api/v1/documents/{document_id}/ocr-text")
    def get_ocr_text(document_id: str, db: DB) -> dict[str, Any]:
        return {"text": load(db, document_id).extracted_text or ""}

    @app.get("/api/documents/{document_id}")
    def get_negotiated(document_id: str, request: Request,
                       db: DB) -> dict[str, Any]:
        doc = load(db, document_id)
        return to_v1(doc) if request.scope["umbau.api_version"] == "1.0" else to_v2(doc)

    extra: dict[str, Any] = {} if now is None else {"now": now}
    app.add_middleware(ApiVersionMiddleware, versions=VERSIONS, prefixes=("/api/documents/",))
    app.add_middleware(DeprecationMiddleware, routes=[OCR_TEXT_ROUTE], usage=usage, **extra)
    return app
