"""`umbau new --autogenerate` with models that match the database writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import linear_project, settings_for

from umbau.cli import main
from umbau.commands import migrate, new
from umbau.errors import NoChangesDetected

pytestmark = pytest.mark.db


def _with_models(project: Path, extra_column: bool) -> None:
    extra = ", sa.Column('due', sa.Date)" if extra_column else ""
    module = f"empty_ag_models_{int(extra_column)}"  # distinct: sys.modules outlives a test
    (project / f"{module}.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('t1', metadata, sa.Column('id', sa.BigInteger, primary_key=True),"
        f" sa.Column('v', sa.Text){extra})\n")
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None",
        f"import sys\nsys.path.insert(0, {str(project)!r})\n"
        f"from {module} import metadata as target_metadata"))


def _versions(project: Path) -> set[str]:
    return {p.name for p in (project / "migrations" / "versions").glob("*.py")}


def test_no_model_changes_writes_nothing(tmp_path: Path, database_url: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    _with_models(project, extra_column=False)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    before = _versions(project)
    with pytest.raises(NoChangesDetected, match="no changes in the models") as info:
        new.new(settings, "nothing", autogenerate=True)
    assert info.value.exit_code == 18
    assert _versions(project) == before
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "new", "nothing", "--autogenerate"])
    err = capsys.readouterr().err
    assert code == 18 and err.count("\n") == 1 and "no revision was written" in err
    assert _versions(project) == before


def test_model_changes_still_write_a_revision(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    _with_models(project, extra_column=True)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    created = new.new(settings, "add due", autogenerate=True)
    assert "op.add_column('t1'" in Path(created.path).read_text()
