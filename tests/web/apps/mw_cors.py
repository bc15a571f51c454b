"""CORS policies around tests/web/apps/mw_common.echo, one ASGI app per policy."""

from dartle.web.middleware import CORSMiddleware
from tests.web.apps.mw_common import echo

# An allow-list without credentials.
app = CORSMiddleware(
    echo,
    allow_origins=["https://good.example", "HTTPS://Other.Example:8443"],
    allow_methods=["GET", "POST", "PUT"],
    allow_headers=["X-Token"],
    expose_headers=["X-Request-Id"],
    max_age=123,
)
# Any origin, no credentials: the same answer for everyone.
wildcard = CORSMiddleware(echo, allow_origins="*", allow_methods="*", allow_headers="*")
# Credentials with wildcard methods and headers: everything must be echoed.
credentials = CORSMiddleware(
    echo,
    allow_origins=["https://good.example"],
    allow_credentials=True,
    allow_methods="*",
    allow_headers="*",
)
# Any origin with credentials: the origin is echoed, never "*".
wildcard_credentials = CORSMiddleware(echo, allow_origins="*", allow_credentials=True)
# Origins by regex (full match).
regex = CORSMiddleware(
    echo, allow_origin_regex=r"https://[a-z0-9-]+\.good\.example", allow_methods=["GET", "DELETE"]
)
