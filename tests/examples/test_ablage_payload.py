"""The Ablage OCR format chain: the payload registry, the 2.0 backfill, reading through
VersionedJSON, and the v1/v2 API with its deprecated route (FastAPI test client)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from example_support import Example, example_module

from umbau.backfill import run_backfill
from umbau.payload.testing import check_chain, check_never_crashes, check_sql_matches
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db

formats = example_module("ablage", "ocr_formats")
OLD = {"content": "Rechnung 1", "score": 0.91, "engine": "tesseract", "lang": "de",
       "page_count": 2, "duration": 1.234,
       "segments": [{"text": "Rechnung 1", "bbox": [1, 2, 3, 4], "conf": 0.9, "type": "title"}]}
V1 = formats.ocr_0_to_1_0(OLD) | {"version": "1.0"}
HUGE = V1 | {"metadata": {"language": "de", "pages": 1, "processing_time": 1.000000071494503e25}}
SAMPLES = {"0": [OLD, {}, {"segments": "not a list", "score": None}], "1.0": [V1, HUGE]}


def test_the_chain_reaches_2_0_and_round_trips() -> None:
    report = check_chain(formats.KIND, {"0": [OLD], "1.0": [V1]})
    assert report.latest == "2.0"
    assert report.round_trips == 2
    from umbau import payload

    latest = payload.upgrade(formats.KIND, OLD)
    assert latest["metadata"] == {"language": "de", "pages": 2, "processing_ms": 1234}
    assert latest["version"] == "2.0"


def test_upgraders_never_crash_on_documents_shaped_like_the_samples() -> None:
    check_never_crashes(formats.KIND, SAMPLES, max_examples=60)


def test_the_sql_forms_match_the_python_upgraders(database_url: str) -> None:
    with connect(database_url) as conn:
        assert check_sql_matches(formats.KIND, SAMPLES, conn) == 5


def test_the_1_0_upgrader_is_the_revision_s_conversion(ablage: Example) -> None:
    ablage.upgrade("0.9.0")
    ablage.generate(40)
    before = dict(ablage.rows("SELECT id, ocr_result FROM documents WHERE ocr_result IS NOT NULL"))
    ablage.upgrade("1.0.0")
    after = dict(ablage.rows("SELECT id, ocr_result FROM documents WHERE ocr_result IS NOT NULL"))
    from umbau import payload

    assert after == {k: payload.upgrade(formats.KIND, v, to="1.0") for k, v in before.items()}


def test_the_2_0_backfill_runs_while_reads_see_2_0(ablage: Example) -> None:
    ablage.upgrade()
    ablage.generate(300)
    stored_before = dict(ablage.rows("SELECT id, ocr_result FROM documents"))
    assert {d["version"] for d in stored_before.values() if d} == {"1.0"}
    read = _read_through_model(ablage.url)
    assert {d["version"] for d in read.values() if d} == {"2.0"}
    backfills = example_module("ablage", "backfills")
    result = run_backfill(ablage.settings, backfills.ocr_result_2_0)
    assert result.verification is not None and result.verification.ok
    stored_after = dict(ablage.rows("SELECT id, ocr_result FROM documents"))
    assert stored_after == read
    again = run_backfill(ablage.settings, backfills.ocr_result_2_0)
    assert again.already_done or again.rows == 0


def _read_through_model(url: str) -> dict[Any, Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    models = example_module("ablage", "models")
    with connect(url) as conn, Session(conn) as session:
        return dict(session.execute(select(models.Document.id, models.Document.ocr_result)).all())


@pytest.fixture
def api(ablage: Example) -> Any:
    pytest.importorskip("fastapi")
    from starlette.testclient import TestClient

    ablage.upgrade()
    ablage.generate(20)
    api_module = example_module("ablage", "api")

    def client(now: datetime) -> TestClient:
        return TestClient(api_module.create_app(ablage.url, now=lambda: now))

    document = ablage.rows("SELECT id, extracted_text FROM documents "
                           "WHERE ocr_result IS NOT NULL LIMIT 1")[0]
    return client, str(document[0]), document[1]


def test_v2_and_v1_show_their_own_formats(api: Any) -> None:
    client, doc_id, text = api
    http = client(datetime(2025, 6, 1, tzinfo=UTC))
    v2 = http.get(f"/api/v2/documents/{doc_id}").json()
    assert v2["ocr_result"]["version"] == "2.0"
    assert "processing_ms" in v2["ocr_result"]["metadata"]
    v1 = http.get(f"/api/v1/documents/{doc_id}").json()
    assert "version" not in v1["ocr_result"]
    assert v1["ocr_result"]["content"] == v2["ocr_result"]["text"]
    assert v1["ocr_text"] == text
    negotiated = http.get(f"/api/documents/{doc_id}", headers={"X-API-Version": "1.0"})
    assert negotiated.json() == v1
    assert http.get(f"/api/documents/{doc_id}").json() == v2
    refused = http.get(f"/api/documents/{doc_id}", headers={"X-API-Version": "0.5"})
    assert refused.status_code == 400 and refused.json()["supported"] == ["1.0", "2.0"]


def test_the_deprecated_ocr_text_route_warns_then_is_gone(api: Any) -> None:
    client, doc_id, text = api
    before = client(datetime(2025, 6, 1, tzinfo=UTC)).get(f"/api/v1/documents/{doc_id}/ocr-text")
    assert before.status_code == 200 and before.json() == {"text": text}
    assert before.headers["sunset"] == "Mon, 01 Dec 2025 00:00:00 GMT"
    assert f"</api/v2/documents/{doc_id}/extracted-text>" in before.headers["link"]
    after = client(datetime(2026, 1, 1, tzinfo=UTC)).get(f"/api/v1/documents/{doc_id}/ocr-text")
    assert after.status_code == 410
    successor = client(datetime(2026, 1, 1, tzinfo=UTC)).get(after.json()["successor"])
    assert successor.json() == {"text": text}
