"""The OpenAPI 3.1 and AsyncAPI 3.0 documents, served by real servers, checked against
the official schemas (openapi-spec-validator; the AsyncAPI JSON Schema from the
@asyncapi/specs npm package, read from npm's cache without network access)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from dartle.web import App, Depends, TestClient
from tests.support.servers import ServerProcess, run_server
from tests.support.services import services_required

ASYNCAPI_SPECS = "@asyncapi/specs@6.11.1"


@pytest.fixture(scope="module", params=("uvicorn", "dartle"))
def typed_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.typed_api:app", kind=request.param) as server:
        yield server


@pytest.fixture(scope="module")
def document(typed_server: ServerProcess) -> dict[str, Any]:
    r = httpx.get(typed_server.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc: dict[str, Any] = r.json()
    return doc


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_validator_catches_a_broken_document(document: dict[str, Any]) -> None:
    # The check above can fail: the same document with a path parameter left out does.
    broken = json.loads(json.dumps(document))
    operation = broken["paths"]["/items/{item_id}"]["get"]
    operation["parameters"] = [p for p in operation["parameters"] if p["in"] != "path"]
    with pytest.raises(Exception, match="item_id"):
        validate(broken)


def test_info_tags_and_docs_routes_left_out(document: dict[str, Any]) -> None:
    assert document["info"] == {
        "title": "Typed test API",
        "version": "1.2.3",
        "description": "The typed-handler test app.",
    }
    assert document["tags"] == [{"name": "items", "description": "Things for sale"}]
    assert not {"/openapi.json", "/docs", "/redoc", "/asyncapi.json"} & set(document["paths"])


def test_parameters(document: dict[str, Any]) -> None:
    operation = document["paths"]["/items/{item_id}"]["get"]
    assert operation["tags"] == ["items"]
    assert operation["summary"] == "Read Item"
    assert operation["description"] == "Read one item."
    assert operation["operationId"] == "read_item_items__item_id__get"
    by_name = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert by_name["path", "item_id"] == {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"title": "Item Id", "type": "integer"},
    }
    limit = by_name["query", "limit"]
    assert limit["description"] == "How many"
    assert limit["schema"] == {
        "default": 10,
        "maximum": 100,
        "minimum": 1,
        "title": "Limit",
        "type": "integer",
    }
    assert "required" not in limit
    assert by_name["query", "tags"]["schema"]["type"] == "array"
    assert by_name["query", "color"]["schema"]["$ref"] == "#/components/schemas/Color"
    assert ("header", "x-token") in by_name
    assert ("cookie", "session") in by_name
    alias = {p["name"] for p in document["paths"]["/typed/scalars/{when}"]["get"]["parameters"]}
    assert {"r", "x-via", "user-agent", "ident"} <= alias


def test_request_bodies(document: dict[str, Any]) -> None:
    create = document["paths"]["/items/"]["post"]
    assert create["requestBody"] == {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
        "required": True,
    }
    item = document["components"]["schemas"]["Item"]
    assert item["properties"]["name"]["minLength"] == 1
    assert item["properties"]["name"]["description"] == "What it is called"
    embedded = document["paths"]["/typed/embedded"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert set(embedded["properties"]) == {"item", "note"}
    assert embedded["required"] == ["item"]
    upload = document["paths"]["/typed/upload"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"
    ]
    assert upload["properties"]["document"]["format"] == "binary"
    assert upload["properties"]["document"]["description"] == "The file"
    assert upload["properties"]["extras"]["items"] == {"type": "string", "format": "binary"}
    form = document["paths"]["/typed/form"]["post"]["requestBody"]["content"]
    assert list(form) == ["application/x-www-form-urlencoded"]
    optional = document["paths"]["/typed/optional-body"]["put"]["requestBody"]
    assert "required" not in optional


def test_responses(document: dict[str, Any]) -> None:
    create = document["paths"]["/items/"]["post"]["responses"]
    assert create["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemOut"}
    assert create["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    read = document["paths"]["/items/{item_id}"]["get"]["responses"]
    assert read["404"] == {
        "description": "No such item",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    secret = document["paths"]["/typed/secret"]["get"]["responses"]["200"]["content"]["application/json"]
    assert secret["schema"] == {"$ref": "#/components/schemas/Public"}
    assert "Secret" not in document["components"]["schemas"]
    assert "content" not in document["paths"]["/typed/items/{item_id}"]["delete"]["responses"]["204"]
    text = document["paths"]["/typed/text"]["get"]["responses"]["200"]["content"]
    assert text == {"text/plain": {"schema": {"type": "string"}}}
    html = document["paths"]["/typed/html"]["get"]["responses"]["200"]["content"]
    assert list(html) == ["text/html"]
    # No synthetic parameter models leak into the components.
    assert not [name for name in document["components"]["schemas"] if name.startswith(("Query_", "Header_"))]


def test_security_schemes_and_requirements(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A key from the admin page",
    }
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["HTTPBasic"] == {"type": "http", "scheme": "basic"}
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"] == {
        "tokenUrl": "/typed/token",
        "scopes": {"items:read": "Read items", "items:write": "Write items"},
    }
    paths = document["paths"]
    assert paths["/typed/me"]["get"]["security"] == [{"OAuth2PasswordBearer": ["items:read"]}]
    assert paths["/typed/me/items"]["post"]["security"] == [{"OAuth2PasswordBearer": ["items:write"]}]
    # Both keys are checked; the query key is optional (auto_error=False), so is the pair.
    assert paths["/typed/key"]["get"]["security"] == [{"APIKeyHeader": [], "APIKeyQuery": []}, {}]
    assert "security" not in paths["/typed/text"]["get"]
    token_body = paths["/typed/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert token_body["schema"]["required"] == ["username", "password"]


def test_root_path_becomes_the_server() -> None:
    from tests.web.apps.typed_api import app

    with TestClient(app, root_path="/api") as client:
        doc = client.get("/openapi.json").json()
        page = client.get("/docs").text
    assert '"url": "/api/openapi.json"' in page
    assert 'href="/api/docs/assets/swagger-ui.css"' in page
    assert doc["servers"] == [{"url": "/api"}]


def test_docs_can_be_turned_off_or_moved() -> None:
    app = App(openapi_url="/spec.json", docs_url=None, redoc_url="/reference", asyncapi_url=None)

    @app.get("/x")
    async def x(q: int = 1) -> int:
        return q

    client = TestClient(app)
    assert client.get("/spec.json").json()["paths"]["/x"]["get"]["operationId"] == "x_x_get"
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404
    assert client.get("/asyncapi.json").status_code == 404
    assert "/spec.json" in client.get("/reference").text
    off = App(openapi_url=None)
    off_client = TestClient(off)
    assert [off_client.get(p).status_code for p in ("/openapi.json", "/docs", "/redoc")] == [404, 404, 404]


def test_app_level_dependencies_and_legacy_routes_are_documented() -> None:
    from dartle.web import APIKeyHeader, Request

    key = APIKeyHeader(name="k")
    app = App(dependencies=[Depends(key)])

    @app.get("/old/{name}/{n:int}")
    async def old(request: Request) -> dict[str, str]:
        return {}

    doc = TestClient(app).get("/openapi.json").json()
    validate(doc)
    operation = doc["paths"]["/old/{name}/{n}"]["get"]
    assert [(p["name"], p["schema"]["type"]) for p in operation["parameters"]] == [
        ("name", "string"),
        ("n", "integer"),
    ]
    assert operation["security"] == [{"APIKeyHeader": []}]


# --- AsyncAPI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 JSON Schema, from npm's cache (never from the network)."""
    npm = shutil.which("npm")
    reason = f"{ASYNCAPI_SPECS} is not in npm's cache (run: npm cache add {ASYNCAPI_SPECS})"
    if npm is None:
        reason = "npm is not installed"
    else:
        folder = tmp_path_factory.mktemp("asyncapi")
        done = subprocess.run(
            [npm, "pack", "--offline", "--silent", ASYNCAPI_SPECS], cwd=folder, capture_output=True, text=True
        )
        packed = list(Path(folder).glob("*.tgz"))
        if done.returncode == 0 and packed:
            with tarfile.open(packed[0]) as archive:
                member = archive.extractfile("package/schemas/3.0.0-without-$id.json")
                assert member is not None
                schema: dict[str, Any] = json.load(member)
                return schema
    if services_required():
        pytest.fail(reason)
    pytest.skip(reason)


