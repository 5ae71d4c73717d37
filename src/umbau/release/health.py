"""The release ``health`` step: HTTP GET until the service answers the expected status.

Guide 003's ``curl -f http://localhost:8000/health`` after ``sleep 10``, without the
guess: the URL is asked every ``interval`` seconds until it answers ``expect_status`` or
``deadline`` seconds have passed, each attempt bounded by ``timeout`` seconds (standard
library ``urllib``; redirects are followed, as ``curl -L`` does).
"""

from __future__ import annotations

import base64
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from umbau.errors import HealthCheckFailed
from umbau.events import Event, EventHandler, emit
from umbau.masking import mask_secrets

__all__ = ["HealthCheckFailed", "HealthResult", "check_health"]

BODY_KEPT = 2000  # characters of the answer kept in the result


@dataclass
class HealthResult:
    """The answer that passed: ``status``, after ``attempts`` GETs in ``seconds``; ``body``:
    its first characters (decoded as UTF-8, invalid bytes replaced)."""

    url: str  # password masked
    status: int
    attempts: int
    seconds: float
    body: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "attempts": self.attempts,
                "seconds": round(self.seconds, 3), "body": self.body}


def check_health(url: str, *, expect_status: int = 200, interval: float = 1.0,
                 deadline: float = 60.0, timeout: float = 5.0,
                 on_event: EventHandler | None = None) -> HealthResult:
    """GET ``url`` (http or https) until it answers ``expect_status``.

    ``interval``: seconds between the end of one attempt and the next; ``deadline``:
    seconds after the first attempt began when no new attempt starts (an attempt never
    runs past it: its ``timeout`` is cut to what is left; at least one attempt is made);
    ``timeout``: seconds one attempt may take (connect and answer). ``on_event`` receives
    a ``health_attempt`` event per attempt that did not pass (``attempt``, ``message``:
    the status or the error, ``delay``: seconds until the next one).

    Raises HealthCheckFailed (exit 40) naming the last status or connection error when
    the deadline passes, or at once for a URL that is not http(s) or bad arguments.
    """
    masked = mask_secrets(url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HealthCheckFailed(f"the health step's url {masked!r} is not an http(s) URL; "
                                f"use e.g. http://127.0.0.1:8000/health")
    if not 100 <= expect_status <= 599 or interval < 0 or deadline < 0 or timeout <= 0:
        raise HealthCheckFailed(
            f"bad health step for {masked}: expect_status must be 100 to 599, interval and "
            f"deadline at least 0 s, timeout more than 0 s")
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        left = deadline - (time.monotonic() - started)
        status, body, error = _get(url, min(timeout, max(left, 0.05)))
        seconds = time.monotonic() - started
        if status == expect_status:
            return HealthResult(url=masked, status=status, attempts=attempts,
                                seconds=seconds, body=body)
        said = f"status {status}" if status is not None else (error or "no answer")
        left = deadline - seconds
        if left <= 0:
            raise HealthCheckFailed(
                f"health check of {masked} failed: {said} after {attempts} attempt(s) in "
                f"{seconds:.1f} s (expected {expect_status}); check the service's logs, "
                f"or give it a longer deadline", status=status, attempts=attempts,
                error=error)
        delay = min(interval, left)
        emit(on_event, Event("health_attempt", message=f"{masked}: {said}", attempt=attempts,
                             delay=delay, error=error))
        time.sleep(delay)


def _get(url: str, timeout: float) -> tuple[int | None, str, str | None]:
    """One GET: (status, body, None) for any HTTP answer, (None, "", error) otherwise."""
    target, headers = _credentials_apart(url)
    request = urllib.request.Request(target, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), _body(response), None
    except urllib.error.HTTPError as exc:  # an answer, just not 2xx
        with exc:
            return int(exc.code), _body(exc), None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        return None, "", mask_secrets(str(text))
    except TimeoutError:
        return None, "", f"no answer within {timeout:.1f} s"
    except (OSError, http.client.HTTPException) as exc:
        return None, "", mask_secrets(f"{type(exc).__name__}: {exc}".rstrip(": "))


def _credentials_apart(url: str) -> tuple[str, dict[str, str]]:
    """The URL without ``user:password@`` and the request's headers: urllib takes the
    userinfo for part of the host name, so it goes into HTTP Basic authentication
    (RFC 7617) instead; percent-escapes in it are decoded (RFC 3986, section 3.2.1)."""
    headers = {"User-Agent": "umbau-release-health"}
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, headers
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers["Authorization"] = f"Basic {token}"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address goes back into brackets
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers


def _body(response: Any) -> str:
    try:
        data = response.read(BODY_KEPT * 4)
    except (OSError, http.client.HTTPException):
        return ""
    return bytes(data).decode("utf-8", "replace")[:BODY_KEPT]
