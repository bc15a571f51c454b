"""`dartle run module:app` — flags named as uvicorn names them, so a switch is one word."""

from __future__ import annotations

import sys
from typing import Any

import click

from dartle import __version__
from dartle.config import Config

LOG_LEVELS = ["critical", "error", "warning", "info", "debug", "trace"]


@click.group()
@click.version_option(__version__, prog_name="dartle")
def main() -> None:
    """dartle: an ASGI server for HTTP/1.1 that runs any ASGI app."""


@main.command()
@click.argument("app")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind to this address.")
@click.option("--port", default=8000, show_default=True, type=int,
              help="Bind to this port (0: any free port).")
@click.option("--uds", default=None, help="Bind to this Unix domain socket path.")
@click.option("--fd", default=None, type=int, help="Serve on this already-bound socket file descriptor.")
@click.option("--factory", is_flag=True, help="APP is a factory: call it with no arguments to get the app.")
@click.option("--app-dir", default=".", show_default=True,
              help="Look for the app's module here (put first on sys.path).")
@click.option("--loop", type=click.Choice(["auto", "uvloop", "asyncio"]), default="auto", show_default=True)
@click.option("--lifespan", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True)
@click.option("--root-path", default="", help="The path prefix the app is mounted at behind a proxy.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--log-config", default=None, help="Logging configuration file (.json, .yaml or .ini).")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log each request.")
@click.option("--proxy-headers/--no-proxy-headers", default=True, show_default=True,
              help="Trust X-Forwarded-For/Proto from --forwarded-allow-ips.")
@click.option("--forwarded-allow-ips", default=None,
              help="Comma-separated IPs/networks to trust proxy headers from ('*' for all). "
                   "Default: $FORWARDED_ALLOW_IPS or 127.0.0.1.")
@click.option("--server-header/--no-server-header", default=True, show_default=True)
@click.option("--date-header/--no-date-header", default=True, show_default=True)
@click.option("--timeout-keep-alive", default=5.0, type=float, show_default=True,
              help="Close keep-alive connections idle this many seconds.")
@click.option("--timeout-header", default=10.0, type=float, show_default=True,
              help="Seconds a client has to send a whole request head (slowloris guard).")
@click.option("--timeout-graceful-shutdown", default=30.0, type=float, show_default=True,
              help="Seconds in-flight requests get to finish on shutdown.")
@click.option("--limit-concurrency", default=None, type=int,
              help="Answer 503 past this many concurrent connections or requests.")
@click.option("--backlog", default=2048, type=int, show_default=True, help="Listen backlog.")
@click.option("--max-header-size", "--h11-max-header-size", "--h11-max-incomplete-event-size",
              "max_header_size", default=32 * 1024, type=int, show_default=True,
              help="Largest request head (request line and headers) in bytes; past it: 431.")
@click.option("--max-body-size", default=None, type=int,
              help="Largest request body in bytes; past it: 413. Default: no limit.")
@click.option("--ws", type=click.Choice(["auto", "none", "websockets"]), default="auto", show_default=True,
              help="WebSocket support: 'none' answers upgrade requests as plain HTTP.")
@click.option("--ws-max-size", default=16 * 1024 * 1024, type=int, show_default=True,
              help="Largest WebSocket message in bytes; past it the connection closes with 1009.")
@click.option("--ws-ping-interval", default=20.0, type=float, show_default=True,
              help="Seconds between server pings on a WebSocket.")
@click.option("--ws-ping-timeout", default=20.0, type=float, show_default=True,
              help="Seconds to wait for a pong before closing with 1011.")
@click.option("--ws-per-message-deflate/--no-ws-per-message-deflate", default=True, show_default=True,
              help="Offer permessage-deflate compression on WebSockets.")
@click.option("--interface", type=click.Choice(["auto", "asgi3", "asgi2", "wsgi"]), default="auto",
              show_default=True, help="The app's interface; auto detects it.")
@click.option("--strict-asgi", is_flag=True,
              help="Check every ASGI event both ways and fail loudly on a broken rule.")
def run(app: str, **options: Any) -> None:
    """Serve APP, given as module:attribute (e.g. main:app)."""
    if options["forwarded_allow_ips"] is None:
        del options["forwarded_allow_ips"]
    sys.exit(run_config(app, options))


def run_config(app: Any, options: dict[str, Any]) -> int:
    """Build the config, load the app and serve; one-line errors for what the user got wrong."""
    from dartle.server.importer import AppLoadError, load_app
    from dartle.server.logs import configure_logging
    from dartle.server.serve import serve

    try:
        config = Config.from_options(app, **options)
        configure_logging(config.log_level, config.log_config)
        asgi_app = load_app(
            config.app, config.factory, config.app_dir, config.interface, config.strict_asgi
        )
        return serve(config, asgi_app)
    except (AppLoadError, ValueError, TypeError, OSError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 1