def test_asyncapi_document_is_valid(typed_server: ServerProcess, asyncapi_schema: dict[str, Any]) -> None:
    import jsonschema

    doc = httpx.get(typed_server.url + "/asyncapi.json", timeout=10).json()
    validator = jsonschema.validators.validator_for(asyncapi_schema)(asyncapi_schema)
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == []
    broken = json.loads(json.dumps(doc))
    del broken["operations"]["receive_chat"]["action"]
    assert list(validator.iter_errors(broken))


def test_asyncapi_describes_the_websocket_routes(typed_server: ServerProcess) -> None:
    doc = httpx.get(typed_server.url + "/asyncapi.json", timeout=10).json()
    assert doc["asyncapi"] == "3.0.0"
    channel = doc["channels"]["chat"]
    assert channel["address"] == "/typed/ws/{room}"
    assert channel["title"] == "Chat in a room"
    assert channel["description"] == "Echo each message back, `times` times."
    assert channel["parameters"] == {"room": {}}
    query = channel["bindings"]["ws"]["query"]
    assert query["properties"]["times"]["maximum"] == 3
    assert doc["operations"]["receive_chat"]["messages"] == [{"$ref": "#/channels/chat/messages/ChatIn"}]
    assert doc["operations"]["send_chat"]["action"] == "send"
    assert doc["components"]["messages"]["ChatOut"]["payload"] == {"$ref": "#/components/schemas/ChatOut"}
    assert doc["components"]["schemas"]["ChatIn"]["required"] == ["text"]
