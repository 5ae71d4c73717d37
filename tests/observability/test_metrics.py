"""The mapping from events to metrics, with synthetic events (no server needed): each
metric of docs/observability.md, read back through the text exposition format."""

from __future__ import annotations

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from umbau.events import Event
from umbau.observability.metrics import Metrics, backfill_name, metrics_registry, with_metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """name + sorted labels -> value, parsed from the exposition text."""
    text = prometheus_client.generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_step_done_feeds_the_duration_histogram() -> None:
    metrics = Metrics()
    metrics(Event("step_done", revision="r1", direction="upgrade", duration=0.03))
    metrics(Event("step_done", revision="r1", direction="upgrade", duration=2.0))
    metrics(Event("step_done", revision="r1", direction="downgrade", duration=0.2))
    got = samples(metrics)
    up = (("direction", "upgrade"), ("revision", "r1"))
    assert got[("umbau_migration_duration_seconds_count", up)] == 2
    assert got[("umbau_migration_duration_seconds_sum", up)] == 2.03
    # 0.03 s falls into the 0.05 bucket, 2.0 s not
    assert got[("umbau_migration_duration_seconds_bucket", (*up[:1], ("le", "0.05"),
                                                            up[1]))] == 1
    down = (("direction", "downgrade"), ("revision", "r1"))
    assert got[("umbau_migration_duration_seconds_count", down)] == 1


def test_step_failed_counts_errors_by_revision_and_type() -> None:
    metrics = Metrics()
    for kind in ("MigrationFailed", "MigrationFailed", "RetriesExhausted"):
        metrics(Event("step_failed", revision="r2", direction="upgrade", error="boom",
                      data={"error_type": kind}))
    got = samples(metrics)
    assert got[("umbau_migration_errors_total",
                (("error_type", "MigrationFailed"), ("revision", "r2")))] == 2
    assert got[("umbau_migration_errors_total",
                (("error_type", "RetriesExhausted"), ("revision", "r2")))] == 1


def test_retries_and_lock_waits() -> None:
    metrics = Metrics()
    metrics(Event("lock_acquired", waited=3.0))
    metrics(Event("retry", revision="r1", attempt=1, delay=0.4, error="lock timeout"))
    metrics(Event("retry", revision="r1", attempt=2, delay=0.8, error="lock timeout"))
    got = samples(metrics)
    assert got[("umbau_lock_retries_total", ())] == 2
    assert got[("umbau_lock_wait_seconds_count", ())] == 3
    assert abs(got[("umbau_lock_wait_seconds_sum", ())] - 4.2) < 1e-9
    assert got[("umbau_lock_wait_seconds_bucket", (("le", "0.5"),))] == 1


def test_backfill_rows_rate_and_eta() -> None:
    metrics = Metrics()
    # a resumed backfill: 1000 rows were done by an earlier run, this run did 500 in 2 s
    metrics(Event("backfill_progress", message="backfill ocr_v2", done=1500, total=5000,
                  unit="rows", rate=250.0, eta=14.0, duration=2.0))
    metrics(Event("backfill_progress", message="backfill ocr_v2 (held: replica lag 12s)",
                  done=1500, total=5000, unit="rows", rate=200.0, eta=17.5, duration=2.5))
    metrics(Event("backfill_progress", message="backfill ocr_v2", done=2100, total=5000,
                  unit="rows", rate=300.0, eta=9.7, duration=3.7))
    metrics(Event("backfill_progress", message="backfill other", done=10, unit="rows",
                  rate=5.0, duration=2.0, data={"backfill": "named_in_data"}))
    got = samples(metrics)
    label = (("backfill", "ocr_v2"),)
    assert got[("umbau_backfill_rows_total", label)] == 1100  # 500 + 0 + 600
    assert got[("umbau_backfill_rows_per_second", label)] == 300.0
    assert got[("umbau_backfill_eta_seconds", label)] == 9.7
    assert got[("umbau_backfill_rows_total", (("backfill", "named_in_data"),))] == 10


