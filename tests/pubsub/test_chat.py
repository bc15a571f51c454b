"""examples/chat.py in one process (memory://), and as part of the demo app.

What the chat answers to bad input: a JSON object it cannot use gets an error message
and the socket stays open; invalid JSON closes it with 1007; an invalid room refuses the
handshake with 422.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from tests.pubsub.support import ChatClient
from tests.support.servers import ServerProcess, run_server

WAIT = 20.0


@pytest.fixture(scope="module", params=["examples.chat:app", "examples.demo:app"])
def chat_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(request.param) as server:
        yield server


async def test_a_message_reaches_everyone_in_the_room_and_no_one_else(chat_server: ServerProcess) -> None:
    ada = await ChatClient.open(chat_server.url, "kitchen", "ada")
    bob = await ChatClient.open(chat_server.url, "kitchen", "bob")
    eve = await ChatClient.open(chat_server.url, "attic", "eve")
    try:
        assert ada.welcome == {
            "type": "welcome",
            "room": "kitchen",
            "name": "ada",
            "worker": ada.worker,
            "bus": "memory",
            "connected": True,
        }
        await ada.say("tea?")
        expected = {"type": "message", "room": "kitchen", "name": "ada", "text": "tea?", "worker": ada.worker}
        assert await asyncio.wait_for(bob.next("message"), WAIT) == expected
        assert await asyncio.wait_for(ada.next("message"), WAIT) == expected
        await eve.say("anyone?")
        # eve's own message is the next thing she gets: nothing from the kitchen came first.
        assert (await asyncio.wait_for(eve.next("message"), WAIT))["text"] == "anyone?"
        await bob.ws.send(json.dumps({"text": "yes", "name": "bobby"}))
        assert (await asyncio.wait_for(ada.next("message"), WAIT))["name"] == "bobby"
    finally:
        await asyncio.gather(ada.close(), bob.close(), eve.close())


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (["not", "an", "object"], 'send a JSON object: {"text": "..."}'),
        ({"text": "   "}, "'text' must be a non-blank string of at most 2000 characters"),
        ({"text": "x" * 2001}, "'text' must be a non-blank string of at most 2000 characters"),
        ({"text": 5}, "'text' must be a non-blank string of at most 2000 characters"),
        ({"text": "hi", "name": "n" * 41}, "'name' must be a string of at most 40 characters"),
    ],
)
async def test_unusable_messages_get_an_error_and_the_socket_stays(
    chat_server: ServerProcess, payload: object, detail: str
) -> None:
    client = await ChatClient.open(chat_server.url, "errors", "ada")
    try:
        await client.ws.send(json.dumps(payload))
        assert await asyncio.wait_for(client.next("error"), WAIT) == {"type": "error", "detail": detail}
        await client.say("still here")
        assert (await asyncio.wait_for(client.next("message"), WAIT))["text"] == "still here"
    finally:
        await client.close()


async def test_invalid_json_closes_with_1007(chat_server: ServerProcess) -> None:
    client = await ChatClient.open(chat_server.url, "errors", "ada")
    await client.ws.send("{not json")
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(client.ws.recv(), WAIT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1007


@pytest.mark.parametrize("query", ["room=no%20spaces", "room=" + "r" * 41, "name="])
async def test_invalid_room_or_name_refuses_the_handshake(chat_server: ServerProcess, query: str) -> None:
    url = chat_server.url.replace("http://", "ws://") + "/chat/ws?" + query
    with pytest.raises(InvalidStatus) as info:
        await connect(url, open_timeout=WAIT, proxy=None)
    assert info.value.response.status_code == 422
    [error] = json.loads(info.value.response.body)["detail"]
    assert error["loc"][0] == "query"


def test_the_page_knows_where_its_socket_is(chat_server: ServerProcess) -> None:
    with httpx.Client(base_url=chat_server.url, timeout=WAIT) as client:
        page = client.get("/chat/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '"/chat/ws?"' in page.text and "{{socket_path}}" not in page.text
        if "examples.chat:app" in chat_server.proc.args:  # the demo has its own home page
            assert client.get("/").headers["location"] == "/chat/"
