"""The SQL side of payload chains: the upgraders' SQL forms composed into one expression."""

from __future__ import annotations

from umbau.payload.registry import Kind


def upgrade_expression(spec: Kind, doc: str, version: str) -> str:
    """A SQL expression (jsonb) that upgrades ``doc`` from whatever version it is at to
    the latest, from the upgraders' SQL forms: ``CASE version WHEN '0' THEN … END``.

    Each step is applied to the previous step's result through a scalar subquery whose
    ``OFFSET 0`` keeps the planner from inlining it, so a step that mentions ``{doc}``
    several times does not evaluate the steps before it again for each mention.
    A document at an unknown version is left as it is (the verify predicate then
    names it).
    """
    versions = spec.chain()
    whens = []
    for start in range(len(versions) - 1):
        expression = doc
        for source in versions[start:-1]:
            step = spec.upgraders[source].sql
            assert step is not None
            if expression == doc:  # the column itself: cheap to name as often as needed
                expression = f"({step.replace('{doc}', doc)})"
                continue
            inner = step.replace("{doc}", "_d.doc")
            expression = (f"(SELECT {inner} "
                          f"FROM (SELECT {expression} AS doc OFFSET 0) AS _d)")
        whens.append(f"WHEN {literal(versions[start])} THEN {expression}")
    current = f"COALESCE({version}, {literal(versions[0])})"
    return f"CASE {current} {' '.join(whens)} ELSE {doc} END"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
