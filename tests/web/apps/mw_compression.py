"""Compression around tests/web/apps/mw_common.echo."""

from dartle.web.middleware import GZipMiddleware
from tests.web.apps.mw_common import echo

# Every coding installed here (gzip, and br / zstd when brotli / zstandard are).
app = GZipMiddleware(echo, minimum_size=500)
# gzip only, at the highest level.
gzip_only = GZipMiddleware(echo, minimum_size=500, compresslevel=9, encodings=["gzip"])
