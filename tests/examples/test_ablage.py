"""The Ablage example: its history up, down and up, its data steps and their refusals."""

from __future__ import annotations

from typing import Any

import pytest
from example_support import Example

from umbau.errors import MigrationFailed, OpsRefused

pytestmark = pytest.mark.db

TAXONOMY = {  # the guide's migrate_tags mapping
    "invoice": "financial:invoice",
    "receipt": "financial:receipt",
    "contract": "legal:contract",
    "id": "identity:id-card",
    "passport": "identity:passport",
    "letter": "communication:letter",
    "email": "communication:email",
}
ALL_TABLES = {"users", "documents", "document_tags", "notification_events",
              "notification_deliveries", "roles", "user_roles"}


def guide_conversion(old: dict[str, Any]) -> dict[str, Any]:
    """The guide's convert_ocr_format (with its extract_blocks), plus the version key."""
    return {
        "version": "1.0",
        "text": old.get("content", ""),
        "confidence": old.get("score", 0.0),
        "backend": old.get("engine", "unknown"),
        "metadata": {
            "language": old.get("lang", "de"),
            "pages": old.get("page_count", 1),
            "processing_time": old.get("duration", 0.0),
        },
        "blocks": [
            {"text": s.get("text", ""), "bbox": s.get("bbox", [0, 0, 0, 0]),
             "confidence": s.get("conf", 0.0), "type": s.get("type", "text")}
            for s in old.get("segments", [])
        ],
    }


def snapshot_0_9(app: Example) -> dict[str, Any]:
    return {
        "ocr": dict(app.rows("SELECT id, ocr_result FROM documents")),
        "text": dict(app.rows("SELECT id, ocr_text FROM documents")),
        "roles": dict(app.rows("SELECT id, role FROM users")),
        "tags": set(app.rows("SELECT document_id, tag FROM document_tags")),
    }


def test_up_to_head_down_to_base_and_up_again(ablage: Example) -> None:
    up = ablage.upgrade("head")
    assert len(up.steps) == 14
    assert ablage.app_tables() == ALL_TABLES
    down = ablage.downgrade("base")
    assert len(down.steps) == 14
    assert ablage.current() == set() and ablage.app_tables() == set()
    assert len(ablage.upgrade("head").steps) == 14
    assert ablage.current() == {ablage.releases["2.0.0"]}


def test_data_of_0_9_0_upgrades_to_head_and_comes_back(ablage: Example) -> None:
    ablage.upgrade("0.9.0")
    counts = ablage.generate(300, seed=5)
    assert counts["documents"] == 300 and counts["users"] == 15
    old = snapshot_0_9(ablage)
    before = ablage.fingerprint()
    assert any(result for result in old["ocr"].values())
    assert {tag for _, tag in old["tags"]} & set(TAXONOMY)

    ablage.upgrade("head")
    # OCR results: the 1.0 format, exactly the guide's conversion of each old result
    new = dict(ablage.rows("SELECT id, ocr_result FROM documents"))
    for document_id, result in old["ocr"].items():
        assert new[document_id] == (guide_conversion(result) if result else None)
    # extracted_text holds the old ocr_text
    assert dict(ablage.rows("SELECT id, extracted_text FROM documents")) == old["text"]
    # user_roles match the old users.role
    assert set(ablage.rows(
        "SELECT ur.user_id, r.name FROM user_roles AS ur JOIN roles AS r ON r.id = ur.role_id"
    )) == {(user, role) for user, role in old["roles"].items() if role is not None}
    # tags are in the taxonomy
    assert set(ablage.rows("SELECT document_id, tag FROM document_tags")) == {
        (document, TAXONOMY.get(tag, tag)) for document, tag in old["tags"]}

    ablage.downgrade("0.9.0")
    assert snapshot_0_9(ablage) == old
    assert ablage.fingerprint() == before  # every row of every table, as it was


