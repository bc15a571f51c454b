"""WebSocket groups on a real dartle server: join, leave, send, and a client too slow to keep.

The app is tests/pubsub/apps/groups_app.py; the clients are `websockets` over real sockets.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from tests.support.servers import ServerProcess, run_server

APP = "tests.pubsub.apps.groups_app:app"
WAIT = 20.0


@pytest.fixture
def groups_server(bus_url: str) -> Iterator[ServerProcess]:
    with run_server(APP, env={"PUBSUB_TEST_URL": bus_url}) as server:
        yield server


def open_member(server: ServerProcess) -> ClientConnection:
    return connect(server.url.replace("http://", "ws://") + "/ws", open_timeout=WAIT, proxy=None)


def command(ws: ClientConnection, **body: str) -> list[str]:
    """Send a join/leave command and return the groups it answers with."""
    ws.send(json.dumps(body))
    reply = json.loads(ws.recv(timeout=WAIT))
    return reply["groups"]  # type: ignore[no-any-return]


def test_members_get_their_groups_messages_until_they_leave(groups_server: ServerProcess) -> None:
    with open_member(groups_server) as alice, open_member(groups_server) as bob:
        assert command(alice, join="red") == ["red"]
        assert command(alice, join="blue") == ["blue", "red"]
        assert command(bob, join="blue") == ["blue"]

        bob.send(json.dumps({"send": "blue", "text": "to blue"}))
        assert alice.recv(timeout=WAIT) == "to blue"
        assert bob.recv(timeout=WAIT) == "to blue"  # the sender is a member too

        assert command(alice, leave="blue") == ["red"]
        bob.send(json.dumps({"send": "blue", "text": "blue again"}))
        bob.send(json.dumps({"send": "red", "text": "to red"}))
        assert bob.recv(timeout=WAIT) == "blue again"
        # Sent after "blue again" by the same socket: had alice still been in blue,
        # "blue again" would have reached her first.
        assert alice.recv(timeout=WAIT) == "to red"


class StalledClient:
    """A WebSocket client over a plain socket, which reads only when told to.

    Client libraries read ahead in the background; this one leaves what it does not
    read in the server's buffers, as a slow phone would. The frames are parsed with
    the `websockets` sans-I/O protocol.
    """

    def __init__(self, server: ServerProcess, path: str) -> None:
        self.sock = socket.socket()
        # Small and fixed (which turns autotuning off): the server's writes stall soon.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.settimeout(WAIT)
        self.sock.connect((server.host, server.port))
        uri = parse_uri(server.url.replace("http://", "ws://") + path)
        self.protocol = ClientProtocol(uri, max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.state is State.CONNECTING:
            self._read()
        assert self.protocol.state is State.OPEN, self.protocol.handshake_exc
        self.protocol.events_received()  # the handshake response

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._flush()  # answers to pings and to the close

    def send_json(self, data: object) -> None:
        self.protocol.send_text(json.dumps(data).encode())
        self._flush()

    def frames(self) -> Iterator[Frame]:
        """Every frame received, reading as needed, until the connection closes."""
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame):
                    yield event
            if self.protocol.state is State.CLOSED:
                return
            self._read()

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_stops_reading_is_closed_with_1008() -> None:
    env = {"PUBSUB_TEST_URL": "memory://", "PUBSUB_TEST_MAX_QUEUE": "4"}
    with run_server(APP, env=env) as server:
        client = StalledClient(server, "/ws")
        try:
            client.send_json({"join": "flood"})
            frames = client.frames()
            assert json.loads(next(frames).data) == {"groups": ["flood"]}
            # The client reads nothing while 400 messages of 64 KiB (25 MiB) are sent:
            # more than the socket buffers hold, so the server's queue fills up.
            published = httpx.post(
                server.url + "/flood", params={"group": "flood", "count": 400, "size": 65536}, timeout=60
            )
            assert published.json() == {"published": 400}
            received = list(frames)
        finally:
            client.close()
        close = received.pop()
        assert close.opcode is Opcode.CLOSE
        assert Close.parse(close.data) == Close(1008, "too slow: group messages piled up unread")
        # What did arrive came in order, without a gap, before the cut.
        assert all(frame.opcode is Opcode.TEXT for frame in received)
        assert 0 < len(received) < 400
        assert [int(frame.data[:6]) for frame in received] == list(range(len(received)))
        assert b"closing a WebSocket that fell behind" in server.read_log(0.5)
