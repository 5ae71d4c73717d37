"""What the rules know besides the statement: the unit, the transaction, the schema so far.

The engine feeds every statement of the history through :meth:`LintContext.apply`
after the rules have looked at it, so a rule sees the schema *before* its
statement: which tables exist and which were created in the same revision, the
columns' types, the CHECK constraints and whether they are validated, and
whether a transaction is open.
"""

from __future__ import annotations

import ast as pyast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, enums

AT = enums.AlterTableType
CT = enums.ConstrType
OT = enums.ObjectType


@dataclass(frozen=True)
class LintStatement:
    """A statement of a unit: SQL text, parse tree (None if unparseable), where it came from."""

    text: str
    node: Any | None
    error: str | None = None
    line: int | None = None  # line in the unit's file (the Python call, or the SQL line)


@dataclass
class Unit:
    """What is linted as one: a revision (its rendered SQL) or a plain SQL file."""

    id: str
    path: str | None
    statements: list[LintStatement]
    kind: str = "revision"  # "revision" | "file"
    source: str | None = None  # the file's text, for suppressions and downgrade()
    report: bool = True  # False: only feeds the schema (history before the linted range)
    via: str = "offline"  # "offline" | "database" | "file"
    starts_in_transaction: bool = True
    failure: str | None = None  # why the SQL could not be rendered or captured
    direction: str = "upgrade"  # "upgrade" | "downgrade" (umbau lint --downgrade)
    _tree: Any = field(default=None, repr=False, compare=False)

    def python_tree(self) -> pyast.Module | None:
        """The revision file's Python syntax tree, parsed once (None if it does not parse)."""
        if self._tree is None and self.kind == "revision" and self.source:
            try:
                self._tree = pyast.parse(self.source)
            except SyntaxError:
                self._tree = False
        return self._tree or None


@dataclass(frozen=True)
class TypeSig:
    """A column type reduced to what coercion rules need: name and modifiers."""

    name: str
    mods: tuple[int, ...] = ()
    array: bool = False


@dataclass
class Check:
    name: str | None
    validated: bool
    not_null_of: str | None  # the column of a ``col IS NOT NULL`` check


@dataclass
class Table:
    name: str
    created_in: str | None = None
    columns: dict[str, TypeSig | None] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    indexed: list[tuple[str, ...]] = field(default_factory=list)  # leading columns first
    primary_key: tuple[str, ...] = ()  # its columns, when the history declares them


_ALIASES = {
    "int": "int4", "integer": "int4", "int4": "int4", "smallint": "int2", "int2": "int2",
    "bigint": "int8", "int8": "int8", "character varying": "varchar", "varchar": "varchar",
    "character": "bpchar", "char": "bpchar", "bpchar": "bpchar", "decimal": "numeric",
    "numeric": "numeric", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "bool": "bool", "boolean": "bool", "float8": "float8", "double precision": "float8",
    "float4": "float4", "real": "float4", "serial": "serial", "serial4": "serial",
    "bigserial": "bigserial", "serial8": "bigserial", "smallserial": "smallserial",
    "serial2": "smallserial",
}


def type_sig(type_name: Any) -> TypeSig:
    """The :class:`TypeSig` of a pglast ``TypeName``."""
    names = [str(n.sval) for n in type_name.names if isinstance(n, ast.String)]
    name = names[-1].lower() if names else "?"
    mods: list[int] = []
    for mod in type_name.typmods or ():
        value = getattr(getattr(mod, "val", None), "ival", None)
        if value is None:
            return TypeSig(_ALIASES.get(name, name), (-1,), bool(type_name.arrayBounds))
        mods.append(int(value))
    return TypeSig(_ALIASES.get(name, name), tuple(mods), bool(type_name.arrayBounds))


def relname(rel: Any) -> str:
    """``schema.table``, with the default schema ``public`` left out."""
    if rel is None:
        return "?"
    if rel.schemaname and rel.schemaname != "public":
        return f"{rel.schemaname}.{rel.relname}"
    return str(rel.relname)


def object_name(parts: Any) -> str:
    names = [str(p.sval) for p in parts if isinstance(p, ast.String)] if isinstance(
        parts, tuple | list) else [str(getattr(parts, "sval", "?"))]
    if len(names) > 1 and names[0] == "public":
        names = names[1:]
    return ".".join(names)


def alter_cmds(node: Any) -> list[Any]:
    """The commands of an ALTER TABLE on a table (not on an index, view, type…)."""
    if not isinstance(node, ast.AlterTableStmt) or node.objtype != OT.OBJECT_TABLE:
        return []
    return [c for c in node.cmds or () if isinstance(c, ast.AlterTableCmd)]