def test_ocr_results_with_missing_keys_get_the_guides_defaults(ablage: Example) -> None:
    ablage.upgrade("0.9.0")
    ablage.generate(5)
    document = ablage.scalar("SELECT id FROM documents ORDER BY id LIMIT 1")
    ablage.execute("UPDATE documents SET ocr_result = '{\"content\": \"Rechnung\"}' "
                   f"WHERE id = '{document}'")
    ablage.upgrade("b2c3d4e5f6a7")
    assert ablage.scalar("SELECT ocr_result FROM documents WHERE id = :id", id=document
                         ) == guide_conversion({"content": "Rechnung"})


def test_models_match_the_database_at_head_only(ablage: Example) -> None:
    ablage.upgrade("1.1.0")
    assert ablage.drift()  # ocr_text, users.role and the float score are still there
    ablage.upgrade("head")
    assert ablage.drift() == []


@pytest.mark.parametrize("release", ["1.0.0", "1.1.0", "2.0.0"])
def test_datagen_writes_what_each_release_writes(ablage: Example, release: str) -> None:
    ablage.upgrade(release)
    counts = ablage.generate(140, seed=2)
    assert counts["documents"] == 140 and counts["user_roles"] > 0
    assert ablage.scalar("SELECT count(*) FROM documents WHERE ocr_result IS NOT NULL "
                         "AND ocr_result ->> 'version' IS DISTINCT FROM '1.0'") == 0
    assert ablage.scalar("SELECT count(*) FROM document_tags WHERE tag = ANY(:old)",
                         old=list(TAXONOMY)) == 0
    text_column = "ocr_text" if release == "1.0.0" else "extracted_text"
    assert ablage.scalar(f"SELECT count(*) FROM documents WHERE ({text_column} IS NULL) "
                         "<> (ocr_result IS NULL)") == 0
    ablage.upgrade("head")
    assert ablage.scalar("SELECT count(*) FROM documents") == 140
    ablage.downgrade("base")


def test_datagen_is_deterministic_for_a_seed(ablage: Example) -> None:
    ablage.upgrade("0.9.0")
    tables = "users, documents, document_tags, notification_events, notification_deliveries"
    ablage.generate(100, seed=11)
    first = ablage.fingerprint()
    ablage.execute(f"TRUNCATE {tables}")
    ablage.generate(100, seed=11)
    assert ablage.fingerprint() == first
    ablage.execute(f"TRUNCATE {tables}")
    ablage.generate(100, seed=12)
    assert ablage.fingerprint()["documents"] != first["documents"]


def test_unknown_roles_stop_the_role_mapping(ablage: Example) -> None:
    ablage.upgrade("0.9.0")
    ablage.generate(40)
    ablage.execute("UPDATE users SET role = 'editor' "
                   "WHERE id = (SELECT id FROM users ORDER BY id LIMIT 1)")
    with pytest.raises(MigrationFailed, match=r"users have roles other than.*'editor'"):
        ablage.upgrade("1.0.0")
    assert ablage.current() == {"c3d4e5f6a7b8"}  # the tables exist, nothing was mapped
    assert ablage.scalar("SELECT count(*) FROM roles") == 0
    ablage.execute("UPDATE users SET role = 'user' WHERE role = 'editor'")
    ablage.upgrade("1.0.0")
    assert ablage.scalar("SELECT count(*) FROM user_roles") == ablage.scalar(
        "SELECT count(*) FROM users WHERE role IS NOT NULL")


def test_a_second_role_stops_the_role_downgrade(ablage: Example) -> None:
    ablage.upgrade("1.0.0")
    ablage.generate(40)
    ablage.execute(  # one user gets a second role
        "INSERT INTO user_roles (user_id, role_id) "
        "SELECT user_id, (SELECT id FROM roles WHERE id <> ur.role_id LIMIT 1) "
        "FROM user_roles AS ur LIMIT 1")
    assignments = ablage.scalar("SELECT count(*) FROM user_roles")
    with pytest.raises(MigrationFailed, match="cannot downgrade the roles: 1 users have more"):
        ablage.downgrade("0.9.0")
    assert ablage.current() == {"d4e5f6a7b8c9"}  # the tag step went back, the roles did not
    assert ablage.scalar("SELECT count(*) FROM user_roles") == assignments


