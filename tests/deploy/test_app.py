"""deploy/app.py: the recipe's web process answers /health and, through umbau.readiness,
/health/ready under both deploy phases (a real PostgreSQL, the Etsy example)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from umbau.commands import migrate
from umbau.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "etsy_sevdesk"

if importlib.util.find_spec("umbau.readiness") is None:
    pytest.skip("umbau.readiness is not in this installation yet", allow_module_level=True)

pytestmark = pytest.mark.db


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_app", ROOT / "deploy" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get(app: Any, path: str) -> tuple[str, dict[str, Any]]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], json.loads(body)


def test_liveness_and_readiness_in_both_phases(database_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(cwd=EXAMPLE, environ={}, flags={"database_url": database_url})
    migrate.upgrade(settings, "3f1c2a9b7d10", backup="never")  # release 1.0.0
    monkeypatch.chdir(EXAMPLE)  # the image's /app: umbau.toml is found there
    module = load_app()

    app = module.make_app({"DATABASE_URL": database_url})
    assert get(app, "/health") == ("200 OK", {"status": "ok"})
    status, body = get(app, "/health/ready")
    assert status.startswith("503") and body["ready"] is False  # pre-deploy pending

    migrate.upgrade(settings, "head", backup="never", phase="pre")
    app = module.make_app({"DATABASE_URL": database_url})  # a new pod: no cached answer
    status, body = get(app, "/health/ready")
    assert status == "200 OK" and body["ready"] is True  # only post-deploy revisions wait
    assert get(app, "/elsewhere")[0].startswith("404")
