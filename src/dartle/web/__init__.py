"""dartle's web framework: plain ASGI, runs on any ASGI server.

Names are imported on first use, so `import dartle.web.datastructures` (as middleware
does) does not pull in the whole framework.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "App": "dartle.web.app",
    "Router": "dartle.web.routing",
    "Route": "dartle.web.routing",
    "WebSocketRoute": "dartle.web.routing",
    "Mount": "dartle.web.routing",
    "Host": "dartle.web.routing",
    "NoMatchFound": "dartle.web.paths",
    "Request": "dartle.web.requests",
    "HTTPConnection": "dartle.web.requests",
    "WebSocket": "dartle.web.websockets",
    "WebSocketState": "dartle.web.websockets",
    "Response": "dartle.web.responses",
    "PlainTextResponse": "dartle.web.responses",
    "HTMLResponse": "dartle.web.responses",
    "JSONResponse": "dartle.web.responses",
    "RedirectResponse": "dartle.web.responses",
    "StreamingResponse": "dartle.web.responses",
    "FileResponse": "dartle.web.responses",
    "EventSourceResponse": "dartle.web.sse",
    "ServerSentEvent": "dartle.web.sse",
    "HTTPException": "dartle.web.exceptions",
    "WebSocketException": "dartle.web.exceptions",
    "WebSocketDisconnect": "dartle.web.exceptions",
    "ClientDisconnect": "dartle.web.exceptions",
    "BackgroundTask": "dartle.web.background",
    "BackgroundTasks": "dartle.web.background",
    "UploadFile": "dartle.web.formparsers",
    "FormData": "dartle.web.formparsers",
    "FormLimits": "dartle.web.formparsers",
    "Headers": "dartle.web.datastructures",
    "MutableHeaders": "dartle.web.datastructures",
    "QueryParams": "dartle.web.datastructures",
    "URL": "dartle.web.datastructures",
    "State": "dartle.web.datastructures",
    "Middleware": "dartle.web.middleware",
    "TestClient": "dartle.web.testing",
    "AsyncTestClient": "dartle.web.testing",
    "register_convertor": "dartle.web.convertors",
    "Convertor": "dartle.web.convertors",
    # Typed handlers: parameter markers, dependencies, validation errors.
    "Query": "dartle.web.params",
    "Path": "dartle.web.params",
    "Header": "dartle.web.params",
    "Cookie": "dartle.web.params",
    "Body": "dartle.web.params",
    "Form": "dartle.web.params",
    "File": "dartle.web.params",
    "Depends": "dartle.web.di",
    "Security": "dartle.web.di",
    "RequestValidationError": "dartle.web.extract",
    "ResponseValidationError": "dartle.web.endpoint",
    # Security helpers.
    "APIKeyHeader": "dartle.web.security",
    "APIKeyQuery": "dartle.web.security",
    "APIKeyCookie": "dartle.web.security",
    "HTTPBearer": "dartle.web.security",
    "HTTPBasic": "dartle.web.security",
    "HTTPAuthorizationCredentials": "dartle.web.security",
    "HTTPBasicCredentials": "dartle.web.security",
    "OAuth2PasswordBearer": "dartle.web.security",
    "OAuth2PasswordRequestForm": "dartle.web.security",
    "SecurityScopes": "dartle.web.security",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dartle.web' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
