"""Typed handlers: every parameter source, bodies, forms, response models, security.

Served by real servers in tests/web/test_typed_*.py and tests/web/test_openapi_*.py.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from dartle.web import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    App,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
    HTTPException,
    OAuth2PasswordBearer,
    OAuth2PasswordRequestForm,
    Path,
    Query,
    Request,
    Security,
    SecurityScopes,
    UploadFile,
    WebSocket,
)
from dartle.web.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from dartle.web.routing import Router
from dartle.web.security import insufficient_scope, invalid_token

app = App(
    title="Typed test API",
    version="1.2.3",
    description="The typed-handler test app.",
    openapi_tags=[{"name": "items", "description": "Things for sale"}],
)


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Item(BaseModel):
    name: str = Field(min_length=1, description="What it is called")
    price: float = Field(gt=0)
    tags: list[str] = []
    color: Color | None = None


class ItemOut(BaseModel):
    id: int
    name: str
    price: float


class Secret(BaseModel):
    name: str
    password: str


class Public(BaseModel):
    name: str


@dataclass
class Point:
    x: int
    y: int


class Range(TypedDict):
    low: int
    high: int


class Error(BaseModel):
    detail: str


items = Router(prefix="/items", tags=["items"])


# --- path, query, header, cookie ------------------------------------------------------


@items.get("/{item_id}", responses={404: {"model": Error, "description": "No such item"}})
async def read_item(
    item_id: int,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100, description="How many")] = 10,
    tags: Annotated[list[str], Query()] = [],  # noqa: B006
    color: Color = Color.red,
    x_token: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> dict[str, object]:
    """Read one item."""
    if item_id == 404:
        raise HTTPException(404, "No such item")
    return {
        "item_id": item_id,
        "q": q,
        "limit": limit,
        "tags": tags,
        "color": color.value,
        "x_token": x_token,
        "session": session,
    }


@app.get("/typed/scalars/{when}")
async def scalars(
    when: datetime.date,
    ident: uuid.UUID,
    flag: bool = False,
    mode: Literal["fast", "slow"] = "fast",
    ratio: Annotated[float, Query(alias="r", gt=0)] = 1.0,
    user_agent: Annotated[str, Header()] = "",
    via: Annotated[list[str], Header(alias="x-via")] = [],  # noqa: B006
) -> dict[str, object]:
    return {
        "when": when.isoformat(),
        "ident": str(ident),
        "flag": flag,
        "mode": mode,
        "ratio": ratio,
        "agent": user_agent,
        "via": via,
    }


@app.get("/typed/path/{name}/{rest:path}", responses={404: {"description": "No such path"}})
async def path_params(name: Annotated[str, Path(min_length=2)], rest: str) -> dict[str, str]:
    return {"name": name, "rest": rest}


# --- bodies ---------------------------------------------------------------------------


@items.post("/", status_code=201, response_model=ItemOut)
async def create_item(item: Item, q: int = 0) -> dict[str, object]:
    return {"id": 7 + q, "name": item.name, "price": item.price, "extra": "dropped"}


@app.post("/typed/embedded")
def embedded(
    item: Annotated[Item, Body(embed=True)],
    note: Annotated[str, Body(max_length=5)] = "",
) -> dict[str, object]:
    return {"item": item.name, "note": note}


@app.post("/typed/point")
async def point(p: Point) -> Point:
    return Point(p.y, p.x)


@app.post("/typed/range")
async def range_(r: Range) -> dict[str, int]:
    return {"width": r["high"] - r["low"]}


@app.post("/typed/numbers")
async def numbers(values: Annotated[list[int], Body(min_length=1)]) -> dict[str, int]:
    return {"sum": sum(values)}


@app.put("/typed/optional-body")
async def optional_body(item: Item | None = None) -> dict[str, object]:
    return {"given": item is not None}


@app.post("/typed/form")
async def form(
    name: Annotated[str, Form()],
    age: Annotated[int, Form(ge=0)] = 0,
    colors: Annotated[list[str], Form()] = [],  # noqa: B006
) -> dict[str, object]:
    return {"name": name, "age": age, "colors": colors}


@app.post("/typed/upload")
async def upload(
    title: Annotated[str, Form()],
    document: Annotated[UploadFile, File(description="The file")],
    extras: Annotated[list[UploadFile], File()] = [],  # noqa: B006
    raw: Annotated[bytes | None, File()] = None,
) -> dict[str, object]:
    content = await document.read()
    return {
        "title": title,
        "filename": document.filename,
        "type": document.content_type,
        "size": len(content),
        "extras": [f.filename for f in extras],
        "raw": len(raw) if raw is not None else None,
    }


# --- responses ------------------------------------------------------------------------


@app.get("/typed/secret", response_model=Public)
async def secret() -> Secret:
    return Secret(name="ada", password="hunter2")


@app.get("/typed/models")
async def models() -> list[ItemOut]:
    return [ItemOut(id=1, name="a", price=1.5), {"id": 2, "name": "b", "price": 2}]  # type: ignore[list-item]


@app.get("/typed/broken")
async def broken() -> ItemOut:
    return {"id": "not a number"}  # type: ignore[return-value]


@app.get("/typed/passthrough", responses={203: {"description": "Anything at all"}})
async def passthrough() -> ItemOut:
    return JSONResponse({"anything": True}, status_code=203, headers={"x-raw": "1"})  # type: ignore[return-value]


@app.delete("/typed/items/{item_id}", status_code=204)
async def delete_item(item_id: int) -> None:
    return None


@app.get("/typed/text")
async def text(name: str = "world") -> str:
    return f"hello {name}"


@app.get("/typed/html", response_class=HTMLResponse)
async def html(name: str = "world") -> str:
    return f"<p>{name}</p>"


@app.get("/typed/cookie-setter", responses={202: {"description": "The cookie is set"}})
async def cookie_setter(response: Response, value: str = "v") -> dict[str, str]:
    response.set_cookie("flavour", value)
    response.headers["x-extra"] = "yes"
    response.status_code = 202
    return {"set": value}


@app.get("/typed/legacy")
async def legacy(request: Request) -> PlainTextResponse:
    return PlainTextResponse("legacy " + request.query_params.get("x", ""))


# --- security -------------------------------------------------------------------------

api_key_header = APIKeyHeader(name="X-API-Key", description="A key from the admin page")
api_key_query = APIKeyQuery(name="api_key", auto_error=False)
api_key_cookie = APIKeyCookie(name="key")
bearer = HTTPBearer(bearer_format="JWT", realm="typed")
basic = HTTPBasic(realm="typed tests")
oauth2 = OAuth2PasswordBearer(
    "/typed/token", scopes={"items:read": "Read items", "items:write": "Write items"}
)

USERS = {"ada": {"password": "lovelace", "scopes": ["items:read"]}}


@app.post("/typed/token", responses={400: {"description": "Incorrect username or password"}})
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
    user = USERS.get(form.username)
    if user is None or user["password"] != form.password:
        raise HTTPException(400, "Incorrect username or password")
    granted = [s for s in form.scopes if s in user["scopes"]]
    return {"access_token": f"{form.username}:{','.join(granted)}", "token_type": "bearer"}


async def current_user(scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]) -> str:
    name, _, granted = token.partition(":")
    if name not in USERS:
        raise invalid_token(realm="typed")
    missing = [s for s in scopes.scopes if s not in granted.split(",")]
    if missing:
        raise insufficient_scope(scopes.scopes, realm="typed")
    return name


@app.get("/typed/me")
async def me(user: Annotated[str, Security(current_user, scopes=["items:read"])]) -> dict[str, str]:
    return {"user": user}


@app.post("/typed/me/items")
async def my_items(user: Annotated[str, Security(current_user, scopes=["items:write"])]) -> dict[str, str]:
    return {"user": user}


@app.get("/typed/key")
async def by_key(
    key: Annotated[str, Depends(api_key_header)],
    optional: Annotated[str | None, Depends(api_key_query)],
) -> dict[str, object]:
    return {"key": key, "query": optional}


@app.get("/typed/key-cookie")
async def by_cookie(key: Annotated[str, Depends(api_key_cookie)]) -> dict[str, str]:
    return {"key": key}


@app.get("/typed/bearer")
async def by_bearer(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> dict[str, str]:
    return {"scheme": credentials.scheme, "token": credentials.credentials}


@app.get("/typed/basic")
async def by_basic(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> dict[str, str]:
    return {"username": credentials.username, "password": credentials.password}


# --- WebSockets -----------------------------------------------------------------------


class ChatIn(BaseModel):
    text: str


class ChatOut(BaseModel):
    room: str
    text: str
    times: int


@app.websocket("/typed/ws/{room}", receives=ChatIn, sends=ChatOut, summary="Chat in a room")
async def chat(
    websocket: WebSocket,
    room: str,
    times: Annotated[int, Query(ge=1, le=3)] = 1,
    user: Annotated[str, Depends(api_key_header)] = "",
) -> None:
    """Echo each message back, `times` times."""
    await websocket.accept()
    async for message in websocket.iter_json():
        text = ChatIn.model_validate(message).text
        await websocket.send_json(ChatOut(room=room, text=text * times, times=times).model_dump())


app.include_router(items)
