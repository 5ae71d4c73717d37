"""The examples' release plans (examples/*/releases.toml) run by ``umbau release`` with
their stand-in services, health endpoints and smoke tests: Ablage 0.9 -> 1.0 (guide 003)
here, with its cache step against the real Redis; Etsy 1.0.0 -> 1.1.0 through ``umbau demo
--release`` (tests/commands/test_demo_release.py)."""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from example_support import EXAMPLES, Example, example_module

from umbau.errors import EnvFileError, ReleaseFailed
from umbau.release import run_release

redis = pytest.importorskip("redis")

pytestmark = [pytest.mark.db, pytest.mark.slow]

ABLAGE_10 = """\
# Ablage backend, release 0.9: copy to .env and fill in.
# Release 1.0 renames, removes and adds keys (releases.toml does it; guide 003,
# "Configuration Changes").
DATABASE_URL={url}
SECRET_KEY='change-me: 50 random characters'

# OCR
OCR_BACKEND=tesseract
OCR_LANGUAGES=deu+eng

# uploads, in megabytes
MAX_UPLOAD_SIZE_MB=50
UPLOAD_DIR=/var/lib/ablage/uploads

# cache and task queue
REDIS_DSN=redis://localhost:6379/0

# the v0 compatibility layer and the old API (both gone in 1.0)

# e-mail notifications
SMTP_HOST=localhost
SMTP_PORT=25
OCR_TIMEOUT_SECONDS=300
ENABLE_WEBHOOKS=true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_dsn() -> Iterator[str]:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            pass
    except OSError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    dsn = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    yield dsn
    client = redis.Redis.from_url(dsn)
    for key in client.scan_iter(match="ablage:*", count=1000):
        client.delete(key)


class Release:
    """An example's plan, scripts and .env copied into a work folder, its service."""

    def __init__(self, example: Example, work: Path, environ: dict[str, str]) -> None:
        self.example = example
        self.work = work
        self.environ = environ
        shutil.copy2(example.folder / "releases.toml", work / "releases.toml")
        shutil.copytree(example.folder / "release", work / "release")
        text = (example.folder / ".env.example").read_text()
        text = re.sub(r"(?m)^DATABASE_URL=.*$", lambda _: f"DATABASE_URL={example.url}", text)
        (work / ".env").write_text(text)
        settings = example.settings
        backup = {**settings.section("backup"), "dir": str(work / "backups")}
        # the lint gate judges 0.9 -> 1.0 as it is: no allow_unsafe
        self.settings = replace(settings, sections={**settings.sections, "backup": backup})

    def service(self, *args: str) -> None:
        subprocess.run([sys.executable, str(self.work / "release" / "service.py"), *args],
                       env={"PATH": "/usr/bin:/bin", **self.environ}, check=True,
                       capture_output=True, timeout=60)

    def run(self, version: str) -> object:
        return run_release(self.settings, version, plan_file=self.work / "releases.toml",
                           assume_yes=True, environ=self.environ)


def fingerprint(url: str) -> tuple[object, ...]:
    """The 0.9 data a rollback must give back exactly."""
    libpq = "postgresql" + url.split("postgresql+psycopg", 1)[-1]
    with psycopg.connect(libpq) as conn:
        return tuple(conn.execute(query).fetchone() for query in (
            "SELECT version_num FROM alembic_version",
            "SELECT md5(string_agg(id::text || coalesce(ocr_result::text, ''), ',' ORDER BY id))"
            " FROM documents",
            "SELECT md5(string_agg(id::text || role, ',' ORDER BY id)) FROM users",
            "SELECT md5(string_agg(document_id::text || tag, ',' ORDER BY document_id, tag))"
            " FROM document_tags",
            "SELECT to_regclass('user_roles')"))


@pytest.fixture
def ablage_release(ablage: Example, tmp_path: Path, redis_dsn: str) -> Iterator[Release]:
    ablage.upgrade("0.9.0")
    example_module("ablage", "datagen").generate(ablage.url, 200, seed=3)
    environ = {"PYTHON": sys.executable, "APP_PORT": str(free_port()), "REDIS_DSN": redis_dsn}
    release = Release(ablage, tmp_path, environ)
    client = redis.Redis.from_url(redis_dsn)
    for _ in range(120):
        client.set(f"ablage:ocr:{uuid.uuid4().hex}", "0.9 result")
    client.set("ablage:documents:1", "view")
    client.set("ablage:session:alice", "keep me")
    release.service("start", "--version", "0.9.0")
    try:
        yield release
    finally:
        release.service("stop")


def test_ablage_0_9_to_1_0(ablage_release: Release, redis_dsn: str) -> None:
    result = ablage_release.run("1.0.0")
    assert result.outcome == "released"  # type: ignore[attr-defined]
    assert fingerprint(ablage_release.example.url)[0] == ("e5f6a7b8c9d0",)
    assert (ablage_release.work / ".env").read_text() == ABLAGE_10.format(
        url=ablage_release.example.url)
    client = redis.Redis.from_url(redis_dsn)
    assert list(client.scan_iter(match="ablage:ocr:*")) == []
    assert client.get("ablage:documents:1") is None
    assert client.get("ablage:session:alice") == b"keep me"
    cache = next(s for s in result.steps if s.kind == "cache")  # type: ignore[attr-defined]
    assert cache.detail["deleted"] == 121


def test_ablage_rolls_back_when_the_smoke_test_fails(ablage_release: Release) -> None:
    before = fingerprint(ablage_release.example.url)
    env_before = (ablage_release.work / ".env").read_bytes()
    ablage_release.environ["UMBAU_DEMO_FAIL_SMOKE"] = "1"
    with pytest.raises(ReleaseFailed, match="smoke") as err:
        ablage_release.run("1.0.0")
    assert err.value.exit_code == 35
    assert fingerprint(ablage_release.example.url) == before
    assert (ablage_release.work / ".env").read_bytes() == env_before
    # the 0.9 backend is running again: its pid file names it
    assert "0.9.0" in (ablage_release.work / ".run" / "app.pid").read_text()


def test_the_plans_name_the_example_revisions() -> None:
    """Every migrate target in the plans is a revision of its example."""
    for name in ("etsy_sevdesk", "ablage"):
        text = (EXAMPLES / name / "releases.toml").read_text()
        ids = set()
        for path in (EXAMPLES / name / "migrations" / "versions").glob("*.py"):
            found = re.search(r'^revision = "(\w+)"', path.read_text(), re.M)
            assert found is not None
            ids.add(found[1])
        targets = set(re.findall(r'^target = "(\w+)"', text, re.M)) - {"head"}
        assert targets and targets <= ids, (name, targets - ids)


def test_ablage_refuses_an_env_file_without_a_required_key(ablage_release: Release) -> None:
    env = ablage_release.work / ".env"
    env.write_text(re.sub(r"(?m)^SECRET_KEY=.*\n", "", env.read_text()))
    text = env.read_bytes()
    before = fingerprint(ablage_release.example.url)
    with pytest.raises(EnvFileError, match="SECRET_KEY") as err:
        ablage_release.run("1.0.0")
    assert err.value.exit_code == 39
    assert fingerprint(ablage_release.example.url) == before
    assert env.read_bytes() == text
    assert sorted(p.name for p in ablage_release.work.iterdir()) == [
        ".env", ".run", "release", "releases.toml"]  # no backup taken, no env copy
