"""Guide 003's "Batch Processing" script (scripts/batch_migrate_documents.py), as
written: row by row, paging with LIMIT/OFFSET over ``needs_migration = true`` while
each batch sets it to false. Only the engine URL, the table and logging differ."""

from __future__ import annotations

import json
import logging
import time

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

logger = logging.getLogger("guide_script")

BATCH_SIZE = 1000


def migrate_documents(database_url: str, table: str) -> int:
    """Migrate documents in batches (the guide's loop); returns rows it believes migrated."""
    engine = create_engine(database_url)
    SessionLocal = sessionmaker(bind=engine)

    db = SessionLocal()
    try:
        total = db.execute(text(f"""
            SELECT COUNT(*)
            FROM {table}
            WHERE needs_migration = true
        """)).scalar() or 0
        offset = 0
        migrated = 0
        while offset < total:
            start_time = time.time()
            result = db.execute(text(f"""
                SELECT id, ocr_result
                FROM {table}
                WHERE needs_migration = true
                ORDER BY id
                LIMIT :limit OFFSET :offset
            """), {"limit": BATCH_SIZE, "offset": offset})
            batch = result.fetchall()
            if not batch:
                break
            for row in batch:
                doc_id = row[0]
                data = row[1]
                new_data = transform_data(data)
                db.execute(text(f"""
                    UPDATE {table}
                    SET ocr_result = :new_data,
                        needs_migration = false,
                        updated_at = NOW()
                    WHERE id = :doc_id
                """), {"new_data": json.dumps(new_data), "doc_id": doc_id})
            db.commit()
            migrated += len(batch)
            offset += BATCH_SIZE
            elapsed = time.time() - start_time
            rate = len(batch) / elapsed
            logger.info("Migrated %s/%s documents - Rate: %.1f docs/sec", migrated, total, rate)
        return migrated
    finally:
        db.close()
        engine.dispose()


def transform_data(data: dict) -> dict:
    """The guide's transform."""
    return {
        "version": "1.0",
        **data,
    }
