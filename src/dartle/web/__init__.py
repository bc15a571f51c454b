"""dartle's web framework: plain ASGI, runs on any ASGI server.

Names are imported on first use, so `import dartle.web.datastructures` (as middleware
does) does not pull in the whole framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time names load on first use (below)
    # Parameter markers and dependencies, seen as calls that return Any, so that the
    # FastAPI-style default form `limit: int = Query(10)` type-checks.
    from dartle.web import di as _di, params as _params
    from dartle.web.app import (
        App as App,
    )
    from dartle.web.background import (
        BackgroundTask as BackgroundTask,
        BackgroundTasks as BackgroundTasks,
    )
    from dartle.web.convertors import (
        Convertor as Convertor,
        register_convertor as register_convertor,
    )
    from dartle.web.datastructures import (
        URL as URL,
        Headers as Headers,
        MutableHeaders as MutableHeaders,
        QueryParams as QueryParams,
        State as State,
    )
    from dartle.web.endpoint import (
        ResponseValidationError as ResponseValidationError,
    )
    from dartle.web.exceptions import (
        ClientDisconnect as ClientDisconnect,
        HTTPException as HTTPException,
        WebSocketDisconnect as WebSocketDisconnect,
        WebSocketException as WebSocketException,
    )
    from dartle.web.extract import (
        RequestValidationError as RequestValidationError,
    )
    from dartle.web.formparsers import (
        FormData as FormData,
        FormLimits as FormLimits,
        UploadFile as UploadFile,
    )
    from dartle.web.middleware import (
        Middleware as Middleware,
    )
    from dartle.web.paths import (
        NoMatchFound as NoMatchFound,
    )
    from dartle.web.requests import (
        HTTPConnection as HTTPConnection,
        Request as Request,
    )
    from dartle.web.responses import (
        FileResponse as FileResponse,
        HTMLResponse as HTMLResponse,
        JSONResponse as JSONResponse,
        PlainTextResponse as PlainTextResponse,
        RedirectResponse as RedirectResponse,
        Response as Response,
        StreamingResponse as StreamingResponse,
    )
    from dartle.web.routing import (
        Host as Host,
        Mount as Mount,
        Route as Route,
        Router as Router,
        WebSocketRoute as WebSocketRoute,
    )
    from dartle.web.security import (
        APIKeyCookie as APIKeyCookie,
        APIKeyHeader as APIKeyHeader,
        APIKeyQuery as APIKeyQuery,
        HTTPAuthorizationCredentials as HTTPAuthorizationCredentials,
        HTTPBasic as HTTPBasic,
        HTTPBasicCredentials as HTTPBasicCredentials,
        HTTPBearer as HTTPBearer,
        OAuth2PasswordBearer as OAuth2PasswordBearer,
        OAuth2PasswordRequestForm as OAuth2PasswordRequestForm,
        SecurityScopes as SecurityScopes,
    )
    from dartle.web.sse import (
        EventSourceResponse as EventSourceResponse,
        ServerSentEvent as ServerSentEvent,
    )
    from dartle.web.testing import (
        AsyncTestClient as AsyncTestClient,
        TestClient as TestClient,
    )
    from dartle.web.websockets import (
        WebSocket as WebSocket,
        WebSocketState as WebSocketState,
    )

    Body = _params.marker(_params.Body)
    Cookie = _params.marker(_params.Cookie)
    File = _params.marker(_params.File)
    Form = _params.marker(_params.Form)
    Header = _params.marker(_params.Header)
    Path = _params.marker(_params.Path)
    Query = _params.marker(_params.Query)
    Depends = _params.marker(_di.Depends)
    Security = _params.marker(_di.Security)

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

if not TYPE_CHECKING:
    # Hidden from type checkers, which cannot evaluate it: they take the re-exports above.
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