def test_backfill_name_from_message_or_data() -> None:
    assert backfill_name(Event("backfill_progress", message="backfill a.b")) == "a.b"
    assert backfill_name(Event("backfill_progress", message="backfill x (held: lag)")) == "x"
    assert backfill_name(Event("backfill_progress", message="copying")) is None
    assert backfill_name(Event("backfill_progress", data={"backfill": "y"})) == "y"


def test_release_steps_from_the_release_engines_events() -> None:
    metrics = Metrics()
    for step, outcome, seconds in (("backup", "success", 12.5), ("migrate", "success", 0.7),
                                   ("smoke", "failed", 3.0), ("migrate", "rolled_back", 0.4)):
        metrics(Event("release_step_done", duration=seconds,
                      data={"version": "1.1.0", "step": step, "kind": step,
                            "outcome": outcome}))
    got = samples(metrics)

    def key(step: str, outcome: str) -> tuple[tuple[str, str], ...]:
        return (("outcome", outcome), ("step", step), ("version", "1.1.0"))

    assert got[("umbau_release_step_duration_seconds_sum", key("backup", "success"))] == 12.5
    assert got[("umbau_release_step_duration_seconds_count", key("smoke", "failed"))] == 1
    assert got[("umbau_release_step_duration_seconds_count",
                key("migrate", "rolled_back"))] == 1
    assert got[("umbau_release_step_duration_seconds_count", key("migrate", "success"))] == 1


def test_other_events_change_nothing() -> None:
    metrics = Metrics()
    before = samples(metrics)
    for event in (Event("plan", total=3), Event("note", message="x"),
                  Event("step_start", revision="r1"), Event("stage", message="demo")):
        metrics(event)
    assert samples(metrics) == before


def test_a_dedicated_registry_leaves_the_global_one_alone() -> None:
    metrics = Metrics()
    metrics(Event("step_done", revision="r1", direction="upgrade", duration=1.0))
    global_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "umbau_migration_duration_seconds" not in global_text
    assert metrics_registry() is metrics_registry()
    assert metrics_registry() is not metrics.registry


def test_with_metrics_feeds_the_sink_and_the_handler() -> None:
    metrics = Metrics()
    seen: list[str] = []
    handler = with_metrics(lambda event: seen.append(event.kind), metrics)
    handler(Event("retry", revision="r1", delay=0.1))
    assert seen == ["retry"]
    assert samples(metrics)[("umbau_lock_retries_total", ())] == 1


def test_fleet_targets_counted_by_kind_and_outcome() -> None:
    metrics = Metrics()
    for name, kind in (("shop1", "upgrade"), ("shop2", "upgrade"), ("shop3", "backfill")):
        metrics(Event("fleet_target_start", message=name, data={"target": name, "kind": kind}))
    running = samples(metrics)
    assert running[("umbau_fleet_targets_running", (("kind", "upgrade"),))] == 2
    metrics(Event("fleet_target_done", message="shop1", duration=0.25,
                  data={"target": "shop1", "kind": "upgrade"}))
    metrics(Event("fleet_target_failed", message="shop2", duration=1.5, error="boom",
                  data={"target": "shop2", "kind": "upgrade", "exit_code": 7}))
    metrics(Event("fleet_target_done", message="shop3", duration=2.0,
                  data={"target": "shop3", "kind": "backfill"}))
    got = samples(metrics)
    assert got[("umbau_fleet_targets_total", (("kind", "upgrade"), ("outcome", "done")))] == 1
    assert got[("umbau_fleet_targets_total", (("kind", "upgrade"), ("outcome", "failed")))] == 1
    assert got[("umbau_fleet_targets_total", (("kind", "backfill"), ("outcome", "done")))] == 1
    assert got[("umbau_fleet_target_duration_seconds_sum",
                (("kind", "upgrade"), ("outcome", "failed")))] == 1.5
    assert got[("umbau_fleet_targets_running", (("kind", "upgrade"),))] == 0
    assert got[("umbau_fleet_targets_running", (("kind", "backfill"),))] == 0
