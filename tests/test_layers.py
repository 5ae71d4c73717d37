"""Imports in src/umbau point down the stack only (docs/architecture.md, "Layers"):

    cli → commands → {testing, lint, backup, backfill, ops, fleet, …} → runner/plan/retry
        → alembic_bridge → sql/postgres → settings → events → errors

Every import counts, at the top of a module or inside a function. A unit may import
units below it, and itself. Two units on the same level never import each other
(sideways). Inside ``cli/`` and ``commands/`` the modules are siblings too: one may
import only the package's ``__init__``, its ``_private`` helpers and the shared
``cli/render.py``. Inside any package, two modules never import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "umbau"

# Smaller is higher. Units on one level are siblings: no arrow between them.
LEVELS: dict[str, int] = {
    "umbau": 0, "umbau.__main__": 0, "umbau._version": 99,
    "umbau.cli": 10,
    "umbau.commands": 20,
    # the dashboard shows what the commands (and the fleet) answer
    "umbau.dashboard": 15,
    # a fleet runs the upgrade command on many databases
    "umbau.fleet": 17,
    # the zero-downtime helpers for revision files build on backfills (expand/contract)
    "umbau.ops": 25,
    **{f"umbau.{room}": 30 for room in ("testing", "lint", "backup", "backfill",
                                        "web")},
    # a release runs the commands in turn: upgrade, downgrade, backup, backfill, the lint gate
    "umbau.release": 18,
    "umbau.runner": 40,
    "umbau.plan": 41,
    "umbau.retry": 42,
    "umbau.loader": 69,
    # observability: metrics and JSON logs; it reads events only (no server, no commands)
    "umbau.observability": 66,
    # readiness for applications (a room like web): is the schema one this app accepts?
    "umbau.readiness": 30,
    # versioned payloads: pure chains of document upgraders (and their SQL forms), used by
    # backfills, the web helpers and applications' models
    "umbau.payload": 65,
    "umbau.alembic_bridge": 50,
    "umbau.sql": 60,
    "umbau.postgres": 60,
    "umbau.settings": 70,
    "umbau.masking": 73,  # pure string rules: passwords out of every output
    # SIGTERM as an interrupt: the CLI installs it before any command, without a driver
    "umbau.interrupts": 71,
    "umbau.events": 71,
    "umbau.errors": 72,
}

# Modules that are a unit of their own, on their own level.
OWN_UNITS = {
    # the naming rules of ops' shadow columns, triggers and backfills: lint reads them too
    "umbau.ops._names",
    # the demo is a scenario that runs the other commands in turn, as a user would
    "umbau.commands.demo",
}
LEVELS["umbau.commands.demo"] = 15
LEVELS["umbau.ops._names"] = 45

# Packages whose modules are siblings (each command is a room of its own).
SIBLING_PACKAGES = {"umbau.cli", "umbau.commands"}
SHARED_SIBLINGS = {"umbau.cli.render"}

# Known arrows in other engineers' areas, fixed there (the lead removes each pair from
# this list after merging): (importer, imported).
KNOWN: set[tuple[str, str]] = {
    # `umbau test` attaches each revision's lint findings: lint() (with its gate) still
    # lives in commands/lint.py; moving it below commands/ removes both pairs
    ("umbau.commands.test", "umbau.commands.lint"),
    # commands.lint keeps the upgrade's lint gate (check_upgrade) until the lint engineer
    # moves it below commands/
    ("umbau.commands.migrate", "umbau.commands.lint"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every umbau module ``path`` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "umbau")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "umbau":
                continue
            for alias in node.names:  # `from umbau import sql` imports umbau.sql
                sub = f"{base}.{alias.name}"
                yield sub if (SRC.parent / (sub.replace(".", "/") + ".py")).is_file() \
                    or (SRC.parent / sub.replace(".", "/")).is_dir() else base


def unit(module: str) -> str:
    """The layer unit a module belongs to: its top package, or the module itself."""
    if module in OWN_UNITS:
        return module
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if "templates" in path.parts:
            continue  # written into users' projects, never imported by umbau
        edges[module_name(path)] = set(imports_of(path)) - {module_name(path)}
    return edges


def wrong_arrow(importer: str, imported: str) -> str | None:
    """Why the arrow ``importer → imported`` points the wrong way, or None."""
    src, dst = unit(importer), unit(imported)
    if src == dst:
        if src in SIBLING_PACKAGES and imported not in (src, *SHARED_SIBLINGS) \
                and not imported.rpartition(".")[2].startswith("_") and importer != src:
            return f"sideways inside {src}"
        return None
    if src not in LEVELS or dst not in LEVELS:
        return f"{src if src not in LEVELS else dst} has no level in LEVELS: add it"
    if LEVELS[dst] > LEVELS[src]:
        return None
    return "sideways" if LEVELS[dst] == LEVELS[src] else "upward"


def test_every_unit_has_a_level() -> None:
    units = {unit(m) for m in graph()}
    assert units <= set(LEVELS), f"give these a level in LEVELS: {sorted(units - set(LEVELS))}"


def test_imports_point_down() -> None:
    found = []
    for importer, imported in sorted((a, b) for a, bs in graph().items() for b in bs):
        why = wrong_arrow(importer, imported)
        if why and (importer, imported) not in KNOWN:
            found.append(f"{importer} → {imported} ({why})")
    assert not found, "imports that point up or sideways:\n  " + "\n  ".join(found)


def test_no_two_modules_import_each_other() -> None:
    edges = graph()
    cycles = sorted(f"{a} ↔ {b}" for a, bs in edges.items() for b in bs
                    if a < b and a in edges.get(b, set())
                    and (a, b) not in KNOWN and (b, a) not in KNOWN)
    assert not cycles, "modules that import each other:\n  " + "\n  ".join(cycles)


def test_known_arrows_still_exist() -> None:
    """A known pair that is gone must leave the list, so the list stays exact."""
    edges = graph()
    gone = sorted(f"{a} → {b}" for a, b in KNOWN if b not in edges.get(a, set()))
    assert not gone, "remove from KNOWN (fixed):\n  " + "\n  ".join(gone)


# A foreign library behind its one door: (library, modules allowed to import it).
DOORS = {
    "rich": ("umbau.cli",),  # rendering lives at the top
    "pglast": ("umbau.sql", "umbau.lint.context", "umbau.lint.rules"),  # the parser, and
    # the rules' and the lint context's use of its AST node classes
}
KNOWN_DOORS: set[tuple[str, str]] = set()


def foreign_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_foreign_libraries_enter_through_their_door() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "templates" in path.parts:
            continue
        name = module_name(path)
        for library, doors in DOORS.items():
            inside = any(name == d or name.startswith(d + ".") for d in doors)
            if library in foreign_imports(path) and not inside \
                    and (name, library) not in KNOWN_DOORS:
                found.append(f"{name} imports {library} (only {', '.join(doors)} may)")
    assert not found, "foreign libraries imported outside their door:\n  " + "\n  ".join(found)
