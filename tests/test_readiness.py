"""umbau.readiness on a real PostgreSQL: the answer under both deploy phases, the ASGI
app through Starlette's TestClient, the WSGI app through a real wsgiref server, the
cache (a clock parameter and the count of database reads), and a database that is down."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import wsgiref.simple_server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import add_revision, linear_project, settings_for
from starlette.testclient import TestClient

from umbau.cli import main
from umbau.errors import UnknownRevision
from umbau.readiness import ReadinessProbe, asgi_app, check_ready, wsgi_app

pytestmark = pytest.mark.db


def phased_project(folder: Path) -> Path:
    """r1, r2 (pre-deploy, expand) and r3 (post-deploy, contract)."""
    linear_project(folder, 2)
    path = add_revision(folder, "r3", "r2", upgrade='op.drop_column("t1", "v")',
                        downgrade='op.add_column("t1", sa.Column("v", sa.Text))')
    path.write_text(path.read_text() + '\nphase = "post"\n')
    return folder


def upgrade(project: Path, url: str, *args: str) -> None:
    assert main(["--config", str(project / "umbau.toml"), "--database-url", url,
                 "upgrade", "--quiet", *args]) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_check_ready_under_both_phases(tmp_path: Path, database_url: str) -> None:
    project = phased_project(tmp_path)
    settings = settings_for(project, database_url)
    answer = check_ready(settings)
    assert not answer.ready and answer.current == ()
    assert answer.pending == ("r1", "r2", "r3") and answer.pending_post == ("r3",)
    assert "pre-deploy revision(s) pending (r1, r2)" in answer.reason

    upgrade(project, database_url, "r1")
    answer = check_ready(settings)
    assert not answer.ready and answer.current == ("r1",) and answer.pending == ("r2", "r3")

    upgrade(project, database_url, "--phase", "pre")  # r2: only the post revision is left
    answer = check_ready(settings)
    assert answer.ready and answer.current == ("r2",)
    assert answer.pending == ("r3",) and answer.pending_post == ("r3",)
    assert answer.as_dict() == {"ready": True, "current": ["r2"], "pending": ["r3"],
                                "pending_post": ["r3"], "reason": answer.reason,
                                "accept": ["r3"]}

    upgrade(project, database_url, "--phase", "post")
    answer = check_ready(settings)
    assert answer.ready and answer.current == ("r3",) and answer.pending == ()


def test_accept_names_the_revisions_an_app_version_works_with(tmp_path: Path,
                                                              database_url: str) -> None:
    project = phased_project(tmp_path)
    settings = settings_for(project, database_url)
    upgrade(project, database_url, "r2")
    assert check_ready(settings, accept=["r2"]).ready
    assert not check_ready(settings, accept=["r1"]).ready  # the database is past it
    assert "no revision this application accepts (r1)" in \
        check_ready(settings, accept=["r1"]).reason
    assert check_ready(settings, accept=["r1", "r2"]).ready
    with pytest.raises(UnknownRevision):
        check_ready(settings, accept=["nope"])


def test_a_database_at_a_revision_the_app_does_not_know(tmp_path: Path,
                                                         database_url: str) -> None:
    newer = phased_project(tmp_path / "newer")
    add_revision(newer, "r4", "r3")
    upgrade(newer, database_url)
    older = phased_project(tmp_path / "older")  # this app version stops at r3
    answer = check_ready(settings_for(older, database_url))
    assert not answer.ready and "r4, which this application version does not know" \
        in answer.reason


def test_a_url_finds_the_scripts_from_the_working_folder(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    project = phased_project(tmp_path)
    upgrade(project, database_url, "--phase", "pre")
    monkeypatch.chdir(project)
    assert check_ready(database_url).ready


def test_asgi_app_with_starlette_testclient(tmp_path: Path, database_url: str) -> None:
    project = phased_project(tmp_path)
    settings = settings_for(project, database_url)
    clock = Clock()
    app = asgi_app(settings, ttl=5.0, clock=clock)
    with TestClient(app) as client:  # lifespan too
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["ready"] is False and body["pending"] == ["r1", "r2", "r3"]

        upgrade(project, database_url, "--phase", "pre")
        # within ttl: the cached answer, no database read
        assert client.get("/health/ready").status_code == 503
        assert app.probe.reads == 1
        clock.now += 5.0
        response = client.get("/health/ready")
        assert response.status_code == 200 and response.json()["pending_post"] == ["r3"]
        assert app.probe.reads == 2

        assert client.get("/elsewhere").status_code == 404
        assert client.post("/health/ready").status_code == 405
        head = client.head("/health/ready")
        assert head.status_code == 200 and head.content == b""


def test_asgi_app_routed_and_mounted_in_a_starlette_application(tmp_path: Path,
                                                                database_url: str) -> None:
    """The forms docs/readiness.md gives, without following redirects (a probe must get
    its 200/503 from the first request: Starlette answers 307 for a bare mount path)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    project = phased_project(tmp_path)
    upgrade(project, database_url, "--phase", "pre")
    settings = settings_for(project, database_url)

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    ready = asgi_app(settings)
    app = Starlette(routes=[Route("/", home),
                            Route("/health/ready", ready),          # as documented
                            Mount("/probe", ready),                 # the mount's own path
                            Mount("/health", ready)])               # a prefix of the path
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/").text == "home"
        for url in ("/health/ready", "/probe/", "/health/ready/"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.json()["current"] == ["r2"]
        assert client.head("/health/ready").status_code == 200
        assert client.post("/health/ready").status_code == 405
        assert client.get("/probe/other").status_code == 404
        assert client.get("/health/other").status_code == 404
    assert ready.probe.reads == 1

    mounted = Starlette(routes=[Mount("/health/ready", asgi_app(settings))])
    with TestClient(mounted, follow_redirects=False) as client:
        assert client.get("/health/ready/").status_code == 200  # what the docs warn of:
        assert client.get("/health/ready").status_code == 307  # Starlette redirects


def test_asgi_app_in_fastapi(tmp_path: Path, database_url: str) -> None:
    from fastapi import FastAPI

    project = phased_project(tmp_path)
    app = FastAPI()
    app.add_route("/health/ready", asgi_app(settings_for(project, database_url)))
    with TestClient(app, follow_redirects=False) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503 and response.json()["pending"] == ["r1", "r2", "r3"]


def test_wsgi_app_mounted_by_a_dispatcher(tmp_path: Path, database_url: str) -> None:
    """A PEP 3333 dispatcher (as werkzeug's DispatcherMiddleware does) moves the prefix to
    SCRIPT_NAME: the app answers on its mount path, through a real server."""
    project = phased_project(tmp_path)
    upgrade(project, database_url, "--phase", "pre")
    ready = wsgi_app(settings_for(project, database_url))

    def site(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"site"]

    def dispatcher(environ: dict[str, Any], start_response: Any) -> Any:
        for prefix in ("/health/ready", "/probe"):
            path = environ.get("PATH_INFO", "")
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return ready(environ, start_response)
        return site(environ, start_response)

    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, dispatcher,
                                               handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        for url in ("/health/ready", "/health/ready/", "/probe"):
            status, body = get(base + url)
            assert status == 200 and body["current"] == ["r2"], url
        assert get(base + "/probe/other")[0] == 404
        with urllib.request.urlopen(base + "/", timeout=10) as response:
            assert response.read() == b"site"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def wsgi_server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Any, Path, Clock]]:
    project = phased_project(tmp_path)
    clock = Clock()
    app = wsgi_app(settings_for(project, database_url), ttl=2.0, clock=clock)

    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app, project, clock
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_wsgi_app_through_wsgiref(wsgi_server: Any, database_url: str) -> None:
    base, app, project, clock = wsgi_server
    upgrade(project, database_url, "r1")
    status, body = get(base + "/health/ready")
    assert status == 503 and body["current"] == ["r1"] and body["pending"] == ["r2", "r3"]
    upgrade(project, database_url, "--phase", "pre")
    for _ in range(5):  # many probes within ttl: one read
        assert get(base + "/health/ready")[0] == 503
    assert app.probe.reads == 1
    clock.now += 2.0
    status, body = get(base + "/health/ready")
    assert status == 200 and body["ready"] is True and body["pending_post"] == ["r3"]
    assert app.probe.reads == 2
    assert get(base + "/nope")[0] == 404


def test_a_database_error_is_a_503_with_one_masked_line(tmp_path: Path) -> None:
    project = phased_project(tmp_path)
    settings = settings_for(project, "postgresql://app:s3cret@127.0.0.1:1/db")
    clock = Clock()
    probe = ReadinessProbe(settings, ttl=3.0, clock=clock)
    status, body = probe.response()
    data = json.loads(body)
    assert status == 503 and data["ready"] is False
    assert data["reason"].startswith("cannot read the schema revision:")
    assert "s3cret" not in body.decode() and "\n" not in data["reason"]
    probe.response()
    assert probe.reads == 1  # a failure is cached too: a database in trouble is not hammered
    clock.now += 3.0
    probe.response()
    assert probe.reads == 2


def test_concurrent_probes_read_once(tmp_path: Path, database_url: str) -> None:
    project = phased_project(tmp_path)
    probe = ReadinessProbe(settings_for(project, database_url), ttl=60.0)
    threads = [threading.Thread(target=probe.check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert probe.reads == 1
