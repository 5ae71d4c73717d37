"""What PostgreSQL has built in, for lint without a server: function volatility, type names.

The list is data generated from a real server (``pg_proc``/``pg_type`` of the
``pg_catalog`` schema), not a hand-written list::

    python -m umbau.lint.builtins postgresql://postgres@localhost/postgres

writes ``umbau/lint/data/builtins.json``. A function that is not there is not built in
(the project's own, or an extension's): offline lint cannot know its volatility.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

DATA = "builtins.json"
_FUNCTIONS_SQL = """
SELECT p.proname, max(p.provolatile::text)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'pg_catalog'
GROUP BY p.proname ORDER BY 1
"""
_TYPES_SQL = """
SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'pg_catalog' AND t.typname NOT LIKE '\\_%' ORDER BY 1
"""


@cache
def _data() -> dict[str, Any]:
    text = resources.files("umbau.lint.data").joinpath(DATA).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def function_volatility() -> dict[str, str]:
    """Built-in function name -> ``i``/``s``/``v`` (the most volatile of its overloads)."""
    functions: dict[str, str] = _data()["functions"]
    return functions


def type_names() -> frozenset[str]:
    """The names of the built-in types (``int4``, ``jsonb``, ``timestamptz``…)."""
    return frozenset(_data()["types"])


def generate(url: str) -> dict[str, Any]:
    """Read the built-ins of the server at ``url``."""
    from sqlalchemy import text

    from umbau.postgres.connect import connect

    with connect(url) as conn:
        version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        functions = {str(n): str(k) for n, k in conn.execute(text(_FUNCTIONS_SQL)).all()}
        types = [str(row[0]) for row in conn.execute(text(_TYPES_SQL)).all()]
    return {"generated_from": f"PostgreSQL {version}", "functions": functions, "types": types}


def main(argv: list[str]) -> None:
    out = Path(__file__).parent / "data" / DATA
    out.write_text(json.dumps(generate(argv[0]), indent=0, sort_keys=True) + "\n",
                   encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
