"""The release health step against a real http.server in a thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from umbau.errors import HealthCheckFailed
from umbau.events import Event
from umbau.release.health import check_health


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """An HTTP server whose answer is ``respond(n)`` for the n-th request (1-based):
    (status, body, seconds to wait first)."""

    def __init__(self, respond: Callable[[int], tuple[int, str, float]], port: int) -> None:
        self.requests = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.requests += 1
                status, body, wait = respond(service.requests)
                time.sleep(wait)
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(respond: Callable[[int], tuple[int, str, float]], port: int = 0) -> Service:
        service = Service(respond, port)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def url_of(service: Service) -> str:
    return f"http://127.0.0.1:{service.server.server_address[1]}/health"


def test_passes_at_once(serve: Callable[..., Service]) -> None:
    service = serve(lambda n: (200, json.dumps({"status": "ok", "revision": "f2b8"}), 0))
    result = check_health(url_of(service))
    assert result.status == 200 and result.attempts == 1
    assert json.loads(result.body)["revision"] == "f2b8"
    assert result.as_dict()["attempts"] == 1


def test_waits_for_a_service_that_starts_slowly(serve: Callable[..., Service]) -> None:
    """Nothing listens for the first 1.5 s (connection refused), then 503 twice, then 200."""
    port = free_port()
    timer = threading.Timer(1.5, lambda: serve(
        lambda n: (503 if n <= 2 else 200, "{}", 0), port))
    timer.start()
    events: list[Event] = []
    try:
        result = check_health(f"http://127.0.0.1:{port}/health", interval=0.2, deadline=20,
                              on_event=events.append)
    finally:
        timer.join()
    assert result.status == 200 and result.attempts >= 5
    said = [e.message or "" for e in events]
    assert any("refused" in s.lower() for s in said)
    assert sum("status 503" in s for s in said) == 2
    assert 1.5 <= result.seconds < 15


def test_wrong_status_until_the_deadline(serve: Callable[..., Service]) -> None:
    service = serve(lambda n: (500, '{"status": "db down"}', 0))
    clock = time.monotonic()
    with pytest.raises(HealthCheckFailed, match=r"status 500 after \d+ attempt") as err:
        check_health(url_of(service), interval=0.3, deadline=1.2)
    assert 1.2 <= time.monotonic() - clock < 6
    assert err.value.exit_code == 40 and err.value.status == 500
    assert err.value.attempts == service.requests >= 3


def test_another_expected_status(serve: Callable[..., Service]) -> None:
    service = serve(lambda n: (204, "", 0))
    assert check_health(url_of(service), expect_status=204).status == 204
    with pytest.raises(HealthCheckFailed, match="expected 200"):
        check_health(url_of(service), deadline=0)


def test_refused(serve: Callable[..., Service]) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(HealthCheckFailed, match="refused") as err:
        check_health(f"http://127.0.0.1:{port}/health", interval=0.1, deadline=0.5)
    assert err.value.status is None and err.value.attempts >= 2


def test_an_answer_slower_than_the_timeout(serve: Callable[..., Service]) -> None:
    service = serve(lambda n: (200, "{}", 3.0))
    clock = time.monotonic()
    with pytest.raises(HealthCheckFailed, match=r"timed out|no answer within"):
        check_health(url_of(service), timeout=0.3, interval=0.1, deadline=0.8)
    assert time.monotonic() - clock < 2.5  # an attempt does not run past the deadline


@pytest.mark.parametrize("url", ["ftp://host/health", "localhost:8000/health", ""])
def test_bad_urls(url: str) -> None:
    with pytest.raises(HealthCheckFailed, match="not an http"):
        check_health(url)


def test_password_in_the_url_is_masked() -> None:
    port = free_port()
    with pytest.raises(HealthCheckFailed) as err:
        check_health(f"http://user:hunter2@127.0.0.1:{port}/health", deadline=0)
    assert "hunter2" not in str(err.value)


def test_credentials_in_the_url_go_into_basic_authentication() -> None:
    """`http://user:password@host/…`: urllib would take the userinfo for the host name;
    it is sent as HTTP Basic authentication (RFC 7617) instead, percent-escapes decoded."""
    import base64

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            ok = seen[-1] == "Basic " + base64.b64encode(b"admin:p@ss:w").decode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        result = check_health(f"http://admin:p%40ss%3Aw@127.0.0.1:{port}/health", deadline=5)
        assert result.status == 200 and result.attempts == 1
        with pytest.raises(HealthCheckFailed) as err:
            check_health(f"http://admin:wrong@127.0.0.1:{port}/health", deadline=0)
        assert "401" in str(err.value) and "wrong" not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()
