"""Flask hello world for the WSGI bridge benchmark (tests/interop/bench_wsgi.py)."""

from a2wsgi import WSGIMiddleware as A2WSGI
from flask import Flask, Response

app = Flask(__name__)


@app.route("/")
def hello() -> Response:
    return Response("Hello, world!", content_type="text/plain")


a2wsgi_app = A2WSGI(app)  # the reference bridge, as an ASGI app any server can run
