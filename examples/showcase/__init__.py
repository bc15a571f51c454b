"""The pieces of the showcase app that `make demo` serves (assembled in examples/demo.py).

- `items`: a typed CRUD API (pydantic models, dependencies, 404/422), in /docs and /redoc;
- `live`: a streamed response and a server-sent events clock;
- `legacy`: a small Flask app, mounted through dartle's WSGI bridge;
- `home`: the index page, and the list of pages the startup log prints.

The WebSocket chat is examples/chat.py's router.
"""
