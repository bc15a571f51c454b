"""A small Flask (WSGI) app; examples/demo.py serves it at /flask/ through the WSGI bridge.

Flask sees a normal WSGI environ: SCRIPT_NAME is the mount prefix, so `url_for` builds
links that include it, and the request runs in a thread of dartle's bounded pool.
"""

from __future__ import annotations

from flask import Flask, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import escape

flask_app = Flask(__name__)


@flask_app.get("/")
def index() -> ResponseReturnValue:
    greet = url_for("greet", name="dartle")
    return f"""<!doctype html>
<meta charset="utf-8"><title>Flask on dartle</title>
<style>body{{font:16px system-ui;max-width:46rem;margin:2rem auto;padding:0 1rem}}</style>
<h1>Hello from Flask</h1>
<p>This page comes from a Flask app, a WSGI app, mounted at
<code>{escape(request.script_root)}/</code> of a dartle app with
<code>WSGIMiddleware</code>.</p>
<p>Try <a href="{escape(greet)}">{escape(greet)}</a> (JSON), or go
<a href="/">back to the index</a>.</p>
"""


@flask_app.get("/greet/<name>")
def greet(name: str) -> ResponseReturnValue:
    return jsonify(
        greeting=f"Hello, {name}!",
        served_by="Flask, through dartle's WSGI bridge",
        script_name=request.script_root,
        path=request.path,
    )
