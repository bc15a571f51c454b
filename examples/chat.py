"""A chat over WebSockets that scales out: several workers, or machines, share one Redis.

    dartle run examples.chat:app                                   # one process, memory://
    redis-server --port 6379 --save '' &
    CHAT_REDIS_URL=redis://127.0.0.1:6379/0 dartle run examples.chat:app --workers 2

Open http://127.0.0.1:8000/chat/ in two tabs: each page says which worker serves its
WebSocket, and a message typed in one appears in the other whichever workers they are
on. Without CHAT_REDIS_URL the broadcast is memory://, which only reaches the sockets
of the same process: fine for one worker, wrong for several.

The WebSocket at /chat/ws?room=ROOM&name=NAME speaks JSON. The client sends
`{"text": "...", "name": "..."}` (name optional); the server sends
`{"type": "welcome", "room", "name", "worker", "bus", "connected"}` once, then
`{"type": "message", "room", "name", "text", "worker"}` for every message of the room
(the sender's own included), `{"type": "bus", "connected": bool}` when the message bus
goes down or comes back, and `{"type": "error", "detail", ...}` for a message it could
not accept or could not send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from dartle import App, HTMLResponse, RedirectResponse, Request, WebSocket
from dartle.web import Query, Router, WebSocketDisconnect
from dartle.web.pubsub import Broadcast, GroupMember, Groups, PublishError

log = logging.getLogger("dartle.error")

REDIS_URL_VARIABLE = "CHAT_REDIS_URL"
MAX_TEXT = 2000
MAX_NAME = 40
WORKER = os.getpid()

broadcast = Broadcast(os.environ.get(REDIS_URL_VARIABLE) or "memory://")
groups = Groups(broadcast, prefix="chat:")
router = Router(prefix="/chat")


@router.get("/", name="chat_page", include_in_schema=False)
async def chat_page(request: Request) -> HTMLResponse:
    socket_path = request.url_for("chat_socket").path
    return HTMLResponse(PAGE.replace("{{socket_path}}", socket_path))


@router.websocket("/ws", name="chat_socket")
async def chat_socket(
    websocket: WebSocket,
    room: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = "lobby",
    name: Annotated[str, Query(min_length=1, max_length=MAX_NAME)] = "anonymous",
) -> None:
    await websocket.accept()
    async with groups.member(websocket, room) as member:
        # Joined first: a message sent once the client has this greeting reaches it.
        connected = broadcast.connected
        await websocket.send_json(
            {
                "type": "welcome",
                "room": room,
                "name": name,
                "worker": WORKER,
                "bus": broadcast.description.partition("://")[0],
                "connected": connected,
            }
        )
        watcher = asyncio.create_task(_report_bus(websocket, connected))
        try:
            async for data in websocket.iter_json():
                await _relay(websocket, member, room, name, data)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def _relay(websocket: WebSocket, member: GroupMember, room: str, default_name: str, data: Any) -> None:
    problem = _check_message(data)
    if problem:
        await websocket.send_json({"type": "error", "detail": problem})
        return
    message = {
        "type": "message",
        "room": room,
        "name": data.get("name") or default_name,
        "text": data["text"],
        "worker": WORKER,
    }
    try:
        await member.send_json(room, message)
    except PublishError as exc:
        log.warning("chat: %s", exc)
        await websocket.send_json(
            {"type": "error", "detail": "not sent: the message bus is unreachable", "text": data["text"]}
        )


def _check_message(data: Any) -> str | None:
    if not isinstance(data, dict):
        return 'send a JSON object: {"text": "..."}'
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        return f"'text' must be a non-blank string of at most {MAX_TEXT} characters"
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        return f"'name' must be a string of at most {MAX_NAME} characters"
    return None


async def _report_bus(websocket: WebSocket, last: bool) -> None:
    """Tell the client when the bus goes down or comes back (messages may be missed)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):  # the client left
        async for connected in broadcast.watch_connection():
            if connected is not last:
                last = connected
                await websocket.send_json({"type": "bus", "connected": connected})


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    async with broadcast:
        log.info("chat: messages go through %s; open /chat/", broadcast.description)
        yield {}


app = App(lifespan=lifespan, title="dartle chat")
app.include_router(router)


@app.get("/", include_in_schema=False)
async def home(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("chat_page").path)


PAGE = """<!doctype html>
<meta charset="utf-8"><title>dartle chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:16px system-ui;max-width:46rem;margin:2rem auto;padding:0 1rem}
#log{list-style:none;padding:0;border:1px solid #ddd;height:22rem;overflow-y:auto}
#log li{padding:.25rem .5rem;border-bottom:1px solid #f0f0f0}
#log .meta{color:#777;font-size:.8rem}
#log .error{color:#a00}
#status{color:#555}
form{display:flex;gap:.5rem;margin-top:.5rem}
#text{flex:1}
</style>
<h1>dartle chat</h1>
<p id="status">connecting...</p>
<ul id="log"></ul>
<form id="form">
  <input id="name" aria-label="name" maxlength="40" size="10">
  <input id="text" aria-label="message" maxlength="2000" autocomplete="off" placeholder="message">
  <button id="send">Send</button>
</form>
<script>
const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
const nameInput = document.getElementById("name");
const textInput = document.getElementById("text");
const log = document.getElementById("log");
const status = document.getElementById("status");
nameInput.value = params.get("name") || "guest-" + Math.floor(Math.random() * 10000);
let socket = null;
let info = "";

function show(text, cls) {
  const item = document.createElement("li");
  item.textContent = text;
  if (cls) item.className = cls;
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({room: room, name: nameInput.value || "anonymous"});
  socket = new WebSocket(scheme + "//" + location.host + "{{socket_path}}?" + query);
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "welcome") {
      info = "room " + m.room + " - your WebSocket is served by worker " + m.worker + " (bus: " + m.bus + ")";
      status.textContent = info + (m.connected ? "" : " - message bus down");
      document.body.dataset.worker = m.worker;
      document.body.dataset.ready = "1";
    } else if (m.type === "message") {
      show(m.name + ": " + m.text + "  (via worker " + m.worker + ")");
    } else if (m.type === "bus") {
      status.textContent = info + (m.connected ? "" : " - message bus down, reconnecting");
      show(m.connected ? "message bus back: messages sent meanwhile may be missing"
                       : "message bus down", "meta");
    } else if (m.type === "error") {
      show(m.detail + (m.text ? ": " + m.text : ""), "error");
    }
  };
  socket.onclose = () => {
    delete document.body.dataset.ready;
    status.textContent = "disconnected; reconnecting...";
    setTimeout(connect, 1000);
  };
}

document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!textInput.value.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({text: textInput.value, name: nameInput.value || "anonymous"}));
  textInput.value = "";
});
connect();
</script>
"""
