"""The release ``env`` step: rename, remove and add keys in an env file (``.env``).

Pure file work, no server. The file is edited, not rewritten: every line the step does
not touch stays byte for byte (values, quotes, escapes, comments, blank lines, ``export``
prefixes, line endings, order). A renamed key keeps its value and its place; an added key
goes to the end. The new file is written atomically (a temporary file in the same folder,
``fsync``, ``os.replace``, the folder fsynced) with the old file's permission bits, and the
old file is kept as a backup for the rollback (:func:`restore_env`).

The syntax is the one docker compose and python-dotenv read (``KEY=value``, ``export
KEY=value``, ``# comments``, ``'single'`` quotes taken literally, ``"double"`` quotes with
backslash escapes, quoted values over several lines, `` # comment`` after an unquoted
value). Lines without ``=`` that are no assignment (``KEY`` alone, garbage) are kept as
they are; a line that assigns to a malformed key (``1BAD=2``, ``A B=1``, ``=x``) and a key
set twice are refused (EnvFileError, naming the file and the line): docker compose rejects
the first, and with the second, which value the application reads depends on its loader.

Running the same migration twice is running it once: a rename whose new key is there and
whose old key is gone, a removed key that is gone and an added key that exists are all
reported as done (``unchanged``/``absent``), and nothing is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbau.errors import EnvFileError

__all__ = ["EnvFileError", "EnvMigration", "format_value", "migrate_env", "parse_env",
           "plan_env_migration", "read_env", "restore_env"]

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ASSIGN = re.compile(
    r"(?P<lead>\ufeff?[ \t]*)(?P<export>export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)"
    r"[ \t]*=[ \t]*")
# a line that assigns (it has '=' before any '#') to something that may not be a key
_LOOKS_ASSIGN = re.compile(r"\ufeff?[ \t]*(?:export[ \t]+)?(?P<key>[^#=\r\n]*?)[ \t]*=")
# an unquoted value ends at the line's end or at whitespace followed by '#'
_UNQUOTED_END = re.compile(r"[ \t]+#|$")
# a value that every dialect reads back unchanged without quotes
_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+,=\-]+")
_DOUBLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$", "`": "`"}


@dataclass
class _Entry:
    """One logical line: ``raw`` (with its line ending), and for an assignment its key,
    where the key sits in ``raw`` and the decoded value."""

    raw: str
    key: str | None = None
    key_start: int = 0
    value: str | None = None

    def renamed(self, new: str) -> _Entry:
        assert self.key is not None
        end = self.key_start + len(self.key)
        return _Entry(self.raw[:self.key_start] + new + self.raw[end:], new,
                      self.key_start, self.value)


def _closing_quote(text: str, start: int, quote: str) -> tuple[int, str] | None:
    """Index of the quote that closes a value opened just before ``start`` and the decoded
    value, or None when it is never closed."""
    if quote == "'":
        end = text.find("'", start)
        return None if end < 0 else (end, text[start:end])
    out: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_DOUBLE_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            return i, "".join(out)
        out.append(char)
        i += 1
    return None


def parse_env(text: str, *, source: str = "env file") -> list[_Entry]:
    """The entries of an env file's text, in order; joined, their ``raw`` give ``text``
    back exactly. Raises EnvFileError (naming ``source`` and the line) on a quote that is
    never closed, a line assigning to a malformed key (not letters, digits, ``_ . -``
    starting with a letter or ``_``) and a key set twice."""
    entries: list[_Entry] = []
    pos = 0
    line_no = 1
    first_line: dict[str, int] = {}
    while pos < len(text):
        newline = text.find("\n", pos)
        end = len(text) if newline < 0 else newline + 1
        line = text[pos:end]
        match = _ASSIGN.match(line)
        if match is not None and match["key"] in first_line:
            raise EnvFileError(
                f"{source}, line {line_no}: {match['key']} is set twice (first on line "
                f"{first_line[match['key']]}); keep one, then rerun")
        if match is None:
            bad = _LOOKS_ASSIGN.match(line)
            if bad is not None:
                raise EnvFileError(
                    f"{source}, line {line_no}: {bad['key']!r} is not an env key (letters, "
                    f"digits, _ . -, not starting with a digit); fix the line, then rerun")
            entries.append(_Entry(line))
        else:
            value_at = pos + match.end()
            quote = text[value_at:value_at + 1]
            if quote in ("'", '"'):
                closed = _closing_quote(text, value_at + 1, quote)
                if closed is None:
                    raise EnvFileError(
                        f"{source}, line {line_no}: the {quote} quote of "
                        f"{match['key']} is never closed; close it, then rerun")
                close_at, value = closed
                newline = text.find("\n", close_at)
                end = len(text) if newline < 0 else newline + 1
            else:
                rest = text[value_at:end].rstrip("\n").removesuffix("\r")
                cut = _UNQUOTED_END.search(rest)
                value = rest[:cut.start() if cut else len(rest)].strip()
            entries.append(_Entry(text[pos:end], match["key"], match.start("key"), value))
            first_line[match["key"]] = line_no
        line_no += text.count("\n", pos, end)
        pos = end
    return entries


def read_env(path: Path) -> dict[str, str]:
    """The keys and decoded values of an env file.

    Raises EnvFileError when the file is missing, unreadable or not UTF-8, or malformed
    (see :func:`parse_env`).
    """
    return {e.key: e.value or "" for e in parse_env(_read(path), source=str(path))
            if e.key is not None}


def format_value(value: str) -> str:
    """``value`` as it is written after ``KEY=``: bare when that is safe, else in single
    quotes (taken literally), else in double quotes with backslash escapes (a value with a
    single quote or a line break). :func:`parse_env` reads each form back to ``value``."""
    if value == "" or _PLAIN.fullmatch(value):
        return value
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"
    escaped = "".join({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "$": "\\$",
                       "`": "\\`"}.get(c, c) for c in value)
    return f'"{escaped}"'


@dataclass
class EnvMigration:
    """What an env step did (or, from :func:`plan_env_migration`, would do).

    ``renamed``: (old, new) pairs done now; ``removed``: keys taken out now; ``added``:
    (key, value) pairs appended now; ``unchanged``: keys asked for that are already as
    asked (a rename done before, an added key that exists); ``absent``: keys to remove
    or rename that are not in the file (nothing to do). ``backup_path``: the kept old
    file (None when nothing was written and no backup was asked for). ``written``: the
    file was replaced.
    """

    path: Path
    backup_path: Path | None
    renamed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False

    @property
    def changed(self) -> bool:
        """True when the step changes the file's keys."""
        return bool(self.renamed or self.removed or self.added)

    @property
    def changes(self) -> list[str]:
        """One human line per change (values of renamed keys are not shown)."""
        return ([f"renamed {old} → {new}" for old, new in self.renamed]
                + [f"removed {key}" for key in self.removed]
                + [f"added {key}={format_value(value)}" for key, value in self.added])

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "backup_path": str(self.backup_path) if self.backup_path else None,
            "renamed": [list(pair) for pair in self.renamed],
            "removed": list(self.removed),
            "added": [list(pair) for pair in self.added],
            "unchanged": list(self.unchanged),
            "absent": list(self.absent),
            "changes": self.changes,
            "dry_run": self.dry_run,
            "written": self.written,
        }


