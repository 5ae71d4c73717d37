"""Getting umbau's metrics to Prometheus: serve, push, or write a textfile.

Three modes, any combination (docs/observability.md):

- ``serve``: an HTTP endpoint (``/metrics``, any path) on ``addr:port`` while the command
  runs, for long runs that Prometheus scrapes (upgrades that wait, backfills);
- ``pushgateway``: one PUT of every metric to a Prometheus Pushgateway when the command
  ends (job ``umbau``, grouping key ``command`` and ``host``), for short runs;
- ``textfile``: one file in node_exporter's textfile-collector folder when the command
  ends, written to a temporary file in the same folder and renamed over the target
  (``os.replace``, atomic on POSIX), as the collector's documentation requires
  (https://github.com/prometheus/node_exporter#textfile-collector).

What can be checked is checked in :meth:`Exporter.start`, before the command runs: a
port in use, a Pushgateway that refuses connections, a textfile folder that is missing or
not writable raise :class:`~umbau.errors.MetricsExportFailed` (exit 41) and nothing has
happened yet. A push or write that fails at the end, after the command did its work, is
returned as a warning by :meth:`Exporter.finish`: the command's own outcome (and exit
code) stands, because rerunning an upgrade that succeeded to fix a monitoring hiccup is
the wrong cure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest, push_to_gateway, start_http_server

from umbau.errors import MetricsExportFailed
from umbau.masking import mask_secrets
from umbau.observability.metrics import Metrics

JOB = "umbau"
PUSH_TIMEOUT = 10.0  # seconds for the connection check and the push itself


class Exporter:
    """The exposition of one command's metrics.

    ``port``/``addr``: serve while the command runs (``port=0``: any free port, see
    :attr:`port` after :meth:`start`); ``pushgateway``: an http(s) URL; ``textfile``: the
    ``.prom`` file to write; ``host``: the ``host`` grouping key (default: this machine's
    name). Raises :class:`MetricsExportFailed` from :meth:`start`.
    """

    def __init__(self, metrics: Metrics, *, port: int | None = None,
                 addr: str = "127.0.0.1", pushgateway: str | None = None,
                 textfile: str | Path | None = None, host: str | None = None) -> None:
        self.metrics = metrics
        self.port = port
        self.addr = addr
        self.pushgateway = pushgateway
        self.textfile = Path(textfile) if textfile is not None else None
        self.host = host or socket.gethostname()
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> None:
        """Check the push and textfile targets, then start serving (if asked)."""
        if self.pushgateway is not None:
            check_pushgateway(self.pushgateway)
        if self.textfile is not None:
            check_textfile(self.textfile)
        if self.port is not None:
            self._serve()

    def _serve(self) -> None:
        assert self.port is not None
        try:
            self._server, self._thread = start_http_server(self.port, addr=self.addr,
                                                           registry=self.metrics.registry)
        except OSError as exc:
            raise MetricsExportFailed(
                f"--metrics-port {self.port}: cannot listen on {self.addr}:{self.port} "
                f"({exc.strerror or exc}); choose a free port or another --metrics-addr"
            ) from exc
        self.port = int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving (the endpoint lives as long as the command)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def finish(self, command: str, exit_code: int) -> list[str]:
        """Record the exit code, push and write; returns the warnings (one line each) of a
        push or write that failed. Stops the endpoint."""
        self.metrics.command_finished(command, exit_code)
        warnings: list[str] = []
        try:
            if self.pushgateway is not None:
                try:
                    push(self.metrics, self.pushgateway, command, self.host)
                except MetricsExportFailed as exc:
                    warnings.append(str(exc))
            if self.textfile is not None:
                try:
                    write_textfile(self.metrics, self.textfile)
                except MetricsExportFailed as exc:
                    warnings.append(str(exc))
        finally:
            self.stop()
        return warnings


def _gateway_address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MetricsExportFailed(
            f"--pushgateway {mask_secrets(url)}: not an http(s) URL; give the Pushgateway's "
            "address, e.g. http://pushgateway:9091")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise MetricsExportFailed(f"--pushgateway {mask_secrets(url)}: bad port ({exc})") \
            from exc
    return parts.hostname, port


def check_pushgateway(url: str, timeout: float = PUSH_TIMEOUT) -> None:
    """The Pushgateway's URL is http(s) and its host accepts TCP connections."""
    host, port = _gateway_address(url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise MetricsExportFailed(
            f"--pushgateway {mask_secrets(url)}: cannot connect to {host}:{port} "
            f"({exc.strerror or exc}); check the URL or leave the option out") from exc


def push(metrics: Metrics, url: str, command: str, host: str,
         timeout: float = PUSH_TIMEOUT) -> None:
    """PUT every metric to the Pushgateway, replacing the group (job ``umbau``, ``command``,
    ``host``), as the Pushgateway's API defines PUT
    (https://github.com/prometheus/pushgateway#put-method)."""
    _gateway_address(url)
    try:
        push_to_gateway(url, job=JOB, registry=metrics.registry, timeout=timeout,
                        grouping_key={"command": command or "umbau", "host": host})
    except Exception as exc:  # urllib's URLError/HTTPError, OSError, timeouts
        raise MetricsExportFailed(
            f"could not push the metrics to {mask_secrets(url)}: "
            f"{mask_secrets(' '.join(str(exc).split()))}") from exc


def check_textfile(path: Path) -> None:
    """The folder of ``path`` exists and is writable; ``path`` is not a folder."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise MetricsExportFailed(f"--metrics-textfile {path}: is a folder; name a file, "
                                  "e.g. /var/lib/node_exporter/textfile/umbau.prom")
    if not folder.is_dir():
        raise MetricsExportFailed(f"--metrics-textfile {path}: the folder {folder} does not "
                                  "exist; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MetricsExportFailed(f"--metrics-textfile {path}: the folder {folder} is not "
                                  "writable; fix its permissions or choose another path")


def write_textfile(metrics: Metrics, path: Path) -> None:
    """Write the metrics in the text exposition format to ``path`` atomically: a temporary
    file in the same folder (a name node_exporter ignores: it reads ``*.prom`` only), then
    ``os.replace``. The file is readable by others (0644), as the collector needs."""
    data = generate_latest(metrics.registry)
    folder = path.parent if str(path.parent) else Path(".")
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        raise MetricsExportFailed(f"could not write the metrics to {path}: "
                                  f"{exc.strerror or exc}") from exc
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
