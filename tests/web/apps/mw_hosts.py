"""TrustedHostMiddleware and HTTPSRedirectMiddleware around tests/web/apps/mw_common.echo."""

from dartle.web.middleware import HTTPSRedirectMiddleware, TrustedHostMiddleware
from tests.web.apps.mw_common import echo

trusted = TrustedHostMiddleware(
    echo,
    allowed_hosts=["example.com", "*.example.org", "www.redirect.test", "127.0.0.1", "[::1]"],
)
trusted_no_www = TrustedHostMiddleware(
    echo, allowed_hosts=["www.redirect.test", "127.0.0.1"], www_redirect=False
)
https = HTTPSRedirectMiddleware(echo)
https_permanent = HTTPSRedirectMiddleware(echo, status_code=308, https_port=8443)
