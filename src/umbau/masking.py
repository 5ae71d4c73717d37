"""Passwords never reach the output: every form in which a database URL carries one.

``postgresql://user:SECRET@host/db`` (userinfo), ``...?password=SECRET`` (a query
parameter, as libpq reads it) and ``host=h password=SECRET`` or ``password='a b'``
(libpq keyword/value connection strings, PostgreSQL docs "Connection Strings").
The CLI passes everything it prints through :func:`mask_secrets`.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@ -- the password may hold anything but '@' and whitespace
_USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^@\s]*@")
# password=value in a query string or a keyword DSN; a quoted value may hold spaces
_KEYWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;'\"]+)", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """``text`` with every password in it replaced by ``***``."""
    if "@" not in text and "assword" not in text.lower():
        return text  # the common case, without running the expressions
    return _KEYWORD.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", text))

