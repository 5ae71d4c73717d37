"""Web helpers for applications during migrations: deprecated endpoints
(:mod:`umbau.web.deprecation`) and API version negotiation with payload transformers
(:mod:`umbau.web.negotiation`). Framework-neutral ASGI and WSGI; no dependency beyond
the standard library (prometheus-client is used when installed)."""

from __future__ import annotations

from umbau.web.deprecation import (
    DeprecatedRoute,
    DeprecationMiddleware,
    DeprecationWSGIMiddleware,
    UsageLog,
)
from umbau.web.negotiation import (
    ApiVersionMiddleware,
    ApiVersions,
    PayloadView,
    UnsupportedApiVersion,
)

__all__ = [
    "ApiVersionMiddleware",
    "ApiVersions",
    "DeprecatedRoute",
    "DeprecationMiddleware",
    "DeprecationWSGIMiddleware",
    "PayloadView",
    "UnsupportedApiVersion",
    "UsageLog",
]
