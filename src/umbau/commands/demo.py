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
from umbau.errors import UmbauError, UsageError
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


def _checked_folder(settings: Settings, folder: Path | None, orders: int,
                    option: str) -> Path:
    """The demo's folder, created, after checking the options; raises UsageError (exit
    2) for ``orders`` below 1 or a folder that cannot be created or is a file, before any
    server starts."""
    if isinstance(orders, bool) or not isinstance(orders, int) or orders < 1:
        raise UsageError(f"--orders must be a whole number of at least 1, not {orders!r}: "
                         f"umbau demo {option}--orders 1000")
    folder = (folder or settings.root / ".umbau" / "demo").resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {folder} as the demo folder ({exc.strerror or exc}): "
                         f"pass a writable folder with --folder") from exc
    return folder


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
    Rerunning is safe: the demo database is created afresh each time. Raises UsageError
    (before the server starts) when ``orders`` is below 1 or ``folder`` cannot be made.
    """
    def show(kind: str, message: str, data: Any = None) -> None:
        emit(on_event, Event(kind, message=message, data=data))

    folder = _checked_folder(settings, folder, orders, "")
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


# -- umbau demo --release ---------------------------------------------------------------

RELEASE_DATABASE = "etsy_release_demo"
RELEASE_VERSION = "1.1.0"
FAIL_SMOKE_VARIABLE = "UMBAU_DEMO_FAIL_SMOKE"


@dataclass
class ReleaseDemoResult:
    """``umbau demo --release``: the Etsy release 1.0.0 → 1.1.0 run by ``umbau release``.

    ``work``: the folder the plan ran in (copies of the example's releases.toml, its
    ``release/`` scripts and a ``.env`` made from ``.env.example``); ``release``: the
    run's result (with ``fail_smoke``: the rolled-back run, taken from the error);
    ``error``: the ReleaseFailed line (``fail_smoke`` only); ``env_before`` /
    ``env_after``: the env file's text before and after; ``seconds`` by stage.
    """

    url: str
    kept: bool
    fail_smoke: bool
    work: str
    rows: dict[str, int] = field(default_factory=dict)
    before: status.StatusResult | None = None
    release: Any = None  # umbau.release.ReleaseResult
    error: dict[str, Any] | None = None
    after: status.StatusResult | None = None
    env_before: str = ""
    env_after: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def env_restored(self) -> bool:
        return self.env_before == self.env_after

    @property
    def env_keys(self) -> dict[str, list[str]]:
        """The env file's keys the release took out (``gone``) and put in (``new``)."""
        from umbau.release.envfile import parse_env

        before, after = ({e.key for e in parse_env(text) if e.key}
                         for text in (self.env_before, self.env_after))
        return {"gone": sorted(before - after), "new": sorted(after - before)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url, "kept": self.kept, "fail_smoke": self.fail_smoke,
            "work": self.work, "rows": self.rows,
            "before": self.before.as_dict() if self.before else None,
            "release": self.release.as_dict() if self.release is not None else None,
            "error": self.error,
            "after": self.after.as_dict() if self.after else None,
            "env_before": self.env_before, "env_after": self.env_after,
            "env_restored": self.env_restored, "env_keys": self.env_keys,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def demo_release(
    settings: Settings,
    *,
    folder: Path | None = None,
    orders: int = 10_000,
    fail_smoke: bool = False,
    keep: bool = False,
    on_event: EventHandler | None = None,
) -> ReleaseDemoResult:
    """Run the Etsy example's release 1.0.0 → 1.1.0 (``examples/etsy_sevdesk/
    releases.toml``) with :func:`umbau.release.run_release` on the embedded PostgreSQL.

    The database is created at 1.0.0 with ``orders`` orders; the plan, its scripts and a
    ``.env`` (from ``.env.example``: the demo database, the shop the data names) are
    copied into ``<folder>/release`` so the checkout stays clean; the 1.0.0 stand-in
    service is started on a free port (``APP_PORT``), then the release runs: backup,
    stop 1.0.0, migrate, the default shop, the env rename, start 1.1.0, health, migrate
    post, smoke. ``fail_smoke``: the smoke test fails on purpose
    (``UMBAU_DEMO_FAIL_SMOKE=1``) and the release rolls back by itself; the result shows
    the database back at 1.0.0 and the ``.env`` as before. The service is stopped at
    the end; ``keep`` leaves the server running.

    ``on_event``: ``stage`` and ``result`` events as :func:`demo`, the release's own
    events. Raises UmbauError when the release does not end as the demo expects (a
    failure without ``fail_smoke``, no rollback with it), and what the release raises;
    UsageError (before the server starts) when ``orders`` is below 1 or ``folder``
    cannot be made.
    """
    from umbau.errors import ReleaseFailed
    from umbau.release import run_release

    def show(kind: str, message: str, data: Any = None) -> None:
        emit(on_event, Event(kind, message=message, data=data))

    folder = _checked_folder(settings, folder, orders, "--release ")
    clock = time.monotonic()
    server = embedded.start(folder / "pg", keep_running=keep)
    recreate_database(server.url("postgres"), RELEASE_DATABASE)
    url = server.url(RELEASE_DATABASE)
    work = folder / "release"
    result = ReleaseDemoResult(url=url, kept=keep, fail_smoke=fail_smoke, work=str(work))
    result.seconds["server"] = time.monotonic() - clock
    service: list[str] = []
    environ: dict[str, str] = {}
    try:
        holder = DemoResult(url=url, kept=keep)
        demo_settings = _example_at_first_release(holder, folder, orders, show)
        result.rows = holder.rows
        result.seconds["data"] = holder.seconds.get("data", 0.0)
        example = load_example("etsy_sevdesk", "etsy_app")[0]
        environ = {"PYTHON": sys.executable, "APP_PORT": str(_free_port())}
        if fail_smoke:
            environ[FAIL_SMOKE_VARIABLE] = "1"
        plan_file = _release_work_folder(example, work, url)
        result.env_before = (work / ".env").read_text(encoding="utf-8")
        service = [sys.executable, str(work / "release" / "service.py")]
        show("stage", f"starting the 1.0.0 service on port {environ['APP_PORT']}")
        _run_service([*service, "start", "--version", "1.0.0"], environ)
        result.before = status.status(demo_settings)
        show("result", "before", result.before)
        what = ("releasing 1.1.0 with a smoke test that fails on purpose: watch it roll back"
                if fail_smoke else "releasing 1.1.0: umbau release run 1.1.0 --yes")
        show("stage", what)
        clock = time.monotonic()
        try:
            result.release = run_release(demo_settings, RELEASE_VERSION, plan_file=plan_file,
                                         assume_yes=True, environ=environ, on_event=on_event)
        except ReleaseFailed as exc:
            if not fail_smoke:
                raise
            result.release = exc.result
            result.error = {"type": type(exc).__name__, "exit_code": exc.exit_code,
                            "message": str(exc)}
        result.seconds["release"] = time.monotonic() - clock
        if fail_smoke and result.error is None:
            raise UmbauError("the injected smoke failure did not fail the release: "
                             f"check {work / 'release' / 'smoke.py'}")
        show("result", "release", result)
        result.env_after = (work / ".env").read_text(encoding="utf-8")
        result.after = status.status(demo_settings)
        show("result", "after", result.after)
        show("result", "env", result)
    finally:
        if service:
            _run_service([*service, "stop"], environ, check=False)
        if not keep:
            server.stop()
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _release_work_folder(example: Path, work: Path, url: str) -> Path:
    """Copy the plan and its scripts into ``work`` (emptied first) and write ``.env`` from
    the example's ``.env.example`` with the demo's database and the shop its data names;
    returns the plan file."""
    import json
    import re
    import shutil

    import psycopg

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copy2(example / "releases.toml", work / "releases.toml")
    shutil.copytree(example / "release", work / "release",
                    ignore=shutil.ignore_patterns("__pycache__"))
    libpq = "postgresql" + url.split("postgresql+psycopg", 1)[-1]
    with psycopg.connect(libpq) as conn:
        row = conn.execute("SELECT value FROM integration_state WHERE key = 'etsy.shop'"
                           ).fetchone()
    shop = row[0] if row else None
    shop_id = str((shop if isinstance(shop, dict) else json.loads(shop or "{}"))
                  .get("shop_id", "12345678"))
    text = (example / ".env.example").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^DATABASE_URL=.*$", lambda _: f"DATABASE_URL={libpq}", text)
    text = re.sub(r"(?m)^ETSY_SHOP_ID=.*$", lambda _: f"ETSY_SHOP_ID={shop_id}", text)
    env = work / ".env"
    env.write_text(text, encoding="utf-8")
    env.chmod(0o600)
    return work / "releases.toml"


def _run_service(argv: list[str], environ: dict[str, str], *, check: bool = True) -> None:
    """Run the example's service.py (start/stop); UmbauError with its output on failure."""
    import os
    import subprocess

    done = subprocess.run(argv, env={**os.environ, **environ}, capture_output=True,
                          text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()
        raise UmbauError(f"{' '.join(argv[1:])} failed: {output[-1] if output else ''}")
