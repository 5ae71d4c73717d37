"""Prometheus metrics from umbau's events, in a registry of their own.

:class:`Metrics` is an event handler (``EventHandler``): hand it, or a handler wrapped by
:func:`with_metrics`, to any function that takes ``on_event``. Every metric lives in a
dedicated ``CollectorRegistry``, never in prometheus_client's global ``REGISTRY``, so an
application that embeds umbau keeps its own ``/metrics`` unchanged (it may expose ours by
registering nothing: :func:`metrics_registry` returns the registry to serve or push).

Which event feeds which metric (units: seconds, rows; names follow the Prometheus
naming guide, https://prometheus.io/docs/practices/naming/):

=============================================  ============  =============================
metric                                         type          from
=============================================  ============  =============================
umbau_migration_duration_seconds{revision,     histogram     ``step_done`` (``duration``)
direction}
umbau_migration_errors_total{revision,         counter       ``step_failed`` (``data``:
error_type}                                                  ``error_type``)
umbau_lock_retries_total                       counter       ``retry``
umbau_lock_wait_seconds                        histogram     ``lock_acquired`` (``waited``)
                                                             and ``retry`` (``delay``)
umbau_backfill_rows_total{backfill}            counter       ``backfill_progress``
umbau_backfill_rows_per_second{backfill}       gauge         ``backfill_progress`` (rate)
umbau_backfill_eta_seconds{backfill}           gauge         ``backfill_progress`` (eta)
umbau_release_step_duration_seconds{version,   histogram     ``release_step_done``
step,outcome}
umbau_fleet_targets_total{kind,outcome}        counter       ``fleet_target_done`` /
                                                             ``fleet_target_failed``
umbau_fleet_target_duration_seconds{kind,      histogram     the same (``duration``)
outcome}
umbau_fleet_targets_running{kind}              gauge         ``fleet_target_start`` up,
                                                             done/failed down
umbau_command_exit_code{command}               gauge         set by the CLI at exit
=============================================  ============  =============================

The fleet's metrics count the targets this process's workers handled (several machines'
counts add up in Prometheus); ``kind`` is ``upgrade`` or ``backfill``, ``outcome``
``done`` or ``failed``. Target names are not labels: a fleet has thousands.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from umbau.events import Event, EventHandler

# seconds: a revision takes milliseconds (DDL on a small table) to hours (a rewrite)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    900.0, 3600.0)
# seconds: waits for the migrator lock and backoff delays between lock-timeout retries
LOCK_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
# seconds: release steps run from a second (env file) to an hour (backup, backfill)
RELEASE_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# `backfill NAME` or `backfill NAME (held: reason)`: the orchestrator's message
_BACKFILL_MESSAGE = re.compile(r"^backfill (?P<name>\S+)")


class Metrics:
    """An event handler that updates umbau's metrics in ``registry`` (a new dedicated
    ``CollectorRegistry`` when None). Thread-safe: the backfill's workers and the HTTP
    exposition thread may touch it at once (prometheus_client's metrics lock themselves;
    the per-backfill row bookkeeping here has its own lock)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.migration_duration = Histogram(
            "umbau_migration_duration_seconds", "Duration of one revision step, in seconds",
            ["revision", "direction"], buckets=DURATION_BUCKETS, registry=r)
        self.migration_errors = Counter(
            "umbau_migration_errors_total", "Revision steps that failed (after any retries)",
            ["revision", "error_type"], registry=r)
        self.lock_retries = Counter(
            "umbau_lock_retries_total",
            "Revision attempts retried after a lock timeout or deadlock", registry=r)
        self.lock_wait = Histogram(
            "umbau_lock_wait_seconds",
            "Seconds waited for the migrator lock, and backoff delays before lock retries",
            buckets=LOCK_WAIT_BUCKETS, registry=r)
        self.backfill_rows = Counter(
            "umbau_backfill_rows_total", "Rows a backfill changed in this process",
            ["backfill"], registry=r)
        self.backfill_rate = Gauge(
            "umbau_backfill_rows_per_second", "A backfill's current rate, in rows per second",
            ["backfill"], registry=r)
        self.backfill_eta = Gauge(
            "umbau_backfill_eta_seconds", "Seconds until a backfill is expected to finish",
            ["backfill"], registry=r)
        self.release_step_duration = Histogram(
            "umbau_release_step_duration_seconds", "Duration of one release step, in seconds",
            ["version", "step", "outcome"], buckets=RELEASE_BUCKETS, registry=r)
        self.fleet_targets = Counter(
            "umbau_fleet_targets_total", "Fleet targets this process finished",
            ["kind", "outcome"], registry=r)
        self.fleet_target_duration = Histogram(
            "umbau_fleet_target_duration_seconds",
            "Duration of one fleet target's upgrade or backfill, in seconds",
            ["kind", "outcome"], buckets=DURATION_BUCKETS, registry=r)
        self.fleet_running = Gauge(
            "umbau_fleet_targets_running", "Fleet targets this process is working on",
            ["kind"], registry=r)
        self.exit_code = Gauge(
            "umbau_command_exit_code", "Exit code of the last umbau command (0: success)",
            ["command"], registry=r)
        self._rows_seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Event], None]] = {
            "step_done": self._step_done,
            "step_failed": self._step_failed,
            "retry": self._retry,
            "lock_acquired": self._lock_acquired,
            "backfill_progress": self._backfill_progress,
            "release_step_done": self._release_step_done,
            "fleet_target_start": self._fleet_target_start,
            "fleet_target_done": self._fleet_target_end,
            "fleet_target_failed": self._fleet_target_end,
        }

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.kind)
        if handler is not None:
            handler(event)

    def _step_done(self, event: Event) -> None:
        if event.duration is None:
            return
        self.migration_duration.labels(revision=event.revision or "",
                                       direction=event.direction or "").observe(event.duration)

    def _step_failed(self, event: Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        error_type = str(data.get("error_type") or event.error or "unknown")
        self.migration_errors.labels(revision=event.revision or "",
                                     error_type=error_type).inc()

    def _retry(self, event: Event) -> None:
        self.lock_retries.inc()
        if event.delay is not None:
            self.lock_wait.observe(event.delay)

    def _lock_acquired(self, event: Event) -> None:
        if event.waited is not None:
            self.lock_wait.observe(event.waited)

    def _backfill_progress(self, event: Event) -> None:
        name = backfill_name(event)
        if name is None:
            return
        if event.done is not None:
            with self._lock:
                last = self._rows_seen.get(name)
                if last is None:
                    # the first report of this run: `done` counts the rows of earlier runs
                    # too; rate * duration (rows/s * s) is what this run did so far
                    ran = round((event.rate or 0.0) * (event.duration or 0.0))
                    delta = max(0, min(ran, event.done))
                else:
                    delta = max(0, event.done - last)
                self._rows_seen[name] = event.done
            if delta:
                self.backfill_rows.labels(backfill=name).inc(delta)
            else:
                self.backfill_rows.labels(backfill=name)  # the series exists from the start
        if event.rate is not None:
            self.backfill_rate.labels(backfill=name).set(event.rate)
        if event.eta is not None:
            self.backfill_eta.labels(backfill=name).set(event.eta)

    def _release_step_done(self, event: Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if event.duration is None:
            return
        self.release_step_duration.labels(
            version=str(data.get("version", "")), step=str(data.get("step", "")),
            outcome=str(data.get("outcome", ""))).observe(event.duration)

    def _fleet_target_start(self, event: Event) -> None:
        self.fleet_running.labels(kind=_fleet_kind(event)).inc()

    def _fleet_target_end(self, event: Event) -> None:
        kind = _fleet_kind(event)
        outcome = "done" if event.kind == "fleet_target_done" else "failed"
        self.fleet_running.labels(kind=kind).dec()
        self.fleet_targets.labels(kind=kind, outcome=outcome).inc()
        if event.duration is not None:
            self.fleet_target_duration.labels(kind=kind, outcome=outcome).observe(
                event.duration)

    def command_finished(self, command: str, exit_code: int) -> None:
        """The CLI's last word: ``umbau_command_exit_code{command}``."""
        self.exit_code.labels(command=command).set(exit_code)


def _fleet_kind(event: Event) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    return str(data.get("kind") or "upgrade")


def backfill_name(event: Event) -> str | None:
    """The backfill an event is about: ``data["backfill"]`` when given, else the name in
    the orchestrator's message (``backfill NAME`` or ``backfill NAME (held: …)``)."""
    if isinstance(event.data, dict) and event.data.get("backfill"):
        return str(event.data["backfill"])
    match = _BACKFILL_MESSAGE.match(event.message or "")
    return match.group("name") if match else None


_DEFAULT: Metrics | None = None
_DEFAULT_LOCK = threading.Lock()


def default_metrics() -> Metrics:
    """The process's one :class:`Metrics` (made on first use) in its own registry."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Metrics()
        return _DEFAULT


def metrics_registry() -> CollectorRegistry:
    """The dedicated registry of :func:`default_metrics` (serve it, push it, or merge it
    into an application's exposition); prometheus_client's global REGISTRY stays clean."""
    return default_metrics().registry


def with_metrics(handler: EventHandler | None = None,
                 metrics: Metrics | None = None) -> EventHandler:
    """``handler`` that also feeds ``metrics`` (default: :func:`default_metrics`); pass the
    result as ``on_event`` (``upgrade(settings, on_event=with_metrics(print))``)."""
    sink = metrics if metrics is not None else default_metrics()
    if handler is None:
        return sink

    def both(event: Event) -> None:
        sink(event)
        handler(event)

    return both
