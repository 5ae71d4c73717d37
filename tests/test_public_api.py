"""The public surface: every name in umbau.__all__ resolves, and importing is cheap."""

from __future__ import annotations

import subprocess
import sys

import umbau


def test_every_exported_name_resolves() -> None:
    for name in umbau.__all__:
        assert getattr(umbau, name) is not None, name


def test_import_umbau_loads_no_command() -> None:
    code = ("import sys, umbau; print(sorted(m for m in sys.modules "
            "if m.startswith(('umbau.', 'alembic', 'sqlalchemy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['umbau._version']"


def test_all_matches_the_lazy_exports() -> None:
    assert sorted(umbau.__all__) == sorted(["__version__", *umbau._EXPORTS])
