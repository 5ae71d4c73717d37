"""``umbau demo``: the Etsy example upgraded from 1.0.0 to head on the embedded PostgreSQL."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from umbau.commands import info, migrate, status
from umbau.errors import UmbauError
from umbau.events import Event, EventHandler, emit
from umbau.postgres import embedded
from umbau.postgres.scratch import recreate_database
from umbau.runner import MigrateResult
from umbau.settings import Settings, load_settings

DEMO_DATABASE = "etsy_demo"


def examples_root() -> Path:
    """The examples shipped in the wheel (umbau/_examples) or those of a source checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_examples"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "examples"
    if checkout.is_dir():
        return checkout
    raise UmbauError("the example applications are missing from this installation: "
                     "reinstall umbau")


def load_example(name: str, package: str) -> tuple[Path, Any]:
    """The example's folder and its imported package (RELEASES, datagen)."""
    folder = examples_root() / name
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder, importlib.import_module(package)


@dataclass
class DemoResult:
    url: str
    kept: bool
    rows: dict[str, int] = field(default_factory=dict)
    before: status.StatusResult | None = None
    between: status.StatusResult | None = None  # after `upgrade --phase pre`
    upgrade: MigrateResult | None = None
    after: status.StatusResult | None = None
    runs: info.HistoryResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kept": self.kept,
            "rows": self.rows,
            "before": self.before.as_dict() if self.before else None,
            "between": self.between.as_dict() if self.between else None,
            "upgrade": self.upgrade.as_dict() if self.upgrade else None,
            "after": self.after.as_dict() if self.after else None,
            "runs": [r.as_dict() for r in (self.runs.runs or [])] if self.runs else [],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def demo(
    settings: Settings,
    *,
    folder: Path | None = None,
    orders: int = 100_000,
    keep: bool = False,
    on_event: EventHandler | None = None,
) -> DemoResult:
    """Start the embedded server, create the Etsy example at 1.0.0 with ``orders`` orders,
    show the status, upgrade to head, show the status and the run history.

    ``on_event`` receives a ``stage`` event as each stage begins, a ``result`` event with
    each part of the result as soon as it is known (``message`` names the part: ``rows``,
    ``before``, ``after``, ``runs``; ``data`` holds it), and the upgrade's own events.
    Rerunning is safe: the demo database is created afresh each time.
    """
    def show(kind: str, message: str, data: Any = None) -> None:
        emit(on_event, Event(kind, message=message, data=data))

    folder = (folder or settings.root / ".umbau" / "demo").resolve()
    clock = time.monotonic()
    server = embedded.start(folder / "pg", keep_running=keep)
    recreate_database(server.url("postgres"), DEMO_DATABASE)
    result = DemoResult(url=server.url(DEMO_DATABASE), kept=keep)
    result.seconds["server"] = time.monotonic() - clock
    try:
        demo_settings = _example_at_first_release(result, folder, orders, show)
        result.before = status.status(demo_settings)
        show("result", "before", result.before)
        clock = time.monotonic()
        result.upgrade, result.between = _two_phases(demo_settings, on_event, show)
        result.seconds["upgrade"] = time.monotonic() - clock
        result.after = status.status(demo_settings)
        show("result", "after", result.after)
        result.runs = info.history(demo_settings, runs=True, limit=20)
        show("result", "runs", result.runs)
    finally:
        if not keep:
            server.stop()
    return result


def _example_at_first_release(result: DemoResult, folder: Path, orders: int,
                              show: Callable[..., None]) -> Settings:
    """The Etsy example's settings on the demo database, upgraded to 1.0.0 and filled
    with ``orders`` orders (counts in ``result.rows``)."""
    example, package = load_example("etsy_sevdesk", "etsy_app")
    demo_settings = load_settings(cwd=example, environ={}, flags={"database_url": result.url})
    # backups taken before the upgrade go beside the demo's server, not into the example
    backup_section = {**demo_settings.section("backup"), "dir": str(folder / "backups")}
    demo_settings = replace(demo_settings,
                            sections={**demo_settings.sections, "backup": backup_section})
    show("stage", "creating the Etsy example at release 1.0.0")
    migrate.upgrade(demo_settings, package.RELEASES["1.0.0"])
    clock = time.monotonic()
    datagen = importlib.import_module("etsy_app.datagen")
    result.rows = datagen.generate(result.url, orders)
    result.seconds["data"] = time.monotonic() - clock
    show("result", "rows", result.rows)
    return demo_settings


def _two_phases(settings: Settings, on_event: EventHandler | None,
                show: Callable[..., None]) -> tuple[MigrateResult, status.StatusResult]:
    """`upgrade --phase pre`, the readiness check between, `upgrade --phase post`; one
    MigrateResult with the steps of both."""
    show("stage", "upgrading, phase pre: before the 1.1.0 application is rolled out")
    pre = migrate.upgrade(settings, "head", on_event=on_event, phase="pre")
    between = status.check(settings, phase="pre")
    show("result", "between", between)
    show("stage", "upgrading, phase post: once no 1.0.0 process writes orders")
    post = migrate.upgrade(settings, "head", on_event=on_event, phase="post")
    return replace(post, before=pre.before or post.before, steps=[*pre.steps, *post.steps],
                   retries=pre.retries + post.retries,
                   duration_s=pre.duration_s + post.duration_s), between
