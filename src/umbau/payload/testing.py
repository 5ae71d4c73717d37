"""Checks for users' payload chains, to call from their own tests.

::

    from umbau.payload.testing import check_chain

    def test_ocr_chain():
        check_chain("ocr_result", {"0": [OLD_SAMPLE], "1.0": [V1_SAMPLE]})

:func:`check_chain` raises ``AssertionError`` naming the kind, version, sample and what
went wrong, so it reads well in pytest's output. :func:`check_never_crashes` asks
hypothesis for documents shaped like the samples (same keys and JSON types, other
values); :func:`check_sql_matches` runs the upgraders' SQL forms on a live database and
compares them with the Python upgraders.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.errors import PayloadError
from umbau.payload.registry import Document, Registry

Samples = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass
class ChainReport:
    """What :func:`check_chain` checked: documents upgraded and round trips made."""

    kind: str
    latest: str
    upgraded: int = 0
    round_trips: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "latest": self.latest, "upgraded": self.upgraded,
                "round_trips": self.round_trips, "problems": self.problems}


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from umbau import payload

    return payload.registry


def check_chain(kind: str, samples: Samples, *, registry: Registry | None = None,
                require_every_version: bool = True) -> ChainReport:
    """Every sample (keyed by its version) reaches the latest version, says so, and comes
    back unchanged through the downgraders where they exist.

    With ``require_every_version`` every version but the latest needs a sample.
    Raises ``AssertionError`` listing every problem found.
    """
    reg = _registry(registry)
    versions = reg.kind(kind).chain()
    report = ChainReport(kind, versions[-1])
    missing = [v for v in versions[:-1] if not samples.get(v)]
    if require_every_version and missing:
        report.problems.append(f"no sample documents of version(s) {', '.join(missing)}")
    for version, docs in samples.items():
        for index, doc in enumerate(docs):
            _check_one(reg, kind, version, index, doc, report)
    if report.problems:
        raise AssertionError(f"payload kind {kind!r}: " + "; ".join(report.problems))
    return report


def _check_one(reg: Registry, kind: str, version: str, index: int,
               doc: Mapping[str, Any], report: ChainReport) -> None:
    where = f"sample {index} of version {version}"
    spec = reg.kind(kind)
    if spec.version_of(doc) != version:
        report.problems.append(f"{where} reads as version {spec.version_of(doc)!r}")
        return
    try:
        new = reg.upgrade(kind, doc)
    except PayloadError as exc:
        report.problems.append(f"{where}: {exc}")
        return
    report.upgraded += 1
    if spec.version_of(new) != report.latest:
        report.problems.append(f"{where} upgraded to {spec.version_of(new)!r}, "
                               f"not {report.latest!r}")
    if reg.upgrade(kind, new) != new:
        report.problems.append(f"{where}: upgrading the latest version again changes it")
    if _has_downgraders(reg, kind, version):
        back = reg.downgrade(kind, new, version)
        report.round_trips += 1
        if back != dict(doc):
            report.problems.append(f"{where} does not survive upgrade then downgrade: "
                                   f"{_short(doc)} came back as {_short(back)}")


def _has_downgraders(reg: Registry, kind: str, version: str) -> bool:
    spec = reg.kind(kind)
    versions = spec.chain()
    return all(v in spec.downgraders for v in versions[versions.index(version) + 1:])


def _short(doc: Mapping[str, Any]) -> str:
    shown = json.dumps(doc, sort_keys=True, default=str)
    return shown if len(shown) <= 200 else shown[:197] + "..."


def check_never_crashes(kind: str, samples: Samples, *, registry: Registry | None = None,
                        max_examples: int = 200) -> None:
    """Hypothesis: upgraders never raise on documents shaped like the samples of each
    version (same keys and JSON types, any values). Needs the ``hypothesis`` package."""
    try:
        from hypothesis import given, settings
    except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
        raise PayloadError("check_never_crashes needs hypothesis: pip install hypothesis") \
            from exc
    reg = _registry(registry)
    for version, docs in samples.items():
        for doc in docs:
            check: Callable[[], None] = settings(
                max_examples=max_examples, deadline=None, database=None)(
                given(like(doc))(_upgrades_from(reg, kind, version)))  # type: ignore[no-untyped-call]
            check()


def _upgrades_from(reg: Registry, kind: str, version: str) -> Any:
    spec = reg.kind(kind)

    def upgrade_does_not_raise(generated: Document) -> None:
        reg.upgrade(kind, spec.stamp(generated, version))

    return upgrade_does_not_raise


def like(sample: Any) -> Any:
    """A hypothesis strategy for JSON values shaped like ``sample``: dicts with the same
    keys, lists of elements like the first one (0 to 3 of them), and any value of each
    leaf's JSON type (strings, numbers, booleans, null)."""
    from hypothesis import strategies as st

    if isinstance(sample, dict):
        return st.fixed_dictionaries({key: like(value) for key, value in sample.items()})
    if isinstance(sample, list):
        return st.lists(like(sample[0]), max_size=3) if sample else st.just([])
    if isinstance(sample, bool):
        return st.booleans()
    if isinstance(sample, int):
        return st.integers(-(2**31), 2**31 - 1)
    if isinstance(sample, float):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if isinstance(sample, str):
        return st.text(max_size=20).filter(lambda s: "\x00" not in s)
    return st.none()


def check_sql_matches(kind: str, samples: Samples, connection: Connection, *,
                      registry: Registry | None = None) -> int:
    """The upgraders' SQL forms give the same documents as the Python upgraders, on the
    server of ``connection`` (read-only: a ``SELECT`` per sample). Returns the number of
    samples compared; raises ``AssertionError`` naming the first that differs."""
    from umbau.payload.sql import upgrade_expression

    reg = _registry(registry)
    spec = reg.kind(kind)
    if spec.version_sql is None or any(e.sql is None for e in spec.upgraders.values()):
        raise AssertionError(f"payload kind {kind!r} has upgraders without a SQL form")
    doc = "CAST(:doc AS jsonb)"
    expression = upgrade_expression(spec, doc, spec.version_sql.replace("{doc}", doc))
    compared = 0
    for version, docs in samples.items():
        for index, sample in enumerate(docs):
            got = connection.execute(text(f"SELECT {expression}"),
                                     {"doc": json.dumps(sample)}).scalar_one()
            want = reg.upgrade(kind, sample)
            if got != want:
                raise AssertionError(f"payload kind {kind!r}, sample {index} of version "
                                     f"{version}: SQL gives {_short(got)}, Python gives "
                                     f"{_short(want)}")
            compared += 1
    return compared
