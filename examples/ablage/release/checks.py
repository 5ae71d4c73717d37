"""What each release of Ablage needs, for the stand-in service (``health_server.py``) and
the smoke test (``smoke.py``)."""

from __future__ import annotations

from typing import Any

APP = "ablage"

# keys the backend reads from its env file, per release (guide 003, "Configuration
# Changes": OCR_ENGINE -> OCR_BACKEND, MAX_FILE_SIZE -> MAX_UPLOAD_SIZE_MB, REDIS_URL ->
# REDIS_DSN; LEGACY_MODE and OLD_API_ENABLED gone; OCR_TIMEOUT_SECONDS, ENABLE_WEBHOOKS new)
REQUIRED_ENV: dict[str, tuple[str, ...]] = {
    "0.9.0": ("DATABASE_URL", "SECRET_KEY", "OCR_ENGINE", "MAX_FILE_SIZE", "REDIS_URL"),
    "1.0.0": ("DATABASE_URL", "SECRET_KEY", "OCR_BACKEND", "MAX_UPLOAD_SIZE_MB", "REDIS_DSN",
              "OCR_TIMEOUT_SECONDS", "ENABLE_WEBHOOKS"),
}
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "0.9.0": ("users", "documents", "document_tags", "notification_events"),
    "1.0.0": ("users", "documents", "document_tags", "notification_events", "roles",
              "user_roles"),
}
GONE_IN_1_0 = ("LEGACY_MODE", "OLD_API_ENABLED", "OCR_ENGINE", "MAX_FILE_SIZE", "REDIS_URL")


def smoke(conn: Any, env: dict[str, str], version: str) -> list[str]:
    """The failures of the data checks of ``version`` (an empty list: all passed): the
    guide's data migration script's three jobs, done."""
    failures: list[str] = []
    if version != "1.0.0":
        return failures
    stale = [key for key in GONE_IN_1_0 if key in env]
    if stale:
        failures.append(f".env still has {', '.join(stale)}")
    old_format = conn.execute(
        "SELECT count(*) FROM documents WHERE ocr_result IS NOT NULL "
        "AND ocr_result ->> 'version' IS DISTINCT FROM '1.0'").fetchone()[0]
    if old_format:
        failures.append(f"{old_format} OCR result(s) not in the 1.0 format")
    roleless = conn.execute(
        "SELECT count(*) FROM users AS u WHERE NOT EXISTS "
        "(SELECT 1 FROM user_roles AS r WHERE r.user_id = u.id)").fetchone()[0]
    if roleless:
        failures.append(f"{roleless} user(s) without a role in user_roles")
    old_tags = conn.execute(
        "SELECT count(*) FROM document_tags WHERE tag IN ('invoice', 'receipt', "
        "'contract', 'id', 'passport', 'letter', 'email')").fetchone()[0]
    if old_tags:
        failures.append(f"{old_tags} tag(s) outside the taxonomy")
    return failures
