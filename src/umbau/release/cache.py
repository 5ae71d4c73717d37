"""The release ``cache`` step: delete an application's cached keys in Redis by pattern.

Guide 003's "clear caches" step, without ``FLUSHALL``: the keys matching each pattern are
found with ``SCAN … MATCH … COUNT`` (Redis docs, "SCAN": incremental, never blocks the
server the way ``KEYS`` does; a key present for the whole scan is returned at least once)
and deleted with ``UNLINK`` (Redis ≥ 4: the memory is reclaimed in the background; ``DEL``
on older servers), ``batch`` keys per command. ``FLUSHALL`` (every database of the
server) runs only when asked with ``flushall=True``.

The ``redis`` package is imported when the step runs: ``pip install 'umbau[release]'``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from umbau.errors import CacheError
from umbau.events import Event, EventHandler, emit
from umbau.masking import mask_secrets

__all__ = ["CacheClear", "CacheError", "clear_cache"]


@dataclass
class CacheClear:
    """What a cache step deleted: ``deleted`` keys in all (``per_pattern``: by pattern),
    in ``batches`` UNLINK/DEL commands, in ``seconds``; ``flushall``: the whole server
    was flushed instead (``deleted`` then counts the keys the server held before)."""

    url: str  # password masked
    patterns: list[str]
    deleted: int = 0
    per_pattern: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    flushall: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "patterns": list(self.patterns), "deleted": self.deleted,
                "per_pattern": dict(self.per_pattern), "batches": self.batches,
                "flushall": self.flushall, "seconds": round(self.seconds, 3)}


def clear_cache(url: str, patterns: Sequence[str], *, batch: int = 500,
                flushall: bool = False, on_event: EventHandler | None = None) -> CacheClear:
    """Delete the keys matching ``patterns`` (Redis glob patterns: ``ablage:*``,
    ``session:??``) in the Redis database ``url`` names (``redis://[:password@]host:port/db``,
    ``rediss://…``, ``unix:///path?db=N``).

    ``batch``: keys per SCAN round trip (its COUNT hint) and per UNLINK, at least 1.
    ``flushall``: run ``FLUSHALL`` instead (every database of the server; ``patterns``
    may then be empty). ``on_event`` receives a ``cache_clear`` event after each deleted
    batch (``message``: ``cache <pattern>``, ``done``: keys deleted so far, ``unit``: keys).

    Raises CacheError (exit 40) when the ``redis`` package is missing, the URL is
    malformed, there is nothing to match (no patterns, no flushall), or the server cannot
    be reached or answers with an error (keys deleted before the error stay deleted:
    a cache step is safe to rerun).
    """
    masked = mask_secrets(url)
    patterns = list(patterns)
    if not patterns and not flushall:
        raise CacheError("the cache step has no patterns: name the keys to delete "
                         "(e.g. patterns = [\"app:*\"]) or set flushall = true")
    if batch < 1:
        raise CacheError(f"the cache step's batch must be at least 1 (got {batch})")
    redis = _redis_module()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=60)
    except ValueError as exc:
        raise CacheError(f"the cache step's url {masked} is not a Redis URL ({exc}); use "
                         f"redis://host:6379/0") from exc
    result = CacheClear(url=masked, patterns=patterns, flushall=flushall)
    clock = time.monotonic()
    try:
        with client:
            if flushall:
                counted = _keys_in_all_databases(client)
                result.deleted = int(client.dbsize()) if counted is None else counted
                client.flushall()
                emit(on_event, Event("cache_clear", message="FLUSHALL", done=result.deleted,
                                     unit="keys"))
            else:
                for pattern in patterns:
                    _delete_matching(client, pattern, batch, result, on_event)
    except redis.exceptions.RedisError as exc:
        raise CacheError(f"cache step on {masked} failed after deleting {result.deleted} "
                         f"key(s): {mask_secrets(str(exc)) or type(exc).__name__}; check "
                         f"that Redis runs there, then rerun") from exc
    result.seconds = time.monotonic() - clock
    return result


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise CacheError("the cache step needs the redis package: "
                         "pip install 'umbau[release]'") from exc
    return redis


def _keys_in_all_databases(client: Any) -> int | None:
    """Keys in every database of the server (INFO keyspace), None when it says nothing."""
    keyspace = client.info("keyspace")
    if not isinstance(keyspace, dict):
        return None
    return sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))


def _delete_matching(client: Any, pattern: str, batch: int, result: CacheClear,
                     on_event: EventHandler | None) -> None:
    """SCAN the keys matching ``pattern`` and UNLINK them ``batch`` at a time; counts go
    into ``result`` as they happen."""
    result.per_pattern.setdefault(pattern, 0)
    pending: list[bytes] = []
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=batch)
        pending.extend(keys)
        while len(pending) >= batch or (cursor == 0 and pending):
            chunk, pending = pending[:batch], pending[batch:]
            gone = _unlink(client, chunk)
            result.per_pattern[pattern] += gone
            result.deleted += gone
            result.batches += 1
            emit(on_event, Event("cache_clear", message=f"cache {pattern}",
                                 done=result.deleted, unit="keys"))
        if cursor == 0:
            break


def _unlink(client: Any, keys: list[bytes]) -> int:
    """UNLINK (Redis ≥ 4), DEL on a server that does not know it."""
    import redis

    try:
        return int(client.unlink(*keys))
    except redis.exceptions.ResponseError as exc:
        if "unknown command" not in str(exc).lower():
            raise
        return int(client.delete(*keys))
