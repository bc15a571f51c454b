"""A Quart app with the interop routes."""

import hashlib

from quart import Quart, Response, jsonify, make_response, redirect, request

app = Quart(__name__)


@app.route("/")
async def hello():
    return Response("Hello, world!", content_type="text/plain")


@app.route("/json")
async def as_json():
    return jsonify({"framework": "quart", "query": dict(request.args)})


@app.route("/echo", methods=["POST"])
async def echo():
    body = await request.get_data()
    return jsonify({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                    "content_type": request.headers.get("content-type")})


@app.route("/headers")
async def headers():
    return jsonify({"x-test": request.headers.getlist("x-test")})


@app.route("/cookies")
async def cookies():
    response = await make_response("cookies set")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.route("/redirect")
async def go_home():
    return redirect("/")


@app.route("/stream")
async def stream():
    async def numbers():
        for i in range(5):
            yield f"{i}\n".encode()

    return numbers(), 200, {"Content-Type": "text/plain"}


@app.route("/error")
async def error():
    raise RuntimeError("interop error route")


@app.route("/path/<path:rest>")
async def path(rest):
    return jsonify({"path": request.path, "param": rest})


@app.route("/client")
async def client():
    return jsonify({"client": request.remote_addr, "scheme": request.scheme, "url": request.url})