def plan_env_migration(path: Path, *, rename: Mapping[str, str] | None = None,
                       remove: Sequence[str] = (), add: Mapping[str, str] | None = None,
                       require: Sequence[str] = ()) -> EnvMigration:
    """What :func:`migrate_env` would do to ``path``; reads the file, changes nothing.

    ``rename`` maps old keys to new ones, ``remove`` lists keys to take out, ``add`` maps
    new keys to their values (an existing key is not overwritten), ``require`` lists keys
    that must exist once the step is done. Applied in that order.

    Raises EnvFileError (exit 39) when the file is missing, unreadable or not UTF-8, a
    quote is never closed, a line of the file assigns to a malformed key or sets a key
    set before (the file and line named), a key name of the step is malformed or asked
    for twice, a rename's new key
    already exists with another value, or a required key would be missing.
    """
    migration, _ = _apply(Path(path), dict(rename or {}), list(remove), dict(add or {}),
                          list(require))
    return migration


def migrate_env(path: Path, *, rename: Mapping[str, str] | None = None,
                remove: Sequence[str] = (), add: Mapping[str, str] | None = None,
                require: Sequence[str] = (), backup_path: Path | None = None,
                dry_run: bool = False) -> EnvMigration:
    """Rename, remove and add keys in the env file ``path`` (see :func:`plan_env_migration`
    for the arguments and errors; every check runs before anything is written).

    The old file is copied to ``backup_path`` first (default: ``<file>.umbau-<UTC
    timestamp>.bak`` beside it, made only when the file changes). A given ``backup_path``
    that already exists is kept as it is: after a crash between the backup and the
    replace, a rerun must not overwrite the original with a migrated file; a given one
    that does not exist is written even when nothing changes, so that
    :func:`restore_env` always has a file to go back to. Then the new text is written to
    a temporary file in the same folder, fsynced and moved over ``path`` with
    ``os.replace`` (atomic on POSIX: readers see the old or the new file, never a part),
    keeping the permission bits (and, where allowed, the owner). ``dry_run``: nothing is
    written; ``backup_path`` in the result is where the backup would go.
    """
    path = Path(path)
    migration, text = _apply(path, dict(rename or {}), list(remove), dict(add or {}),
                             list(require))
    target = _real(path)
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    default_backup = path.with_name(f"{path.name}.umbau-{stamp}.bak")
    number = 1
    while default_backup.exists():  # two runs in one second: never overwrite a backup
        number += 1
        default_backup = path.with_name(f"{path.name}.umbau-{stamp}-{number}.bak")
    migration.dry_run = dry_run
    if dry_run:
        migration.backup_path = backup_path or (default_backup if migration.changed else None)
        return migration
    if backup_path is not None:
        backup_path = Path(backup_path)
        if not backup_path.exists():
            _write_atomic(backup_path, target.read_bytes(), target.stat())
        migration.backup_path = backup_path
    elif migration.changed:
        _write_atomic(default_backup, target.read_bytes(), target.stat())
        migration.backup_path = default_backup
    if migration.changed:
        _write_atomic(target, text.encode("utf-8"), target.stat())
        migration.written = True
    return migration