def column_constraints(column: Any) -> list[Any]:
    return [c for c in column.constraints or () if isinstance(c, ast.Constraint)]


def not_null_check_column(expr: Any) -> str | None:
    """``col`` when ``expr`` is ``col IS NOT NULL``, else None."""
    if isinstance(expr, ast.NullTest) and expr.nulltesttype == enums.NullTestType.IS_NOT_NULL:
        fields: tuple[Any, ...] = tuple(getattr(expr.arg, "fields", None) or ())
        if len(fields) == 1 and isinstance(fields[0], ast.String):
            return str(fields[0].sval)
    return None


_TXN = enums.TransactionStmtKind
_OPENS = {_TXN.TRANS_STMT_BEGIN, _TXN.TRANS_STMT_START}
_CLOSES = {_TXN.TRANS_STMT_COMMIT, _TXN.TRANS_STMT_ROLLBACK, _TXN.TRANS_STMT_PREPARE,
           _TXN.TRANS_STMT_COMMIT_PREPARED, _TXN.TRANS_STMT_ROLLBACK_PREPARED}


class LintContext:
    """The state the rules read: target version, unit, transaction, schema so far."""

    def __init__(self, target_version: int = 15, *, server_version_num: int | None = None,
                 functions: dict[str, str] | None = None) -> None:
        self.target_version = target_version
        self.server_version_num = server_version_num  # e.g. 140003; None when offline
        self.functions = dict(functions or {})  # the live server's name -> provolatile
        self.enums: dict[str, list[str]] = {}  # enum types the history creates, with values
        self.types_created: set[str] = set()  # every CREATE TYPE/DOMAIN of the history
        self.extensions = False  # a CREATE EXTENSION was seen (its types are unknown)
        self.enum_values_added: set[tuple[str, str]] = set()  # in the open transaction
        self.locked_in_transaction: set[str] = set()  # existing tables under DDL locks
        self.replaced_enums: dict[str, list[str]] = {}  # dropped/renamed away in this unit
        self.tables: dict[str, Table] = {}
        self.indexes: dict[str, str] = {}  # index name -> table
        self.unit: Unit | None = None
        self.statement: LintStatement | None = None  # the one the rules look at now
        self.in_transaction = False
        self.not_valid_in_transaction: set[tuple[str, str]] = set()
        self.unit_changes_schema = False  # the unit has DDL, not only data changes

    # -- questions the rules ask ------------------------------------------------
    def is_new(self, table: str) -> bool:
        """True when ``table`` was created in the unit being linted (no rows yet)."""
        known = self.tables.get(table)
        return known is not None and self.unit is not None and known.created_in == self.unit.id

    def column_type(self, table: str, column: str) -> TypeSig | None:
        known = self.tables.get(table)
        return known.columns.get(column) if known else None

    def primary_key(self, table: str) -> tuple[str, ...]:
        """The primary key columns of ``table`` as the history declared them; () unknown."""
        known = self.tables.get(table)
        return known.primary_key if known else ()

    def function_kind(self, name: str) -> str | None:
        """``i``/``s``/``v`` for a function: the history's own CREATE FUNCTION, else the
        live server's ``pg_proc``, else the built-ins generated offline; None: unknown."""
        from umbau.lint.builtins import function_volatility

        return self.functions.get(name) or function_volatility().get(name)

    def has_validated_not_null_check(self, table: str, column: str) -> bool:
        known = self.tables.get(table)
        return bool(known) and any(
            c.validated and c.not_null_of == column for c in known.checks  # type: ignore[union-attr]
        )

    # -- the engine drives these ------------------------------------------------
    def begin_unit(self, unit: Unit) -> None:
        self.unit = unit
        self.in_transaction = unit.starts_in_transaction
        self.not_valid_in_transaction.clear()
        self.enum_values_added.clear()
        self.locked_in_transaction.clear()
        self.replaced_enums = {}
        self.unit_changes_schema = any(
            s.node is not None and changes_schema(s.node) for s in unit.statements)

    def apply(self, node: Any) -> None:
        """Update the state with what ``node`` did."""
        if isinstance(node, ast.TransactionStmt):
            if node.kind in _OPENS:
                self.in_transaction = True
            elif node.kind in _CLOSES:
                self.in_transaction = False
                self.not_valid_in_transaction.clear()
                self.enum_values_added.clear()
                self.locked_in_transaction.clear()
        else:
            self._apply_types(node)
            self._note_lock(node)
        self._apply_schema(node)

    def _note_lock(self, node: Any) -> None:
        # ALTER TABLE on an existing table holds its (mostly ACCESS EXCLUSIVE) lock until
        # the transaction ends; outside one, each statement commits on its own
        if self.in_transaction and isinstance(node, ast.AlterTableStmt) and alter_cmds(node):
            table = relname(node.relation)
            if not self.is_new(table):
                self.locked_in_transaction.add(table)

    def _apply_types(self, node: Any) -> None:
        if isinstance(node, ast.CreateEnumStmt):
            name = object_name(node.typeName)
            self.enums[name] = [str(v.sval) for v in node.vals or ()]
            self.types_created.add(name)
        elif isinstance(node, ast.AlterEnumStmt) and node.oldVal is None and node.newVal:
            self.enums.setdefault(object_name(node.typeName), []).append(node.newVal)
            if self.in_transaction:
                self.enum_values_added.add((object_name(node.typeName), node.newVal))
        elif isinstance(node, ast.CompositeTypeStmt | ast.CreateDomainStmt | ast.CreateRangeStmt):
            target = node.typevar if isinstance(node, ast.CompositeTypeStmt) else node.typeName
            name = relname(target) if isinstance(target, ast.RangeVar) else object_name(target)
            self.types_created.add(name)
        elif isinstance(node, ast.CreateExtensionStmt):
            self.extensions = True
        elif isinstance(node, ast.CreateFunctionStmt):
            self.functions[object_name(node.funcname).split(".")[-1]] = _volatility(node)
        elif isinstance(node, ast.DropStmt) and node.removeType == OT.OBJECT_TYPE:
            for obj in node.objects or ():
                self._replace_enum(object_name(getattr(obj, "names", obj)), None)
        elif isinstance(node, ast.RenameStmt) and node.renameType == OT.OBJECT_TYPE:
            self._replace_enum(object_name(node.object), node.newname)

    def _replace_enum(self, name: str, new_name: str | None) -> None:
        values = self.enums.pop(name, None)
        if values is not None:
            self.replaced_enums[name] = values
            if new_name:
                self.enums[new_name] = values

    def _apply_schema(self, node: Any) -> None:
        if isinstance(node, ast.TransactionStmt):
            return
        if isinstance(node, ast.CreateStmt):
            self._create(node)
        elif isinstance(node, ast.CreateTableAsStmt) and created_table(node):
            name = str(created_table(node))  # CREATE TABLE … AS: new, columns unknown
            self.tables[name] = Table(name, created_in=self.unit.id if self.unit else None)
        elif isinstance(node, ast.AlterTableStmt):
            self._alter(node)
        elif isinstance(node, ast.IndexStmt):
            if node.idxname:
                self.indexes[node.idxname] = relname(node.relation)
            self._table(relname(node.relation)).indexed.append(index_columns(node))
        elif isinstance(node, ast.RenameStmt):
            self._rename(node)
        elif isinstance(node, ast.DropStmt) and node.removeType == OT.OBJECT_TABLE:
            for obj in node.objects or ():
                self.tables.pop(object_name(obj), None)

    def _table(self, name: str) -> Table:
        if name not in self.tables:
            self.tables[name] = Table(name)
        return self.tables[name]

    def _create(self, node: Any) -> None:
        name = relname(node.relation)
        table = Table(name, created_in=self.unit.id if self.unit else None)
        self.tables[name] = table
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                self._add_column(table, element)
            elif isinstance(element, ast.Constraint):
                self._add_constraint(table, element)

    def _add_column(self, table: Table, column: Any) -> None:
        table.columns[column.colname] = type_sig(column.typeName) if column.typeName else None
        for constraint in column_constraints(column):
            if constraint.contype in (CT.CONSTR_PRIMARY, CT.CONSTR_UNIQUE):
                table.indexed.append((column.colname,))
            if constraint.contype == CT.CONSTR_PRIMARY:
                table.primary_key = (str(column.colname),)
            if constraint.contype == CT.CONSTR_CHECK:
                self._add_constraint(table, constraint)

    def _add_constraint(self, table: Table, constraint: Any) -> None:
        if constraint.contype in (CT.CONSTR_PRIMARY, CT.CONSTR_UNIQUE) and constraint.keys:
            table.indexed.append(tuple(str(k.sval) for k in constraint.keys))
            if constraint.contype == CT.CONSTR_PRIMARY:
                table.primary_key = tuple(str(k.sval) for k in constraint.keys)
        if constraint.contype == CT.CONSTR_CHECK:
            table.checks.append(Check(constraint.conname, not constraint.skip_validation,
                                      not_null_check_column(constraint.raw_expr)))
        # outside a transaction block each statement commits on its own, so a later
        # VALIDATE no longer holds the ADD's lock
        if constraint.skip_validation and constraint.conname and self.in_transaction:
            self.not_valid_in_transaction.add((table.name, constraint.conname))

    def _alter(self, node: Any) -> None:
        name = relname(node.relation)
        table = self._table(name)
        for cmd in alter_cmds(node):
            if cmd.subtype == AT.AT_AddColumn:
                self._add_column(table, cmd.def_)
            elif cmd.subtype == AT.AT_AddConstraint:
                self._add_constraint(table, cmd.def_)
            elif cmd.subtype == AT.AT_ValidateConstraint:
                for check in table.checks:
                    if check.name == cmd.name:
                        check.validated = True
            elif cmd.subtype == AT.AT_DropConstraint:
                table.checks = [c for c in table.checks if c.name != cmd.name]
            elif cmd.subtype == AT.AT_AlterColumnType:
                table.columns[cmd.name] = type_sig(cmd.def_.typeName)
            elif cmd.subtype == AT.AT_DropColumn:
                table.columns.pop(cmd.name, None)
                if cmd.name in table.primary_key:  # the key goes with its column
                    table.primary_key = ()

    def _rename(self, node: Any) -> None:
        if node.renameType == OT.OBJECT_TABLE and node.relation is not None:
            old = relname(node.relation)
            table = self.tables.pop(old, None) or Table(old)
            schema = f"{node.relation.schemaname}." if node.relation.schemaname not in (
                None, "public") else ""
            table.name = schema + node.newname
            self.tables[table.name] = table
        elif node.renameType == OT.OBJECT_COLUMN and node.relation is not None:
            table = self._table(relname(node.relation))
            table.columns[node.newname] = table.columns.pop(node.subname, None)
            table.primary_key = tuple(str(node.newname) if c == node.subname else c
                                      for c in table.primary_key)


