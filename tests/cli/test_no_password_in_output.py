"""No command prints a password: every form of it, text and JSON, success and error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import linear_project
from sqlalchemy.engine import make_url

from umbau.cli import main
from umbau.masking import mask_secrets

pytestmark = pytest.mark.db

CANARY = "Canary-Pw-7f3a9"


def _forms(database_url: str) -> dict[str, str]:
    url = make_url(database_url)
    closed = url.set(host="127.0.0.1", port=1, query={})
    return {
        "userinfo": url.set(password=CANARY).render_as_string(hide_password=False),
        "query": url.update_query_dict({"password": CANARY}).render_as_string(
            hide_password=False),
        "userinfo-unreachable": closed.set(password=CANARY).render_as_string(
            hide_password=False),
        "query-unreachable": closed.update_query_dict({"password": CANARY})
        .render_as_string(hide_password=False),
        "keyword-dsn": f"host=127.0.0.1 port=1 password={CANARY} dbname=app",
        "keyword-dsn-quoted": f"host=127.0.0.1 password='{CANARY} x' dbname=app",
    }


COMMANDS = [
    ["config"], ["status"], ["check"], ["upgrade"], ["history"], ["history", "--runs"],
    ["show", "r1"], ["show", "nope"], ["heads"], ["current"], ["doctor"], ["lint"],
    ["upgrade", "nope"], ["downgrade", "-1", "--yes"], ["stamp", "r2"], ["stamp", "nope"],
    ["merge", "-m", "m"], ["new", "added later"], ["backfill", "status"],
    ["backups", "list"], ["restore", "missing.dump"], ["baseline", "--yes"],
    ["upgrade", "--retries", "x"], ["backup", "--dir", "{tmp}/backups"],
    ["copy", "--from", "{url}", "--to", "{url}"], ["test", "--server", "{url}"],
]


@pytest.mark.parametrize("form", ["userinfo", "query", "userinfo-unreachable",
                                  "query-unreachable", "keyword-dsn", "keyword-dsn-quoted"])
def test_no_command_prints_the_password(form: str, tmp_path: Path, database_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    url = _forms(database_url)[form]
    codes = set()
    for command in COMMANDS:
        for fmt in ([], ["--format", "json"]):
            filled = [a.format(url=url, tmp=tmp_path) for a in command]
            args = ["--config", str(project / "umbau.toml"), "--database-url", url,
                    *filled, *fmt]
            code = main(args)
            codes.add(code)
            out, err = capsys.readouterr()
            assert CANARY not in out + err, (command, fmt, out, err)
            if fmt and code not in (0, 1, 3):  # every error is JSON on stdout
                assert json.loads(out)["error"]["exit_code"] == code, (command, out)
    assert len(codes) > 2  # success and error paths were both taken


def test_the_settings_file_url_is_masked_in_config(tmp_path: Path, database_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    url = _forms(database_url)["query"]
    toml = project / "umbau.toml"
    toml.write_text(toml.read_text().replace("[tool.umbau]", "[tool.umbau]") +
                    f'\ndatabase_url = "{url}"\n')
    for fmt in ([], ["--format", "json"]):
        assert main(["--config", str(toml), "config", *fmt]) == 0
        out, err = capsys.readouterr()
        assert CANARY not in out + err and "password=***" in out


def test_mask_secrets_forms() -> None:
    assert mask_secrets("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert mask_secrets("postgresql://h/db?sslmode=require&password=x&a=b") == \
        "postgresql://h/db?sslmode=require&password=***&a=b"
    assert mask_secrets("host=h password='a b' dbname=d") == "host=h password=*** dbname=d"
    assert mask_secrets("PASSWORD = x") == "PASSWORD = ***"
    assert mask_secrets("mail me at someone@example.com") == "mail me at someone@example.com"