def restore_env(path: Path, backup_path: Path) -> None:
    """Put the backup ``backup_path`` back at ``path`` (the env step's undo), atomically
    and with the backup's permission bits; the backup is kept.

    Raises EnvFileError when the backup is missing or unreadable.
    """
    backup_path = Path(backup_path)
    try:
        data = backup_path.read_bytes()
        mode = backup_path.stat()
    except OSError as exc:
        raise EnvFileError(f"cannot restore {path}: the backup {backup_path} cannot be read "
                           f"({exc.strerror or exc}); restore the env file by hand") from exc
    target = _real(Path(path))
    _write_atomic(target, data, target.stat() if target.exists() else mode)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise EnvFileError(f"the env file {path} does not exist; create it (see the "
                           f"application's .env.example) or fix the step's file") from exc
    except OSError as exc:
        raise EnvFileError(f"cannot read the env file {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"the env file {path} is not UTF-8 (byte {exc.start}); "
                           f"convert it, then rerun") from exc


def _check_names(rename: dict[str, str], remove: list[str], add: dict[str, str],
                 require: list[str], source: Path) -> None:
    for name in [*rename, *rename.values(), *remove, *add, *require]:
        if not isinstance(name, str) or not KEY.fullmatch(name):
            raise EnvFileError(f"{source}: {name!r} is not an env key (letters, digits, "
                               f"_ . -, not starting with a digit); fix the env step")
    for key, value in add.items():
        if not isinstance(value, str):
            raise EnvFileError(f"{source}: the value of {key} to add is not a string; "
                               f"quote it in the plan")
    touched = [*rename, *remove, *add]
    twice = sorted({k for k in touched if touched.count(k) > 1})
    targets = list(rename.values())
    # renaming to a key and adding it is fine (the value to add is the default when the
    # old key was not there); renaming to a key and removing it is not
    twice += sorted({k for k in targets if targets.count(k) > 1}
                    | (set(targets) & (set(remove) | set(rename))))
    if twice:
        raise EnvFileError(f"{source}: the env step names {', '.join(twice)} more than once "
                           f"(rename, remove, add); keep one")


def _apply(path: Path, rename: dict[str, str], remove: list[str], add: dict[str, str],
           require: list[str]) -> tuple[EnvMigration, str]:
    """The migration of ``path`` and the file's new text."""
    _check_names(rename, remove, add, require, path)
    text = _read(path)
    entries = parse_env(text, source=str(path))
    result = EnvMigration(path=path, backup_path=None)

    def values(key: str) -> list[str]:
        return [e.value or "" for e in entries if e.key == key]

    for old, new in rename.items():
        if old == new:
            result.unchanged.append(new)
            continue
        old_values, new_values = values(old), values(new)
        if not old_values:
            (result.unchanged if new_values else result.absent).append(new if new_values
                                                                       else old)
            continue
        if new_values:
            if set(old_values) | set(new_values) != {new_values[-1]}:
                raise EnvFileError(
                    f"{path}: cannot rename {old} to {new}: {new} is already set to another "
                    f"value; remove one of them, then rerun")
            entries = [e for e in entries if e.key != old]  # the same value stays at new
        else:
            entries = [e.renamed(new) if e.key == old else e for e in entries]
        result.renamed.append((old, new))
    for key in remove:
        if values(key):
            entries = [e for e in entries if e.key != key]
            result.removed.append(key)
        else:
            result.absent.append(key)
    newline = "\r\n" if "\r\n" in text else "\n"
    for key, value in add.items():
        if values(key):
            result.unchanged.append(key)
            continue
        if entries and not entries[-1].raw.endswith("\n"):
            entries[-1] = _Entry(entries[-1].raw + newline, entries[-1].key,
                                 entries[-1].key_start, entries[-1].value)
        entries.append(_Entry(f"{key}={format_value(value)}{newline}", key, 0, value))
        result.added.append((key, value))
    missing = [key for key in require if not values(key)]
    if missing:
        raise EnvFileError(f"{path}: required key(s) {', '.join(missing)} missing after the "
                           f"env step; add them to the file (or to the step's add), then "
                           f"rerun")
    return result, "".join(e.raw for e in entries)


def _real(path: Path) -> Path:
    """The file a symlinked env file points to (replacing the link would orphan it)."""
    return path.resolve() if path.is_symlink() else path


def _write_atomic(path: Path, data: bytes, like: os.stat_result) -> None:
    """Write ``data`` to ``path`` atomically, with the mode (and owner) of ``like``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(like.st_mode))
            with contextlib.suppress(OSError):  # not allowed to give it away: stays ours
                os.fchown(handle.fileno(), like.st_uid, like.st_gid)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise EnvFileError(f"cannot write {path}: {exc.strerror or exc}; check the "
                               f"folder's permissions and free space") from exc
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
