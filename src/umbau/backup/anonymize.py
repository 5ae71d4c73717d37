"""Anonymisation rules for ``umbau copy``: per column, an SQL expression that the *source*
server evaluates, so that sensitive values never leave it in clear.

A rules file (TOML)::

    salt = "a secret of your own"     # mixed into every hash; keep it out of the repo

    [tables.customers]                # or "public.customers"
    email = "email"                   # user_<hash>@example.com, same input -> same output
    name = "name"                     # a fake first and last name, deterministic
    phone = "phone"                   # +49 30 <7 digits>, deterministic
    tax_id = "hash"                   # md5 hex (text), a number (integers), a uuid (uuid)
    notes = "null"
    country = { fixed = "DE" }
    birthday = "shuffle"              # the column's values, permuted among the rows
    id = "keep"                       # the default for columns not named

Deterministic rules hash the salted value, so a key anonymised the same way in two
tables still joins.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from umbau.errors import UsageError
from umbau.postgres.quoting import quote_ident

RULES = ("keep", "null", "fixed", "email", "name", "phone", "hash", "shuffle")
_ALIASES = {"fake_email": "email", "fake_name": "name", "fake_phone": "phone"}
DETERMINISTIC = frozenset({"email", "name", "phone", "hash"})
FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida",
               "Jonas", "Katja", "Lukas", "Mia", "Noah", "Olga", "Paul", "Quirin", "Rosa",
               "Sven", "Tilda", "Umut", "Vera", "Willi", "Yara", "Zoe")
LAST_NAMES = ("Bauer", "Becker", "Fischer", "Hoffmann", "Koch", "Krause", "Lang", "Meyer",
              "Neumann", "Richter", "Schmidt", "Schneider", "Schulz", "Wagner", "Weber",
              "Wolf", "Zimmermann", "Yilmaz", "Nowak", "Jansen")
_INTEGER = {"smallint": 32767, "integer": 2147483647}
_TEXTLIKE = ("text", "character varying", "character", "citext", "name")


@dataclass(frozen=True)
class Rule:
    kind: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.kind, **({"value": self.value} if self.kind == "fixed" else {})}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool


@dataclass(frozen=True)
class RuleSet:
    salt: str
    tables: Mapping[str, Mapping[str, Rule]]

    def for_table(self, schema: str, table: str) -> Mapping[str, Rule]:
        return self.tables.get(f"{schema}.{table}") or {}


def parse_rule(value: Any, where: str) -> Rule:
    if isinstance(value, str):
        kind = _ALIASES.get(value.strip().lower(), value.strip().lower())
        if kind in RULES and kind != "fixed":
            return Rule(kind)
    elif isinstance(value, dict) and "fixed" in value and len(value) == 1:
        return Rule("fixed", value["fixed"])
    raise UsageError(f"{where} = {value!r} is not a rule: use one of keep, null, email, "
                     "name, phone, hash, shuffle, or {{ fixed = \"value\" }}")


def load_rules(path: Path) -> RuleSet:
    """Read a rules file; table names without a schema mean ``public``."""
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read the rules file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}: fix the TOML syntax") from exc
    unknown = sorted(set(data) - {"salt", "tables"})
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)}: put column rules "
                         "under [tables.<table>]")
    tables: dict[str, dict[str, Rule]] = {}
    for table, columns in (data.get("tables") or {}).items():
        if not isinstance(columns, dict):
            raise UsageError(f"{path}: tables.{table} must be a table of column = rule")
        key = table if "." in table else f"public.{table}"
        tables[key] = {col: parse_rule(rule, f"{table}.{col}") for col, rule in columns.items()}
    return RuleSet(str(data.get("salt", "umbau")), tables)


def check_rules(rules: RuleSet, columns: Mapping[str, Sequence[Column]],
                source_tables: Sequence[str]) -> None:
    """Every table and column named must exist; null needs a nullable column; hash needs a
    type it can produce. Rules of tables that exist but are not copied are fine."""
    for table, table_rules in rules.tables.items():
        if table not in source_tables:
            close = difflib.get_close_matches(table, list(source_tables), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"the rules name table {table}, which the source does not "
                             f"have{hint}: fix the rules file")
        if table not in columns:
            continue
        by_name = {c.name: c for c in columns[table]}
        for name, rule in table_rules.items():
            column = by_name.get(name)
            if column is None:
                close = difflib.get_close_matches(name, list(by_name), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UsageError(f"{table} has no column {name}{hint}: fix the rules file")
            if rule.kind == "null" and column.not_null:
                raise UsageError(f"{table}.{name} is NOT NULL: use hash, a fake or "
                                 "{ fixed = ... } instead of null")
            if rule.kind == "hash" and hash_expression("x", column.type, "''") is None:
                raise UsageError(f"{table}.{name} is {column.type}: hash works on text, "
                                 "integer and uuid columns; use null or fixed")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _digest(expr: str, salt: str, tag: str) -> str:
    return f"md5({salt} || {_literal(':' + tag + ':')} || ({expr})::text)"


def _number(expr: str, salt: str, tag: str) -> str:
    """A non-negative 28-bit number from the salted hash."""
    return f"(('x0' || substr({_digest(expr, salt, tag)}, 1, 7))::bit(32)::int)"


def _pick(names: Sequence[str], number: str) -> str:
    array = "ARRAY[" + ", ".join(_literal(n) for n in names) + "]"
    return f"({array})[1 + {number} % {len(names)}]"


def hash_expression(col: str, type_: str, salt: str) -> str | None:
    if type_.startswith(_TEXTLIKE):
        return _digest(col, salt, "hash")
    if type_ in _INTEGER:
        return f"({_number(col, salt, 'hash')} % {_INTEGER[type_]})"
    if type_ == "bigint":
        return f"(('x0' || substr({_digest(col, salt, 'hash')}, 1, 15))::bit(64)::bigint)"
    if type_ == "uuid":
        return f"({_digest(col, salt, 'hash')})::uuid"
    return None


def expression(column: Column, rule: Rule, salt: str, qualifier: str = "") -> str:
    """The SQL expression the source evaluates for one column (``keep`` by default)."""
    col = qualifier + quote_ident(column.name)
    lit_salt = _literal(salt)
    if rule.kind == "keep":
        return col
    if rule.kind == "null":
        return "NULL"
    if rule.kind == "fixed":
        return _literal(str(rule.value).lower() if isinstance(rule.value, bool)
                        else str(rule.value))
    if rule.kind == "email":
        value = (f"'user_' || substr({_digest(f'lower({col}::text)', lit_salt, 'email')}, 1, 16)"
                 " || '@example.com'")
    elif rule.kind == "name":
        first = _pick(FIRST_NAMES, _number(col, lit_salt, "first"))
        last = _pick(LAST_NAMES, _number(col, lit_salt, "last"))
        value = f"{first} || ' ' || {last}"
    elif rule.kind == "phone":
        value = f"'+49 30 ' || lpad(({_number(col, lit_salt, 'phone')} % 10000000)::text, 7, '0')"
    elif rule.kind == "hash":
        value = hash_expression(col, column.type, lit_salt) or "NULL"
    else:
        raise UsageError(f"rule {rule.kind} has no single-column expression")
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE {value} END"


def select_sql(source: str, columns: Sequence[Column], rules: Mapping[str, Rule],
               salt: str) -> str:
    """``SELECT <expressions> FROM <source>`` (``source`` is e.g. ``ONLY "public"."t"``);
    shuffled columns come from a random permutation of the same column joined on a row
    number."""
    shuffled = [c for c in columns if rules.get(c.name, Rule("keep")).kind == "shuffle"]
    if not shuffled:
        exprs = [expression(c, rules.get(c.name, Rule("keep")), salt) for c in columns]
        return f"SELECT {', '.join(exprs)} FROM {source}"
    rn = "__umbau_rn"
    joins, exprs = [], []
    for i, column in enumerate(columns):
        rule = rules.get(column.name, Rule("keep"))
        if rule.kind == "shuffle":
            alias = f"__umbau_s{i}"
            joins.append(f" JOIN (SELECT {quote_ident(column.name)} AS v, row_number() OVER "
                         f"(ORDER BY random()) AS {rn} FROM {source}) AS {alias} "
                         f"USING ({rn})")
            exprs.append(f"{alias}.v")
        else:
            exprs.append(expression(column, rule, salt, "__umbau_b."))
    base = f"(SELECT *, row_number() OVER () AS {rn} FROM {source}) AS __umbau_b"
    return f"SELECT {', '.join(exprs)} FROM {base}{''.join(joins)}"
