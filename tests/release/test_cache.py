"""The release cache step against a real Redis (127.0.0.1:6379, as on the development
machines; a private redis-server for FLUSHALL). Each test works in a random database
number under a random key prefix, so parallel runs do not collide."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from umbau.errors import CacheError
from umbau.events import Event
from umbau.release.cache import clear_cache

redis = pytest.importorskip("redis")

SHARED = "127.0.0.1", 6379


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def shared_url() -> str:
    if not _listening(*SHARED):
        pytest.skip("no Redis server on 127.0.0.1:6379")
    return f"redis://{SHARED[0]}:{SHARED[1]}/{random.randint(1, 15)}"


@pytest.fixture
def prefix(shared_url: str) -> Iterator[str]:
    name = f"umbau-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(shared_url)
    for key in client.scan_iter(match=f"{name}:*", count=1000):
        client.delete(key)


def fill(url: str, keys: list[str]) -> None:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, "v")
    pipe.execute()


def count(url: str, pattern: str) -> int:
    return sum(1 for _ in redis.Redis.from_url(url).scan_iter(match=pattern, count=1000))


def test_deletes_the_matching_keys_in_batches_and_nothing_else(shared_url: str,
                                                               prefix: str) -> None:
    fill(shared_url, [f"{prefix}:page:{i}" for i in range(1234)]
         + [f"{prefix}:ocr:{i}" for i in range(7)]
         + [f"{prefix}:session:{i}" for i in range(25)])
    events: list[Event] = []
    result = clear_cache(shared_url, [f"{prefix}:page:*", f"{prefix}:ocr:*",
                                      f"{prefix}:nothing:*"], batch=100, on_event=events.append)
    assert result.deleted == 1241
    assert result.per_pattern == {f"{prefix}:page:*": 1234, f"{prefix}:ocr:*": 7,
                                  f"{prefix}:nothing:*": 0}
    assert result.batches == 13 + 1
    assert count(shared_url, f"{prefix}:page:*") == 0
    assert count(shared_url, f"{prefix}:ocr:*") == 0
    assert count(shared_url, f"{prefix}:session:*") == 25  # not matched: kept
    assert [e.done for e in events][-1] == 1241 and all(e.kind == "cache_clear" for e in events)
    assert result.as_dict()["deleted"] == 1241 and not result.flushall
    # a rerun finds nothing left
    assert clear_cache(shared_url, [f"{prefix}:page:*"]).deleted == 0


def test_other_databases_are_untouched(shared_url: str, prefix: str) -> None:
    other = shared_url.rsplit("/", 1)[0] + "/0"
    fill(shared_url, [f"{prefix}:x:{i}" for i in range(5)])
    fill(other, [f"{prefix}:x:{i}" for i in range(5)])
    try:
        assert clear_cache(shared_url, [f"{prefix}:x:*"]).deleted == 5
        assert count(other, f"{prefix}:x:*") == 5
    finally:
        clear_cache(other, [f"{prefix}:x:*"])


def test_unreachable_server_and_bad_input(shared_url: str) -> None:
    with pytest.raises(CacheError, match="check that Redis runs there") as err:
        clear_cache("redis://:hunter2@127.0.0.1:1/0", ["app:*"])
    assert err.value.exit_code == 40
    assert "hunter2" not in str(err.value) and "***" in str(err.value)
    with pytest.raises(CacheError, match="not a Redis URL"):
        clear_cache("http://127.0.0.1:6379/0", ["app:*"])
    with pytest.raises(CacheError, match="no patterns"):
        clear_cache(shared_url, [])
    with pytest.raises(CacheError, match="at least 1"):
        clear_cache(shared_url, ["app:*"], batch=0)


def test_without_the_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    with pytest.raises(CacheError, match=r"pip install 'umbau\[release\]'"):
        clear_cache("redis://127.0.0.1:6379/0", ["app:*"])


@pytest.fixture
def private_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of our own (FLUSHALL would empty the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _listening("127.0.0.1", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the private redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_flushall_only_when_asked(private_url: str) -> None:
    other = private_url[:-1] + "3"
    fill(private_url, [f"a:{i}" for i in range(10)])
    fill(other, [f"b:{i}" for i in range(4)])
    assert clear_cache(private_url, ["a:1*"]).deleted == 1  # a:1 (a:10 does not exist)
    assert count(other, "*") == 4
    result = clear_cache(private_url, [], flushall=True)
    assert result.flushall and result.deleted == 9 + 4
    assert count(private_url, "*") == 0 and count(other, "*") == 0
