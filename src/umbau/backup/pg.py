"""What backups need around the client programs: finding them, running them with their
stderr read line by line, and URLs fit for results and manifests. Catalog queries live in
``umbau.postgres.dumpcatalog``, the starting of children in ``umbau.postgres.clients``."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import make_url

from umbau.backup import binaries
from umbau.backup.binaries import PgTool, find_tool
from umbau.backup.config import BackupConfig
from umbau.errors import BackupFailed
from umbau.postgres import clients
from umbau.postgres.connect import normalize_url


def safe_url(url: str) -> str:
    """The URL for results and manifests: no password, neither in the user part nor as
    a ``?password=`` parameter."""
    normalize_url(url)  # a bad URL is a SettingsError here too
    parsed = make_url(url).difference_update_query(["password"])
    return parsed.render_as_string(hide_password=True)


def database_name(url: str) -> str:
    return normalize_url(url).database or "postgres"


def start_finding(config: BackupConfig, name: str) -> None:
    """Start probing the candidates for ``name`` (see :func:`binaries.start_probes`), so
    that :func:`tool` later finds them done."""
    binaries.start_probes(binaries.executables(
        name, binaries.search_folders(config.pg_bin, config.search_path)))


def tool(config: BackupConfig, name: str, server_major_version: int | None) -> PgTool:
    return find_tool(name, server_major_version, pg_bin=config.pg_bin,
                     path_env=config.search_path)


def run(tool_: PgTool, args: Sequence[str], *, env: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None, stdin: Any = None,
        stdout: Any = subprocess.DEVNULL) -> clients.Child:
    """Start a client that dies with umbau; stderr is read line by line (``on_line``) so
    it never blocks."""
    proc = clients.spawn([str(tool_.path), *args], env=env, stdin=stdin, stdout=stdout,
                         stderr=subprocess.PIPE)
    lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            lines.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    proc.umbau_stderr = lines  # type: ignore[attr-defined]
    proc.umbau_reader = reader  # type: ignore[attr-defined]
    return proc


def wait(proc: clients.Child, what: str) -> list[str]:
    """Wait for a client started by :func:`run`; a non-zero exit becomes BackupFailed.
    Interrupted (Ctrl-C, SIGTERM, an error in another thread of work), the client is
    stopped."""
    try:
        code = proc.wait()
    except BaseException:
        clients.stop(proc)
        raise
    proc.reap()
    proc.umbau_reader.join()  # type: ignore[attr-defined]
    lines: list[str] = proc.umbau_stderr  # type: ignore[attr-defined]
    if code != 0:
        raise BackupFailed(f"{what} failed (exit {code}): {first_error(lines)}: fix that "
                           "and run it again")
    return lines


def stop(proc: clients.Child) -> None:
    """Terminate a client that is still running, and reap it."""
    clients.stop(proc)


def archive_major(manifest: Mapping[str, Any]) -> int | None:
    """The major version of the pg_dump that wrote a backup (from its manifest): an
    older pg_restore cannot read the archive."""
    major = (manifest.get("pg_dump") or {}).get("major")
    return major if isinstance(major, int) else None


def at_least(*majors: int | None) -> int | None:
    """The highest of the given major versions; None when none is known."""
    known = [m for m in majors if m is not None]
    return max(known) if known else None


def first_error(lines: Sequence[str]) -> str:
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line.strip()[:300]
    return (lines[-1].strip()[:300] if lines else "no message")


def run_checked(tool_: PgTool, args: Sequence[str], what: str, *,
                env: Mapping[str, str] | None = None,
                on_line: Callable[[str], None] | None = None) -> list[str]:
    """Run a client to the end; BackupFailed on a non-zero exit."""
    return wait(run(tool_, args, env=env, on_line=on_line), what)


def capture(tool_: PgTool, args: Sequence[str], *,
            env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run a client with small output; (exit code, stdout, stderr)."""
    return clients.run([str(tool_.path), *args], env=env)
