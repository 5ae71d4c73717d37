"""The dashboard in a real browser: headless Chromium (Debian's chromium and
chromium-driver, installed by `make test` when missing) driven by Selenium opens the page
served by `umbau dashboard` while `umbau backfill run` works, sees the progress change,
and keeps a screenshot in tests/output/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from umbau.postgres.connect import connect
from umbau.settings import Settings

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

SPEC = """
from umbau.backfill import Backfill

slow = Backfill(name="slow_bump", table="nums",
                set={"v": "v + 1 + (SELECT 0 FROM pg_sleep(0.002))"},
                batch_size=50, max_batch_size=50, pause=0.2)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def umbau(*args: str, cwd: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    env["PYTHONPATH"] = str(cwd)
    return subprocess.Popen([sys.executable, "-m", "umbau", "--database-url", url, *args],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"umbau dashboard exited: {process.stderr.read()!r}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("umbau dashboard did not listen in time")


@pytest.fixture
def browser() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromedriver are missing: `make test` installs them "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def rows_text(driver: object) -> str:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, "#backfills td")  # type: ignore[attr-defined]
    return " | ".join(c.text for c in cells)


def test_the_page_follows_a_running_backfill(etsy_settings: Settings, tmp_path: Path,
                                             browser: object) -> None:
    url = etsy_settings.require_database_url()
    with connect(url) as conn:
        conn.execute(text("CREATE TABLE nums (id int PRIMARY KEY, v int)"))
        conn.execute(text("INSERT INTO nums SELECT g, 0 FROM generate_series(1, 3000) g"))
        conn.commit()
    (tmp_path / "spec.py").write_text(SPEC, encoding="utf-8")
    port = free_port()
    project = ROOT / "examples" / "etsy_sevdesk"
    server = umbau("dashboard", "--port", str(port), cwd=project, url=url)
    filler = umbau("backfill", "run", "spec:slow", "--quiet", cwd=tmp_path, url=url)
    try:
        wait_for_port(port, server)
        browser.get(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]
        seen = _distinct_progress(browser, want=2, seconds=40)
        OUTPUT.mkdir(exist_ok=True)
        browser.save_screenshot(str(OUTPUT / "dashboard.png"))  # type: ignore[attr-defined]
        assert len(seen) >= 2, (f"the page never showed the backfill moving: {seen}; "
                                f"backfill: {_stderr(filler)}")
        assert any("slow_bump" in s for s in seen)
        summary = browser.find_element("id", "summary").text  # type: ignore[attr-defined]
        assert "pending" in summary
        assert (OUTPUT / "dashboard.png").stat().st_size > 10_000
    finally:
        for process in (filler, server):
            process.terminate()
            process.wait(timeout=20)


def _distinct_progress(driver: object, *, want: int, seconds: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(seen) < want:
        now = rows_text(driver)
        if "slow_bump" in now and (not seen or now != seen[-1]):
            seen.append(now)
        time.sleep(0.5)
    return seen


def _stderr(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        return "still running"
    return f"exited {process.returncode}: {process.stderr.read().decode()[-500:]}"  # type: ignore[union-attr]
