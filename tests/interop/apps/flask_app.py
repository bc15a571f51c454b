"""A Flask (WSGI) app with the interop routes."""

import hashlib

from flask import Flask, Response, jsonify, make_response, redirect, request

app = Flask(__name__)


@app.route("/")
def hello():
    return Response("Hello, world!", content_type="text/plain")


@app.route("/json")
def as_json():
    return jsonify({"framework": "flask", "query": request.args.to_dict()})


@app.route("/echo", methods=["POST"])
def echo():
    body = request.get_data()
    return jsonify({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                    "content_type": request.headers.get("content-type")})


@app.route("/headers")
def headers():
    return jsonify({"x-test": request.headers.getlist("x-test")})


@app.route("/cookies")
def cookies():
    response = make_response("cookies set")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.route("/redirect")
def go_home():
    return redirect("/")


@app.route("/stream")
def stream():
    def numbers():
        for i in range(5):
            yield f"{i}\n"

    return Response(numbers(), content_type="text/plain")


@app.route("/error")
def error():
    raise RuntimeError("interop error route")


@app.route("/path/<path:rest>")
def path(rest):
    return jsonify({"path": request.path, "param": rest})


@app.route("/client")
def client():
    return jsonify({"client": request.remote_addr, "scheme": request.scheme, "url": request.url})
