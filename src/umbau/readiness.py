"""Readiness for applications: is the database's schema one this application accepts?

A deploy with phases (docs/ops.md, ``phase = "post"`` in a revision) runs the pre-deploy
revisions, starts the new application version, and runs the post-deploy ones once the
old version is gone. The new version is therefore ready as soon as the only revisions
still pending are post-deploy ones; a pending pre-deploy revision means its schema is not
there yet, and the database at a revision the application does not know (a newer
release, a rollback) means it cannot vouch for the schema at all.

- :func:`check_ready` answers once (one connection, one query when env.py keeps Alembic's
  default version table; see :func:`umbau.plan.read_heads`).
- :class:`ReadinessProbe` caches the answer for ``ttl`` seconds (one database read per
  ``ttl`` however many probes arrive; concurrent probes wait for the one in flight).
- :func:`asgi_app` and :func:`wsgi_app` serve it on ``/health/ready``: 200 when ready,
  503 when not (or when the database cannot be asked), with the JSON body of
  :meth:`Readiness.as_dict`. Kubernetes treats any status from 200 to 399 as success
  (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.errors import UmbauError
from umbau.masking import mask_secrets
from umbau.plan import read_heads
from umbau.postgres.connect import connect
from umbau.postgres.errors import describe_error
from umbau.settings import Settings, load_settings

PATH = "/health/ready"
TTL = 5.0  # seconds an answer is reused
STATEMENT_TIMEOUT_MS = 5000  # a probe's query never waits longer (milliseconds)


@dataclass(frozen=True)
class Readiness:
    """One answer. ``current``: the database's revisions; ``pending``: the revisions
    between them and the accepted revision, in order; ``pending_post``: those of them
    that are post-deploy; ``reason``: one line saying why (masked)."""

    ready: bool
    current: tuple[str, ...]
    pending: tuple[str, ...] = ()
    pending_post: tuple[str, ...] = ()
    reason: str = ""
    accept: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "current": list(self.current),
                "pending": list(self.pending), "pending_post": list(self.pending_post),
                "reason": self.reason, "accept": list(self.accept)}


def settings_of(settings_or_url: Settings | str) -> Settings:
    """Settings as given, or for a URL: the settings file found from the working folder
    (for the script location) with that URL."""
    if isinstance(settings_or_url, Settings):
        return settings_or_url
    return load_settings(environ={}, flags={"database_url": settings_or_url})


class _Judge:
    """The scripts of the application, loaded once, and the revisions it accepts."""

    def __init__(self, settings: Settings, accept: Iterable[str] | None) -> None:
        self.settings = settings
        self.project = bridge.Project(settings, settings.database_url)
        self.accept = tuple(accept) if accept is not None else self.project.heads()
        if not self.accept:
            raise UmbauError("readiness: no revision to accept (the script folder has no "
                             "revisions): pass accept=[...]")
        for revision in self.accept:
            self.project.get(revision)  # UnknownRevision for a typo

    def check(self) -> Readiness:
        url = self.settings.require_database_url()
        with connect(url) as conn:
            conn.exec_driver_sql(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            current = read_heads(self.project, conn)
            conn.rollback()
        return self.judge(current)

    def judge(self, current: tuple[str, ...]) -> Readiness:
        """Ready when a revision of ``accept`` is reachable from ``current`` through
        post-deploy revisions only (none at all: the database is at it)."""
        if set(current) <= set(self.accept) and current:
            return self._answer(True, current, [], "the database is at a revision this "
                                                   "application accepts")
        unknown = [r for r in current if not self.project.known(r)]
        if unknown:
            return self._answer(False, current, [], f"the database is at {', '.join(unknown)}, "
                                "which this application version does not know (a newer "
                                "release or a rollback): deploy the matching version")
        best: list[bridge.Step] | None = None
        for target in self.accept:
            try:
                steps = self.project.upgrade_steps(current, target)
            except UmbauError:
                continue  # the database is past it, or on another branch
            if not _is_ancestor(self.project, current, target):
                continue
            if best is None or _pre_count(self.project, steps) < _pre_count(self.project, best):
                best = steps
        if best is None:
            return self._answer(False, current, [], "the database is at "
                                f"{', '.join(current) or 'base'}, from which no revision this "
                                f"application accepts ({', '.join(self.accept)}) is reached "
                                "by upgrading")
        pre = [s.revision for s in best if self.project.phase(s.revision) != "post"]
        if pre:
            return self._answer(False, current, best, f"{len(pre)} pre-deploy revision(s) "
                                f"pending ({', '.join(pre)}): run `umbau upgrade --phase pre`")
        return self._answer(True, current, best, f"only post-deploy revision(s) pending "
                            f"({len(best)}): ready; `umbau upgrade --phase post` once the old "
                            "version is gone")

    def _answer(self, ready: bool, current: tuple[str, ...], steps: Sequence[bridge.Step],
                reason: str) -> Readiness:
        pending = tuple(s.revision for s in steps)
        post = tuple(r for r in pending if self.project.phase(r) == "post")
        return Readiness(ready, tuple(current), pending, post, mask_secrets(reason),
                         self.accept)


def _pre_count(project: bridge.Project, steps: Sequence[bridge.Step]) -> int:
    return sum(project.phase(s.revision) != "post" for s in steps)


def _is_ancestor(project: bridge.Project, current: tuple[str, ...], target: str) -> bool:
    """Every current revision lies on the way to ``target`` (or is ``target``): Alembic's
    upgrade path from a revision past ``target`` is empty, not an error."""
    if not current:
        return True
    below = {r.revision for r in project.script.iterate_revisions(target, "base")}
    return all(r in below for r in current)


def check_ready(settings_or_url: Settings | str, *,
                accept: Iterable[str] | None = None) -> Readiness:
    """Is the schema at a revision this application version accepts?

    ``settings_or_url``: umbau settings, or a database URL (the script folder then comes
    from the settings file found from the working folder). ``accept``: the revisions the
    application works with (default: the script folder's heads). Ready when the database
    is at one of them, or when only post-deploy revisions (``phase = "post"``) lie between
    it and one of them. Raises UmbauError subclasses: ``DatabaseError`` (the database
    cannot be reached), ``UnknownRevision`` (an ``accept`` revision no script knows),
    ``SettingsError``.
    """
    return _Judge(settings_of(settings_or_url), accept).check()


class ReadinessProbe:
    """:func:`check_ready` with the answer reused for ``ttl`` seconds (``clock``: seconds,
    monotonic). A failed check (database down, bad password) is an answer too: not ready,
    with the error's one line (password masked) as ``reason``, cached like the others, so
    a database in trouble is not hammered by probes. ``reads`` counts database reads.
    The scripts are loaded when the probe is made: a broken script folder fails at once.
    """

    def __init__(self, settings_or_url: Settings | str, *, accept: Iterable[str] | None = None,
                 ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.judge = _Judge(settings_of(settings_or_url), accept)
        self.ttl = ttl
        self.clock = clock
        self.reads = 0
        self._cached: tuple[float, Readiness] | None = None
        self._lock = threading.Lock()

    def check(self) -> Readiness:
        """The cached answer, or a fresh one when it is older than ``ttl`` seconds."""
        with self._lock:
            if self._cached is not None and self.clock() - self._cached[0] < self.ttl:
                return self._cached[1]
            self.reads += 1
            try:
                answer = self.judge.check()
            except Exception as exc:
                answer = Readiness(False, (), reason=mask_secrets(
                    "cannot read the schema revision: "
                    f"{exc if isinstance(exc, UmbauError) else describe_error(exc)}"),
                    accept=self.judge.accept)
            self._cached = (self.clock(), answer)
            return answer

    def response(self) -> tuple[int, bytes]:
        """HTTP status (200 ready, 503 not) and the JSON body."""
        answer = self.check()
        body = json.dumps(answer.as_dict()).encode()
        return (200 if answer.ready else 503), body


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_NOT_FOUND = b'{"error": "not found"}'
_NOT_ALLOWED = b'{"error": "method not allowed: use GET or HEAD"}'


def _route(probe: ReadinessProbe, path: str, method: str, full_path: str,
           root_path: str) -> tuple[int, bytes]:
    """Status and body for a request. ``full_path``: the request's path from the server's
    root; ``root_path``: where the app is mounted ("" when it is not). Answered: ``path``
    (a trailing ``/`` ignored), and, when mounted, the mount's own path, so that the app
    serves the probe wherever a framework or dispatcher puts it."""
    below = full_path[len(root_path):] if full_path.startswith(root_path) else full_path
    wanted = path.rstrip("/")
    if (full_path.rstrip("/") != wanted and below.rstrip("/") != wanted
            and not (root_path and below in ("", "/"))):
        return 404, _NOT_FOUND
    if method not in ("GET", "HEAD"):
        return 405, _NOT_ALLOWED
    return probe.response()


class ReadinessASGI:
    """The ASGI 3 application of :func:`asgi_app`; ``probe`` is its
    :class:`ReadinessProbe`. An object, not a function, so that Starlette's
    ``Route(path, app)`` serves it as an ASGI app (a function there is taken for a
    request handler)."""

    def __init__(self, probe: ReadinessProbe, path: str) -> None:
        self.probe = probe
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        loop = asyncio.get_running_loop()
        status, body = await loop.run_in_executor(
            None, _route, self.probe, self.path, scope.get("method", "GET"),
            scope.get("path", ""), scope.get("root_path", ""))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body",
                    "body": b"" if scope.get("method") == "HEAD" else body})


def asgi_app(settings_or_url: Settings | str, *, accept: Iterable[str] | None = None,
             ttl: float = TTL, path: str = PATH,
             clock: Callable[[], float] = time.monotonic) -> ReadinessASGI:
    """An ASGI 3 application serving ``GET path`` (200/503, JSON body; 404 elsewhere,
    405 for other methods). Starlette/FastAPI: ``Route("/health/ready", app)`` (or
    ``app.add_route``); mounted (``Mount(prefix, app)``, a ``root_path``) it also answers
    on the mount's own path. The database is read in a worker thread, never on the event
    loop. ``lifespan`` events are acknowledged. Arguments as :class:`ReadinessProbe`."""
    return ReadinessASGI(ReadinessProbe(settings_or_url, accept=accept, ttl=ttl,
                                        clock=clock), path)


_REASONS = {200: "200 OK", 404: "404 Not Found", 405: "405 Method Not Allowed",
            503: "503 Service Unavailable"}


class ReadinessWSGI:
    """The WSGI application (PEP 3333) of :func:`wsgi_app`; ``probe`` is its
    :class:`ReadinessProbe`."""

    def __init__(self, probe: ReadinessProbe, path: str) -> None:
        self.probe = probe
        self.path = path

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        # PEP 3333: the request's path is SCRIPT_NAME (where the app is mounted, e.g. by
        # a dispatcher) followed by PATH_INFO
        script = environ.get("SCRIPT_NAME", "")
        status, body = _route(self.probe, self.path, method,
                              script + environ.get("PATH_INFO", ""), script)
        start_response(_REASONS[status], [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(body))),
                                          ("Cache-Control", "no-store")])
        return [b"" if method == "HEAD" else body]


def wsgi_app(settings_or_url: Settings | str, *, accept: Iterable[str] | None = None,
             ttl: float = TTL, path: str = PATH,
             clock: Callable[[], float] = time.monotonic) -> ReadinessWSGI:
    """A WSGI application (PEP 3333) serving ``GET path`` like :func:`asgi_app`; mounted
    by a dispatcher (``SCRIPT_NAME`` set, e.g. werkzeug's ``DispatcherMiddleware``) it also
    answers on the mount's own path."""
    return ReadinessWSGI(ReadinessProbe(settings_or_url, accept=accept, ttl=ttl,
                                        clock=clock), path)