def test_the_role_mapping_follows_changes_made_under_1_0(ablage: Example) -> None:
    ablage.upgrade("1.0.0")
    ablage.generate(40)
    user = ablage.scalar("SELECT user_id FROM user_roles AS ur JOIN roles AS r "
                         "ON r.id = ur.role_id WHERE r.name = 'user' LIMIT 1")
    ablage.execute(f"UPDATE user_roles SET role_id = 'a1111111-1111-1111-1111-111111111111' "
                   f"WHERE user_id = '{user}'")
    ablage.upgrade("head")  # drops users.role
    ablage.downgrade("1.0.0")  # restores it from user_roles
    assert ablage.scalar(f"SELECT role FROM users WHERE id = '{user}'") == "admin"
    ablage.downgrade("0.9.0")
    assert ablage.scalar(f"SELECT role FROM users WHERE id = '{user}'") == "admin"


def test_tags_in_both_spellings_merge(ablage: Example) -> None:
    ablage.upgrade("0.9.0")
    ablage.generate(5)
    document = ablage.scalar("SELECT id FROM documents ORDER BY id LIMIT 1")
    ablage.execute(f"DELETE FROM document_tags WHERE document_id = '{document}'",
                   f"INSERT INTO document_tags (document_id, tag) VALUES "
                   f"('{document}', 'invoice'), ('{document}', 'financial:invoice'), "
                   f"('{document}', 'wichtig')")
    tags = f"SELECT tag FROM document_tags WHERE document_id = '{document}' ORDER BY tag"
    ablage.upgrade("1.0.0")
    assert [row[0] for row in ablage.rows(tags)] == ["financial:invoice", "wichtig"]
    ablage.downgrade("0.9.0")
    assert [row[0] for row in ablage.rows(tags)] == ["invoice", "wichtig"]


def test_the_trigger_keeps_both_text_columns_equal(ablage: Example) -> None:
    ablage.upgrade("1.1.0")
    ablage.generate(3)
    user = ablage.scalar("SELECT id FROM users ORDER BY id LIMIT 1")
    insert = ("INSERT INTO documents (id, user_id, filename, content_type, size_bytes, {col}) "
              "VALUES ('{id}', '" + str(user) + "', 'a.pdf', 'application/pdf', 1, 'x')")
    old_id, new_id = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    ablage.execute(insert.format(col="ocr_text", id=old_id),  # 1.0 code
                   insert.format(col="extracted_text", id=new_id))  # 1.1 code
    texts = "SELECT ocr_text, extracted_text FROM documents WHERE id = :id"
    assert ablage.rows(texts, id=old_id) == [("x", "x")]
    assert ablage.rows(texts, id=new_id) == [("x", "x")]
    ablage.execute(f"UPDATE documents SET ocr_text = 'old' WHERE id = '{old_id}'",
                   f"UPDATE documents SET extracted_text = 'new' WHERE id = '{new_id}'")
    assert ablage.rows(texts, id=old_id) == [("old", "old")]
    assert ablage.rows(texts, id=new_id) == [("new", "new")]


def test_the_contract_refuses_text_that_was_not_copied(ablage: Example) -> None:
    ablage.upgrade("1.1.0")
    ablage.generate(20)
    # a write that went around the trigger (as with session_replication_role = replica)
    ablage.execute(
        "ALTER TABLE documents DISABLE TRIGGER umbau_sync_documents_ocr_text_extracted_text",
        "UPDATE documents SET ocr_text = 'changed' WHERE id = "
        "(SELECT id FROM documents WHERE ocr_text IS NOT NULL ORDER BY id LIMIT 1)",
        "ALTER TABLE documents ENABLE TRIGGER umbau_sync_documents_ocr_text_extracted_text")
    with pytest.raises(OpsRefused, match=r"contract of documents\.ocr_text refused: 1 row\(s\)"):
        ablage.upgrade("head")
    assert ablage.current() == {"5d2c6b1a0f9e"}  # 2.0.0's pre-deploy step ran, the contract not
    assert ablage.scalar("SELECT count(*) FROM documents WHERE ocr_text = 'changed'") == 1
