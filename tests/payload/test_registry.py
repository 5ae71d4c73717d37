"""The payload registry: chains, errors, upgrade and downgrade (pure Python)."""

from __future__ import annotations

from typing import Any

import pytest

from umbau import payload
from umbau.errors import EXIT_PAYLOAD, PayloadError
from umbau.payload import Registry


def chain() -> Registry:
    reg = Registry()
    payload.define("doc", first="0", on=reg)

    @payload.upgrader("doc", from_="0", to="1", on=reg)
    def up1(doc: dict[str, Any]) -> dict[str, Any]:
        return {"text": doc.get("content", "")}

    @payload.upgrader("doc", from_="1", to="2", on=reg)
    def up2(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "words": len(doc["text"].split())}

    @payload.downgrader("doc", from_="2", to="1", on=reg)
    def down2(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k != "words"}

    @payload.downgrader("doc", from_="1", to="0", on=reg)
    def down1(doc: dict[str, Any]) -> dict[str, Any]:
        return {"content": doc["text"]}

    return reg


def test_a_document_without_version_walks_the_whole_chain() -> None:
    reg = chain()
    assert reg.upgrade("doc", {"content": "a b c"}) == {"version": "2", "text": "a b c",
                                                        "words": 3}
    assert reg.latest("doc") == "2"


def test_upgrade_to_a_middle_version_and_leaves_the_input_alone() -> None:
    reg = chain()
    original = {"content": "x"}
    assert reg.upgrade("doc", original, to="1") == {"version": "1", "text": "x"}
    assert original == {"content": "x"}


def test_a_document_at_the_latest_version_is_unchanged() -> None:
    reg = chain()
    doc = {"version": "2", "text": "t", "words": 1}
    assert reg.upgrade("doc", doc) == doc


def test_downgrade_to_the_first_version_drops_the_version_key() -> None:
    reg = chain()
    latest = reg.upgrade("doc", {"content": "a b"})
    assert reg.downgrade("doc", latest, "0") == {"content": "a b"}


@pytest.mark.parametrize(("doc", "to", "message"), [
    ({"version": "7"}, None, "has no version '7'"),
    ({"content": "x"}, "9", "has no version '9'"),
    ({"version": "2", "text": "", "words": 0}, "1", "newer than '1': use downgrade()"),
])
def test_unknown_versions_and_wrong_directions_are_named(doc: dict[str, Any], to: str | None,
                                                         message: str) -> None:
    with pytest.raises(PayloadError, match=message) as caught:
        chain().upgrade("doc", doc, to)
    assert "'doc'" in str(caught.value)
    assert caught.value.exit_code == EXIT_PAYLOAD == 34


def test_an_unknown_kind_names_the_registered_ones() -> None:
    with pytest.raises(PayloadError, match=r"unknown payload kind 'nope' \(registered: doc\)"):
        chain().upgrade("nope", {})


def test_a_second_upgrader_out_of_one_version_is_refused() -> None:
    reg = chain()
    with pytest.raises(PayloadError, match="already has an upgrader from '1'"):
        reg.add("doc", "1", "3", lambda d: d)


def test_a_gap_in_the_chain_is_named() -> None:
    reg = Registry()
    reg.add("k", "a", "b", dict)
    reg.add("k", "c", "d", dict)
    with pytest.raises(PayloadError, match=r"has a gap: versions \['a', 'c'\]"):
        reg.upgrade("k", {"version": "a"})


def test_a_cycle_is_named() -> None:
    reg = Registry()
    reg.add("k", "a", "b", dict)
    reg.add("k", "b", "a", dict)
    with pytest.raises(PayloadError, match="cycle"):
        reg.latest("k")


def test_a_cycle_after_the_first_version_is_named() -> None:
    reg = Registry()
    reg.add("k", "a", "b", dict)
    reg.add("k", "b", "c", dict)
    reg.add("k", "c", "b", dict)
    with pytest.raises(PayloadError, match="cycle at version 'b'"):
        reg.latest("k")


def test_a_failing_step_names_kind_versions_and_error() -> None:
    reg = chain()
    with pytest.raises(PayloadError, match=r"step 1 -> 2 \(.*up2\) failed: KeyError"):
        reg.upgrade("doc", {"version": "1"})


def test_a_step_that_returns_no_dict_is_refused() -> None:
    reg = Registry()
    reg.add("k", "a", "b", lambda d: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(PayloadError, match="returned NoneType, not a dict"):
        reg.upgrade("k", {"version": "a"})


def test_a_missing_downgrader_is_named() -> None:
    reg = Registry()
    reg.add("k", "a", "b", dict)
    with pytest.raises(PayloadError, match="no downgrader from 'b'"):
        reg.downgrade("k", {"version": "b"}, "a")


def test_a_custom_version_reader_and_writer() -> None:
    reg = Registry()
    reg.define("k", first="1", read=lambda d: d.get("schema"),
               write=lambda d, v: {**d, "schema": v})
    reg.add("k", "1", "2", lambda d: {**d, "new": True})
    assert reg.upgrade("k", {"x": 1}) == {"x": 1, "new": True, "schema": "2"}
    assert reg.kind("k").version_sql is None
