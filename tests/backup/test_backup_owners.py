"""Owners: restore checks the backup's owner roles first and offers --no-owner; verify
--restore-test restores the way restore does (owners included)."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backup_support import table_checksums
from sqlalchemy import text

from umbau.backup.dump import backup
from umbau.backup.restore import restore
from umbau.backup.verify import verify
from umbau.cli import main
from umbau.errors import OwnerRoleMissing
from umbau.postgres.connect import connect
from umbau.settings import Settings


@pytest.fixture
def owned_backup(settings: Settings, server_url: str) -> Iterator[tuple[Path, str]]:
    """A backup whose table ``owned`` belongs to a role that no longer exists."""
    role = f"umbau_owner_{uuid.uuid4().hex[:8]}"
    url = settings.require_database_url()
    with connect(server_url, autocommit=True) as admin:
        admin.execute(text(f'CREATE ROLE "{role}"'))
    with connect(url) as conn:
        conn.execute(text("CREATE TABLE owned (id int); INSERT INTO owned VALUES (1), (2)"))
        conn.execute(text(f'ALTER TABLE owned OWNER TO "{role}"'))
        conn.commit()
    taken = backup(settings)
    with connect(url) as conn:
        conn.execute(text(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER'))
        conn.commit()
    with connect(server_url, autocommit=True) as admin:
        admin.execute(text(f'DROP ROLE "{role}"'))
    yield taken.path, role


def test_restore_names_the_missing_role_and_touches_nothing(
        settings: Settings, owned_backup: tuple[Path, str],
        make_database: Callable[[], str]) -> None:
    path, role = owned_backup
    target = make_database()
    with pytest.raises(OwnerRoleMissing) as caught:
        restore(settings, path, database_url=target)
    message = str(caught.value)
    assert role in message and "--no-owner" in message and "\n" not in message
    assert caught.value.exit_code == 26 and caught.value.roles == (role,)
    assert table_checksums(target) == {}


def test_cli_restore_missing_role_exit_26_then_no_owner_restores(
        settings: Settings, owned_backup: tuple[Path, str], make_database, capsys) -> None:
    path, role = owned_backup
    target = make_database()
    assert main(["--database-url", target, "restore", str(path)]) == 26
    assert f"CREATE ROLE \"{role}\"" in capsys.readouterr().err
    assert main(["--database-url", target, "restore", "-q", str(path), "--no-owner"]) == 0
    with connect(target) as conn:
        owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'owned'")).scalar()
        assert owner == conn.execute(text("SELECT current_user")).scalar()


def test_verify_restores_as_restore_does(settings: Settings,
                                         owned_backup: tuple[Path, str]) -> None:
    path, role = owned_backup
    checked = verify(settings, path, restore_test=True)
    assert not checked.ok and checked.restore_test is None
    assert any(role in p and "--no-owner" in p for p in checked.problems)
    assert verify(settings, path, restore_test=True, no_owner=True).ok



@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
def test_on_a_terminal_restore_offers_no_owner(settings: Settings,
                                               owned_backup: tuple[Path, str],
                                               make_database) -> None:
    path, role = owned_backup
    target = make_database()
    pid, fd = pty.fork()
    if pid == 0:  # the child: umbau on the pseudo-terminal
        os.execv(sys.executable, [sys.executable, "-m", "umbau", "--database-url", target,
                                  "restore", "-q", str(path)])
    seen = _read_until(fd, b"--no-owner instead?")
    assert role.encode() in seen
    os.write(fd, b"y\n")
    _read_until(fd, None)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table_checksums(target)["public.owned"][0] == 2


def _read_until(fd: int, marker: bytes | None, timeout: float = 60) -> bytes:
    """What the terminal shows until ``marker`` (None: until the child closes it)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return seen
        if not chunk:
            return seen
        seen += chunk
        if marker is not None and marker in seen:
            return seen
    raise AssertionError(f"timed out; the terminal showed {seen!r}")
