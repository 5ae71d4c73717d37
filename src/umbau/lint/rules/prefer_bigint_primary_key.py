"""32-bit integer keys (opt-in): primary keys run out at 2.1 billion, and so do the foreign
keys that point at them; a 32-bit foreign key to a bigint key is the worst case."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import CT, LintContext, TypeSig, relname, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS, added_columns, constraint_of

# the integer types by width in bytes; a key of fewer than 8 runs out (PostgreSQL docs,
# "8.1.1. Integer Types" and "8.1.4. Serial Types")
_WIDTH = {"int2": 2, "smallserial": 2, "int4": 4, "serial": 4, "int8": 8, "bigserial": 8}
_SMALL = {name for name, width in _WIDTH.items() if width < 8}
_LIMIT = {2: "32,767", 4: "2,147,483,647", 8: "9,223,372,036,854,775,807"}
_SHOWN = {"int2": "smallint", "int4": "integer", "int8": "bigint"}


def _columns(node: Any) -> Iterator[tuple[str, Any, set[str]]]:
    """(table, ColumnDef, primary key columns of the table constraint) of new columns."""
    if isinstance(node, ast.CreateStmt):
        keys: set[str] = set()
        for element in node.tableElts or ():
            if isinstance(element, ast.Constraint) and element.contype == CT.CONSTR_PRIMARY:
                keys |= {k.sval for k in element.keys or ()}
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                yield relname(node.relation), element, keys
    for table, column in added_columns(node):
        yield table, column, set()


def _foreign_keys(node: Any) -> Iterator[tuple[str, Any, tuple[str, ...], tuple[str, ...]]]:
    """(table, FOREIGN KEY constraint, its columns, the referenced columns as written) of
    every foreign key ``node`` declares: on a column (``REFERENCES``) or on the table."""
    if isinstance(node, ast.CreateStmt):
        table = relname(node.relation)
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                for fk in _column_fks(element):
                    yield table, fk, (str(element.colname),), _names(fk.pk_attrs)
            elif isinstance(element, ast.Constraint) and element.contype == CT.CONSTR_FOREIGN:
                yield table, element, _names(element.fk_attrs), _names(element.pk_attrs)
    elif isinstance(node, ast.AlterTableStmt):
        for table, column in added_columns(node):
            for fk in _column_fks(column):
                yield table, fk, (str(column.colname),), _names(fk.pk_attrs)
        for cmd in node.cmds or ():
            constraint = getattr(cmd, "def_", None)
            if isinstance(constraint, ast.Constraint) \
                    and constraint.contype == CT.CONSTR_FOREIGN and node.relation is not None:
                yield (relname(node.relation), constraint, _names(constraint.fk_attrs),
                       _names(constraint.pk_attrs))


def _column_fks(column: Any) -> list[Any]:
    return [c for c in column.constraints or ()
            if isinstance(c, ast.Constraint) and c.contype == CT.CONSTR_FOREIGN]


def _names(values: Any) -> tuple[str, ...]:
    return tuple(str(v.sval) for v in values or () if isinstance(v, ast.String))


def _new_types(node: Any) -> dict[tuple[str, str], TypeSig]:
    """The types of the columns ``node`` itself creates or adds, by (table, column)."""
    out: dict[tuple[str, str], TypeSig] = {}
    for table, column, _ in _columns(node):
        if column.typeName is not None:
            out[(table, str(column.colname))] = type_sig(column.typeName)
    return out


def _new_primary_key(node: Any) -> tuple[str, tuple[str, ...]] | None:
    """(table, key columns) when ``node`` is a CREATE TABLE that declares its primary key
    (a table may reference itself)."""
    if not isinstance(node, ast.CreateStmt):
        return None
    for element in node.tableElts or ():
        if isinstance(element, ast.Constraint) and element.contype == CT.CONSTR_PRIMARY:
            return relname(node.relation), _names(element.keys)
        if isinstance(element, ast.ColumnDef) \
                and constraint_of(element, CT.CONSTR_PRIMARY) is not None:
            return relname(node.relation), (str(element.colname),)
    return None


def _shown(sig: TypeSig) -> str:
    return _SHOWN.get(sig.name, sig.name)


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, keys in _columns(node):
        primary = column.colname in keys or constraint_of(column, CT.CONSTR_PRIMARY) is not None
        if primary and column.typeName is not None and type_sig(column.typeName).name in _SMALL:
            yield Hit(f"{table}.{column.colname} is a 32-bit primary key and runs out at "
                      "2,147,483,647: use bigint (BigInteger / bigserial / identity)", table,
                      safe=f'sa.Column("{column.colname}", sa.BigInteger(), sa.Identity(), '
                           f'primary_key=True)  # on {table}')
    new = _new_types(node) if isinstance(node, ast.CreateStmt | ast.AlterTableStmt) else {}
    own_key = _new_primary_key(node)
    for table, fk, columns, referenced in _foreign_keys(node):
        other = relname(fk.pktable)
        if not referenced:  # REFERENCES other: its primary key
            referenced = own_key[1] if own_key and own_key[0] == other \
                else ctx.primary_key(other)
        for position, name in enumerate(columns):
            sig = new.get((table, name)) or ctx.column_type(table, name)
            if sig is None or sig.name not in _SMALL:
                continue
            target = referenced[position] if position < len(referenced) else None
            ref = (new.get((other, target)) or ctx.column_type(other, target)) if target \
                else None
            yield _fk_hit(table, name, sig, other, target, ref)


def _fk_hit(table: str, column: str, sig: TypeSig, other: str, target: str | None,
            ref: TypeSig | None) -> Hit:
    width = _WIDTH[sig.name]
    where = f"{other}.{target}" if target else other
    safe = (f'sa.Column("{column}", sa.BigInteger(), sa.ForeignKey("{where}"))  # on {table}'
            + ("" if ref is None or _WIDTH.get(ref.name, 0) == 8 else
               f"; and make {where} bigint too"))
    if ref is not None and _WIDTH.get(ref.name, 0) > width:
        article = "an" if _shown(ref)[0] in "aeiou" else "a"
        return Hit(f"{table}.{column} is {_shown(sig)} but references {where}, {article} "
                   f"{_shown(ref)} key: once {other} hands out ids above {_LIMIT[width]}, "
                   f"every insert into {table} that points at them fails (integer out of "
                   f"range); make {table}.{column} {_shown(ref)} like the key it references",
                   table, safe=safe)
    return Hit(f"{table}.{column} is a {8 * width}-bit foreign key (to {where}) and runs out "
               f"at {_LIMIT[width]} with the key it references: use bigint for both", table,
               safe=safe)


RULE = Rule(
    id="prefer-bigint-primary-key",
    title="32-bit integer primary or foreign key",
    lock="none",
    blocks="nothing now",
    effect="changing it later rewrites the table and every referencing table",
    problem="""An `integer` key allows 2,147,483,647 rows (`smallint`: 32,767; fewer with
gaps). Moving it to `bigint` later rewrites the table and every table that references it.
The same holds for the foreign-key columns that point at a key: they must hold every value
of that key. The worst case is a `smallint`/`integer` foreign key to a `bigint` key: the
referenced table goes on handing out ids, and once they pass the smaller type's limit
every insert that points at a new row fails with "integer out of range" (PostgreSQL docs,
"8.1.1. Integer Types"). The rule flags new `smallint`/`integer`/`serial` primary-key
columns, and foreign keys (declared on a column, on the table, or added with `ALTER
TABLE … ADD CONSTRAINT … FOREIGN KEY`) whose columns are `smallint`/`integer`, naming
the referenced key's type when the history declares it. Opt in with
`enable = ["prefer-bigint-primary-key"]`.""",
    safe="""def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id")),
    )""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
