"""App exceptions, client disconnects, and send() after the client left."""

from __future__ import annotations

from tests.server.conftest import Harness, new_rid, uvicorn_differs
from tests.server.rawhttp import request


def test_exception_before_response_gives_500_logged_once(server: Harness) -> None:
    mark = server.log_mark()
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/raise?when=before", [("X-Rid", rid)]))
    response = conn.read_response()
    assert response.status == 500
    assert conn.closed_by_server() == b"", "the connection must end with the failed app"
    log = server.wait_for_log(f"RuntimeError: boom-{rid}", mark)
    assert log.count("Traceback (most recent call last)") == 1
    assert log.count(f"RuntimeError: boom-{rid}") == 1


def test_exception_after_response_started_closes_the_connection(server: Harness) -> None:
    mark = server.log_mark()
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/raise?when=after", [("X-Rid", rid)]))
    head = conn.read_head()
    assert head.status == 200
    assert head.header("transfer-encoding") == "chunked"
    rest = conn.closed_by_server()
    assert b"partial" in rest
    assert not rest.endswith(b"0\r\n\r\n"), "a failed response must not look complete"
    log = server.wait_for_log(f"RuntimeError: boom-{rid}", mark)
    assert log.count("Traceback (most recent call last)") == 1


def test_server_survives_app_errors(server: Harness) -> None:
    for _ in range(3):
        server.http.get("/raise?when=before", headers={"x-rid": new_rid()})
    assert server.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200


def test_disconnect_while_the_app_reads_the_body(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("POST", "/echo", [("X-Rid", rid), ("Content-Length", "100")]) + b"0123456789")
    server.wait(rid, "events:1")
    conn.close()
    record = server.wait(rid, "disconnect")
    assert [event["type"] for event in record["events"]] == ["http.request", "http.disconnect"]
    assert record["events"][0]["more_body"] is True


def test_disconnect_after_the_response(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/after-response", [("X-Rid", rid)]))
    assert conn.read_response().body == b"done"
    record = server.wait(rid, "finished")
    assert "receive_after_response" not in record["notes"], "receive() blocked after the response"
    assert record["events"][-1] == {"type": "http.disconnect"}, record
    # The spec says http.disconnect; delivering the unread empty body first is tolerated.
    assert [event["type"] for event in record["events"][:-1]] in ([], ["http.request"])


@uvicorn_differs("send() returns quietly after the client left (no OSError)")
def test_send_after_client_left_raises_oserror_quietly(server: Harness) -> None:
    mark = server.log_mark()
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/stream?chunks=1000000&size=65536", [("X-Rid", rid)]))
    assert conn.read_head().status == 200
    server.wait(rid, "sends:1")
    conn.close()
    record = server.wait(rid, "finished")
    error = record["send_error"]
    assert error is not None, "send() kept returning after the client left"
    assert error["oserror"], f"send() raised {error['mro']}, not an OSError subclass"
    assert server.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
    log = server.log_since(mark)
    assert "Traceback" not in log, log
    assert error["type"] not in log, log