def index_columns(node: Any) -> tuple[str, ...]:
    """The plain columns an index starts with (up to its first expression)."""
    out: list[str] = []
    for param in node.indexParams or ():
        if not isinstance(param, ast.IndexElem) or not param.name:
            break
        out.append(str(param.name))
    return tuple(out)


def _volatility(node: Any) -> str:
    """``i``/``s``/``v`` of a CREATE FUNCTION (PostgreSQL's default is VOLATILE)."""
    for option in node.options or ():
        if isinstance(option, ast.DefElem) and option.defname == "volatility":
            value = str(getattr(option.arg, "sval", ""))
            return {"immutable": "i", "stable": "s"}.get(value, "v")
    return "v"


# Statements that change data or the session, not the schema. Anything else (DDL, and
# DO/CALL, whose bodies cannot be seen) makes a unit a schema revision.
_NOT_SCHEMA = tuple(getattr(ast, name) for name in (
    "SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TransactionStmt",
    "VariableSetStmt", "VariableShowStmt", "CopyStmt", "ExplainStmt", "LockStmt",
    "NotifyStmt", "ListenStmt", "UnlistenStmt", "CheckPointStmt", "VacuumStmt",
    "ReindexStmt", "ClusterStmt", "DiscardStmt", "PrepareStmt", "ExecuteStmt",
    "DeallocateStmt", "DeclareCursorStmt", "FetchStmt", "ClosePortalStmt",
) if hasattr(ast, name))


def changes_schema(node: Any) -> bool:
    """True for DDL (CREATE, ALTER, DROP, RENAME, COMMENT, GRANT…), False for DML and the like."""
    return not isinstance(node, _NOT_SCHEMA)


def walk(node: Any) -> Iterator[Any]:
    """Every pglast node below (and including) ``node``."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for name in type(node).__slots__:  # type: ignore[attr-defined]  # pglast sets them per class
        value = getattr(node, name, None)
        if isinstance(value, ast.Node | tuple | list):
            yield from walk(value)


def touched_tables(node: Any) -> set[str]:
    """The tables a statement names (every ``schema.table`` reference in it)."""
    return {relname(n) for n in walk(node) if isinstance(n, ast.RangeVar)}


def created_table(node: Any) -> str | None:
    """The table a CREATE TABLE (… AS) statement creates, else None."""
    if isinstance(node, ast.CreateStmt):
        return relname(node.relation)
    if isinstance(node, ast.CreateTableAsStmt) and node.into is not None \
            and node.objtype == OT.OBJECT_TABLE:
        return relname(node.into.rel)
    return None
