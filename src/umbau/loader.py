"""``module:attribute`` specs: the one loader of objects named in settings and options.

Used for the models' MetaData (``metadata`` setting), backfill definitions
(``umbau backfill run myapp.backfills:ocr_v2``) and test set-up functions
(``umbau test --setup myapp.fixtures:seed``). Each caller turns the errors below into
its own one-line message.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


def split_spec(spec: str) -> tuple[str, str]:
    """``("module", "attribute.path")``; ValueError when ``spec`` is not ``module:attribute``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{spec!r} is not module:attribute")
    return module_name, attribute


def load_object(spec: str, root: Path | None = None) -> Any:
    """Import the module of ``spec`` and follow the dotted attribute path.

    ``root``: a folder put first on ``sys.path`` (the project's root), once. Raises
    ValueError for a malformed spec, ImportError (or whatever the module raises while
    importing) when the module cannot be imported, AttributeError when a part of the
    attribute path is missing.
    """
    module_name, attribute = split_spec(spec)
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value
